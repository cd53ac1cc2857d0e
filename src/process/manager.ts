/**
 * Hands out children under limits. A session without ENV_* headers takes a warm spare
 * when one is ready; otherwise a child is started for it (through the supervisor, with
 * retries) in a queue that bounds concurrent spawns, once it fits in the memory budget
 * (src/capacity/capacity.ts: spares are the first thing given back for it). Over a limit,
 * nothing is spawned: the caller gets 503 with Retry-After, naming the limit. Each entry's
 * era is learnt from its first child (era.ts) and carried by every child handed out. The
 * child of an `"idle": "hibernate"` entry comes wrapped so that it can sleep (hibernate.ts).
 */
import type { ChildPort } from '../bridge/childPort.js';
import type { MemoryGate } from '../capacity/capacity.js';
import type { CommandSpec } from '../commands/types.js';
import { DrainingError, LimitReachedError, UpstreamFailedError } from '../errors.js';
import type { ChildTransport } from './childTransport.js';
import { EraRegistry, type EraVerdict } from './era.js';
import { HibernatingPort, type HibernateOptions } from './hibernate.js';
import { Multiplexer, type MultiplexedPort } from './multiplexer.js';
import { WarmPool } from './pool.js';
import { SpawnQueue } from './spawnQueue.js';
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

const DEFAULT_PROCESS_LIMITS: ProcessLimits = { maxChildren: 64, spawnConcurrency: 4, poolMin: 1, spareTtlMs: 600_000 };

export interface ProcessManagerOptions extends Omit<SupervisorOptions, 'eras'> {
  readonly limits?: Partial<ProcessLimits>;
  /** How long the era probe waits for an answer, ms; 0: no probe, every entry legacy. @default 2000 */
  readonly eraProbeMs?: number;
  /** Admits new children by memory; warm spares are the first thing it may take back. */
  readonly memory?: MemoryGate;
  /** How sessions of `"idle": "hibernate"` entries sleep; `afterMs` is the default of entries that set none. */
  readonly hibernation?: Omit<HibernateOptions, 'restart' | 'logger'>;
}

export interface CommandProcessStatus extends CommandHealth {
  readonly live: number;
  readonly warm: number;
}

interface SharedGroup {
  live: Multiplexer[];
  readonly starting: Set<Promise<void>>;
  /** Its entry was removed or changed: children still starting are retired once started. */
  retired?: boolean;
}

/** How long after a spare was leased its replacement is started. */
const REFILL_DELAY_MS = 50;

export class ProcessManager {
  readonly supervisor: Supervisor;
  readonly limits: ProcessLimits;
  /** What each entry's server speaks, as far as known. */
  readonly eras: EraRegistry;
  private readonly pool: WarmPool;
  private readonly queue: SpawnQueue;
  private readonly live = new Set<ChildTransport>();
  private readonly reserved = new Map<string, number>();
  private readonly starts = new Set<Promise<unknown>>();
  private readonly shared = new Map<string, SharedGroup>();
  private draining = false;
  private refillTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ProcessManagerOptions) {
    this.limits = { ...DEFAULT_PROCESS_LIMITS, ...options.limits };
    this.eras = new EraRegistry({ logger: options.logger, probeMs: options.eraProbeMs });
    this.supervisor = new Supervisor({ ...options, eras: this.eras });
    this.queue = new SpawnQueue(this.limits.spawnConcurrency);
    this.pool = new WarmPool({
      logger: options.logger,
      supervisor: this.supervisor,
      queue: this.queue,
      spareTtlMs: this.limits.spareTtlMs,
      hasRoom: (spec) =>
        !this.draining &&
        this.total() < this.limits.maxChildren &&
        this.liveFor(spec.key) + this.pool.count(spec.key) + this.pool.starting(spec.key) < this.commandMax(spec) &&
        (options.memory?.fits(spec) ?? true),
    });
    options.memory?.addReleaser(() => this.pool.giveBack());
  }

  /** Starts the warm pool for each command (entry `pool.min`, else the global default). */
  warm(specs: readonly CommandSpec[]): void {
    for (const spec of specs) {
      if (spec.mode === 'shared') {
        // A shared command's "warm pool" is its running shared child.
        if ((spec.pool?.min ?? this.limits.poolMin) > 0) {
          this.sharedGroup(spec);
        }
        continue;
      }
      this.pool.setTarget(spec, spec.pool?.min ?? this.limits.poolMin);
    }
  }

  /**
   * Stops handing out children of `key` (its entry was removed, or changed: then warm() the
   * new spec after this). Its warm spares stop; its shared children take no new session and
   * stop once their last session left; children of live sessions are left alone. A changed
   * entry is a new server: its circuit and counters start afresh.
   */
  retire(key: string): void {
    this.pool.dropTarget(key);
    const group = this.shared.get(key);
    this.shared.delete(key);
    if (group) {
      group.retired = true;
      for (const shared of group.live) shared.retire();
    }
    this.supervisor.forget(key);
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

  /** A child for one session, with the session's accepted env vars (one that can sleep, when its entry hibernates). */
  async lease(spec: CommandSpec, accepted: Readonly<Record<string, string>>): Promise<ChildPort> {
    if (this.draining) throw new DrainingError();
    // Only sessions without env may share: a shared child runs with the entry's env alone.
    if (spec.mode === 'shared' && Object.keys(accepted).length === 0) return this.sharedPort(spec);
    const child = await this.leaseOwn(spec, accepted);
    const hibernation = this.options.hibernation;
    if (spec.idle !== 'hibernate' || !hibernation) return child;
    const restart = () => (this.draining ? Promise.reject(new DrainingError()) : this.leaseOwn(spec, accepted));
    return new HibernatingPort(child, { ...hibernation, afterMs: spec.hibernateAfterMs ?? hibernation.afterMs, logger: this.options.logger, restart });
  }

  /** A child of the session's own: a warm spare when one fits its env, else a start. */
  private async leaseOwn(spec: CommandSpec, accepted: Readonly<Record<string, string>>): Promise<ChildTransport> {
    this.checkCommandLimit(spec);
    const spare = this.pool.take(spec, accepted);
    if (spare) {
      spare.pooled = true;
      this.track(spare);
      this.refillSoon();
      return spare;
    }
    return this.startFresh(spec, accepted, async (child) => this.track(child));
  }

  /**
   * The era of `spec`'s server (and its DiscoverResult, if it gave one). When no child of
   * the entry was probed yet, one is started as for a session (counted against the limits,
   * in the spawn queue) and probed; it is then kept as a warm spare if the pool wants
   * one, else stopped.
   */
  async eraOf(spec: CommandSpec): Promise<EraVerdict> {
    const known = this.eras.verdict(spec) ?? (await this.eras.pending(spec));
    if (known) return known;
    if (this.draining) throw new DrainingError();
    return this.startFresh(spec, {}, async (child) => {
      if (!this.pool.offer(child)) await child.close();
      return this.eras.verdict(spec) ?? { era: child.era ?? 'legacy' };
    });
  }

  /** Refuses new leases, then stops spares and every session child in parallel. */
  async closeAll(): Promise<void> {
    this.draining = true;
    clearTimeout(this.refillTimer);
    // Starts still waiting for a slot end with DrainingError; those under way finish
    // first, and startFresh() stops what they produced.
    this.queue.close();
    await Promise.allSettled([...this.starts]);
    await Promise.allSettled([this.pool.closeAll(), ...[...this.live].map((child) => child.close())]);
  }

  /** The group of shared children of `spec`, with every missing child being started. */
  private sharedGroup(spec: CommandSpec): SharedGroup {
    let group = this.shared.get(spec.key);
    if (!group) {
      group = { live: [], starting: new Set() };
      this.shared.set(spec.key, group);
    }
    const current = group;
    current.live = current.live.filter((s) => !s.closed);
    const wanted = spec.sharedChildren ?? 1;
    for (let missing = wanted - current.live.length - current.starting.size; missing > 0; missing -= 1) {
      const start: Promise<void> = this.startShared(spec, current)
        .catch((error: unknown) => {
          this.options.logger.warn('could not start a shared child', { command: spec.key, error: String(error) });
          throw error;
        })
        .finally(() => current.starting.delete(start));
      start.catch(() => undefined); // reported above; a waiting lease sees it too
      current.starting.add(start);
    }
    return current;
  }

  /**
   * A port on the least-loaded shared child of `spec`. While children are starting,
   * sessions wait for them, so a burst spreads instead of piling onto the first child.
   */
  private async sharedPort(spec: CommandSpec): Promise<MultiplexedPort> {
    const group = this.sharedGroup(spec);
    const wanted = spec.sharedChildren ?? 1;
    let failure: unknown;
    while (group.live.length < wanted && group.starting.size > 0) {
      // A settled start has already left `starting`, so this loop always progresses.
      const outcome = await Promise.race(
        [...group.starting].map((p) =>
          p.then(
            () => undefined,
            (e: unknown) => e,
          ),
        ),
      );
      if (outcome !== undefined) failure = outcome;
      group.live = group.live.filter((s) => !s.closed);
    }
    if (group.live.length === 0 && failure !== undefined) throw failure;
    const least = group.live.reduce<Multiplexer | undefined>((a, b) => (a === undefined || b.sessions < a.sessions ? b : a), undefined);
    if (!least) throw new UpstreamFailedError('the shared server is not running');
    // Chosen and opened in one step, so concurrent leases see each other's sessions.
    return least.open();
  }

  /** Starts one more shared child of `spec` (with the entry's env alone) into `group`. */
  private startShared(spec: CommandSpec, group: SharedGroup): Promise<void> {
    return this.startFresh(spec, {}, async (child) => {
      const shared = new Multiplexer(child, this.options.logger);
      this.track(child);
      await shared.start();
      if (this.draining) {
        await shared.close();
        throw new DrainingError();
      }
      group.live.push(shared);
      if (group.retired) shared.retire();
    });
  }

  /**
   * The one path that spawns a child for a caller waiting on it (a session's lease, or a
   * shared child being added). Checks room, then reserves a slot for `spec` so that
   * concurrent callers count this child before it exists; queues the start ahead of pool
   * refills (priority 1); hands the started child to `adopt`; releases the reservation once
   * all that settled (by then `adopt` tracks the child as live, or it failed).
   *
   * The whole of it is one of the starts closeAll() waits for. A child that finishes
   * starting during a drain is stopped here and the caller gets DrainingError, so that stop
   * is part of the start too.
   */
  private async startFresh<T>(spec: CommandSpec, accepted: Readonly<Record<string, string>>, adopt: (child: ChildTransport) => Promise<T>): Promise<T> {
    // Memory first (it may wait for idle sessions to give theirs back), then the counts, at once.
    const memory = this.options.memory ? await this.options.memory.admit(spec) : undefined;
    try {
      if (this.draining) throw new DrainingError();
      this.ensureRoom(spec);
    } catch (error) {
      memory?.();
      throw error;
    }
    this.reserved.set(spec.key, (this.reserved.get(spec.key) ?? 0) + 1);
    const start = this.queue
      .add(() => this.supervisor.start(spec, accepted), 1)
      .then(async (child) => {
        if (this.draining) {
          await child.close();
          throw new DrainingError();
        }
        return adopt(child);
      });
    this.starts.add(start);
    try {
      return await start;
    } finally {
      this.starts.delete(start);
      this.reserved.set(spec.key, (this.reserved.get(spec.key) ?? 1) - 1);
      memory?.();
    }
  }

  /** The entry's own maxChildren, when it sets one. */
  private checkCommandLimit(spec: CommandSpec): void {
    if (spec.maxChildren === undefined) return;
    if (this.liveFor(spec.key) + (this.reserved.get(spec.key) ?? 0) >= spec.maxChildren) {
      throw new LimitReachedError('maxChildren for this command', spec.maxChildren, 5);
    }
  }

  private ensureRoom(spec: CommandSpec): void {
    this.checkCommandLimit(spec);
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

  /**
   * Replaces a leased spare a little later: a spawn blocks the event loop for a few ms,
   * which should not land on the session that just took the spare while it initializes.
   */
  private refillSoon(): void {
    if (this.refillTimer) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = undefined;
      if (!this.draining) this.pool.refillAll();
    }, REFILL_DELAY_MS);
    this.refillTimer.unref();
  }

  private track(child: ChildTransport): ChildTransport {
    this.live.add(child);
    void child.exited.then(() => {
      this.live.delete(child);
      // A slot came free: pools held back by a limit can fill up again.
      if (!this.draining) this.pool.refillAll();
    });
    return child;
  }
}
