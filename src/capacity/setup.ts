/**
 * The capacity parts of one gateway, built from the settings: the memory sampler, the
 * budget and its admission, the evictor of idle sessions and the hibernator. The process
 * manager gets `sampler.track` (every child from its spawn), `capacity` (admission) and
 * `hibernation`; the session factory gets `evictor`; /status and /metrics read the rest.
 */
import type { CommandSpec } from '../commands/types.js';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../logging/logger.js';
import type { CapacityMetrics } from '../metrics/capacityMetrics.js';
import type { HibernateOptions } from '../process/hibernate.js';
import type { SessionStore } from '../transports/sessions.js';
import { detectBudget, MiB, type BudgetReaders } from './budget.js';
import { Capacity } from './capacity.js';
import { IdleEvictor } from './evictor.js';
import { Hibernator, sweepInterval } from './hibernator.js';
import { MemorySampler } from './sampler.js';

export interface CapacityDeps {
  readonly logger: Logger;
  readonly metrics: CapacityMetrics;
  /** The gateway's own resident memory, bytes. @default process.memoryUsage.rss() */
  readonly gatewayRss?: () => number;
  /** Where the budget is detected from (tests). */
  readonly budgetReaders?: BudgetReaders;
}

type CapacitySettings = Pick<
  Settings,
  'memorySampleMs' | 'memoryBudgetMb' | 'memoryReserveMb' | 'maxChildMemoryMb' | 'hibernateAfterMs' | 'initializeTimeoutMs'
>;

export class CapacitySetup {
  readonly sampler: MemorySampler;
  readonly capacity: Capacity;
  readonly hibernation: Omit<HibernateOptions, 'restart' | 'logger'>;
  private sessions: SessionStore | undefined;
  private hibernator: Hibernator | undefined;

  constructor(
    private readonly settings: CapacitySettings,
    private readonly deps: CapacityDeps,
  ) {
    const { logger, metrics } = deps;
    this.sampler = new MemorySampler({
      intervalMs: settings.memorySampleMs,
      logger,
      maxChildBytes: settings.maxChildMemoryMb * MiB,
      gatewayRss: deps.gatewayRss,
      onOverLimit: (child) => metrics.memoryExceeded(child.spec.key),
    });
    this.capacity = new Capacity({
      budget: detectBudget(settings, deps.budgetReaders),
      sampler: this.sampler,
      logger,
      freshMs: Math.min(1000, settings.memorySampleMs),
    });
    this.hibernation = {
      afterMs: settings.hibernateAfterMs,
      initializeTimeoutMs: settings.initializeTimeoutMs,
      onHibernate: (spec) => metrics.hibernated(spec.key),
      onResume: (spec, seconds, pooled) => metrics.resumed(spec.key, seconds, pooled),
    };
  }

  /** Evicts from `sessions` (for memory and at the per-client cap) and puts their quiet children to sleep. */
  attach(sessions: SessionStore): IdleEvictor {
    this.sessions = sessions;
    const evictor = new IdleEvictor({
      sessions,
      sampler: this.sampler,
      capacity: this.capacity,
      logger: this.deps.logger,
      onEvict: (reason, hibernated) => this.deps.metrics.evicted(reason, hibernated),
    });
    this.capacity.addReleaser(evictor.forMemory);
    return evictor;
  }

  /**
   * Starts sampling and the hibernator (as often as the quickest entry needs, at least every
   * 5 s, so entries added later are served too); logs the budget and where it came from.
   */
  start(specs: readonly CommandSpec[]): void {
    const { budget } = this.capacity;
    this.deps.logger.info('memory budget', {
      budgetMb: Math.round(budget.bytes / MiB),
      source: budget.source,
      reserveMb: Math.round(budget.reserveBytes / MiB),
      gatewayMb: Math.round(this.sampler.gatewayBytes / MiB),
      sampleMs: this.settings.memorySampleMs,
    });
    this.sampler.start();
    const quiet = specs.filter((s) => s.idle === 'hibernate').map((s) => s.hibernateAfterMs ?? this.settings.hibernateAfterMs);
    quiet.push(this.settings.hibernateAfterMs);
    if (this.sessions && !this.hibernator) {
      this.hibernator = new Hibernator(this.sessions, { everyMs: sweepInterval(quiet), logger: this.deps.logger });
      this.hibernator.start();
    }
  }

  stop(): void {
    this.sampler.stop();
    this.hibernator?.stop();
  }
}
