/**
 * Hands out children under limits. A session without ENV_* headers takes a warm spare
 * when one is ready; otherwise a child is started for it (through the supervisor, with
 * retries) in a queue that bounds concurrent spawns. Over a limit, nothing is spawned:
 * the caller gets 503 with Retry-After, naming the limit.
 */
import PQueue from 'p-queue';
import type { CommandSpec } from '../commands/types.js';
import { LimitReachedError, WardenError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ChildTransport } from './childTransport.js';
import { WarmPool } from './pool.js';
import { Supervisor, type CommandHealth, type SupervisorOptions } from './supervisor.js';

export interface ProcessLimits {
  /** Live children in all, warm spares included. @default 64 */
  readonly maxChildren: number;
  /** Spawns running at once (a burst of connects waits its turn). @default 4 */
  readonly spawnConcurrency: number;
  /** Warm spares per command, unless the entry says otherwise. @default 1 */
  readonly poolMin: number;
  /** A spare older than this is replaced. @default 600000 */
  readonly spareTtlMs: number;
}

export const DEFAULT_PROCESS_LIMITS: ProcessLimits = { maxChildren: 64, spawnConcurrency: 4, poolMin: 1, spareTtlMs: 600_000 };

export interface ProcessManagerOptions extends SupervisorOptions {
  readonly limits?: Partial<ProcessLimits>;
}

export interface CommandProcessStatus extends CommandHealth {
  readonly live: number;
  readonly warm: number;
}

export class ProcessManager {
  readonly supervisor: Supervisor;
  readonly limits: ProcessLimits;
  private readonly pool: WarmPool;
  private readonly queue: PQueue;
  private readonly live = new Set<ChildTransport>();
  private readonly reserved = new Map<string, number>();
  private draining = false;

  constructor(private readonly options: ProcessManagerOptions) {
    this.limits = { ...DEFAULT_PROCESS_LIMITS, ...options.limits };
    this.supervisor = new Supervisor(options);
    this.queue = new PQueue({ concurrency: this.limits.spawnConcurrency });
    this.pool = new WarmPool({
      logger: options.logger,
      supervisor: this.supervisor,
      queue: this.queue,
      spareTtlMs: this.limits.spareTtlMs,
      hasRoom: (spec) => !this.draining && this.total() < this.limits.maxChildren && this.liveFor(spec.key) + this.pool.count(spec.key) + this.pool.starting(spec.key) < this.commandMax(spec),
    });
  }

  /** Starts the warm pool for each command (entry `pool.min`, else the global default). */
  warm(specs: readonly CommandSpec[]): void {
    for (const spec of specs) this.pool.setTarget(spec, spec.pool?.min ?? this.limits.poolMin);
  }

  /** Children serving sessions (spares excluded). */
  get liveCount(): number {
    return this.live.size;
  }

  /** Every child process of the gateway: serving, warm, and starting. */
  total(): number {
    let reserved = 0;
    for (const n of this.reserved.values()) reserved += n;
    return this.live.size + reserved + this.pool.count() + this.pool.starting();
  }

  status(spec: CommandSpec): CommandProcessStatus {
    return { ...this.supervisor.health(spec.key), live: this.liveFor(spec.key), warm: this.pool.count(spec.key) };
  }

  /** A child for one session, with the session's accepted env vars. */
  async lease(spec: CommandSpec, accepted: Readonly<Record<string, string>>): Promise<ChildTransport> {
    if (this.draining) throw new WardenError('draining', 'gateway is shutting down', { retryAfter: 1 });
    const spare = this.pool.take(spec, accepted);
    if (spare) {
      spare.pooled = true;
      return this.track(spare);
    }
    this.ensureRoom(spec);
    this.reserved.set(spec.key, (this.reserved.get(spec.key) ?? 0) + 1);
    try {
      const child = await this.queue.add(() => this.supervisor.start(spec, accepted), { priority: 1 });
      if (this.draining) {
        await child.close();
        throw new WardenError('draining', 'gateway is shutting down', { retryAfter: 1 });
      }
      return this.track(child);
    } finally {
      this.reserved.set(spec.key, (this.reserved.get(spec.key) ?? 1) - 1);
    }
  }

  /** Refuses new leases, then stops spares and every session child in parallel. */
  async closeAll(): Promise<void> {
    this.draining = true;
    this.queue.clear();
    await Promise.allSettled([this.pool.closeAll(), ...[...this.live].map((child) => child.close())]);
  }

  private ensureRoom(spec: CommandSpec): void {
    const max = this.commandMax(spec);
    if (this.liveFor(spec.key) + (this.reserved.get(spec.key) ?? 0) >= max) {
      throw new LimitReachedError('maxChildren for this command', max, 5);
    }
    // A spare of another command may make way for a session that needs a fresh child.
    while (this.total() >= this.limits.maxChildren) {
      if (!this.pool.evictOne()) throw new LimitReachedError('maxChildren', this.limits.maxChildren, 5);
    }
  }

  private commandMax(spec: CommandSpec): number {
    return spec.maxChildren ?? this.limits.maxChildren;
  }

  private liveFor(key: string): number {
    let n = 0;
    for (const child of this.live) if (child.spec.key === key) n += 1;
    return n;
  }

  private track(child: ChildTransport): ChildTransport {
    this.live.add(child);
    void child.exited.then(() => this.live.delete(child));
    return child;
  }
}
