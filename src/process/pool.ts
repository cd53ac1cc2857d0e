/**
 * Warm spares: per command, `min` children started ahead of time so that a session
 * without ENV_* headers connects without waiting for a spawn. Spares are keyed by the
 * command and the env fingerprint (only the empty env is ever pooled), used by exactly
 * one session, never returned. A spare that dies or outlives its TTL is replaced.
 * Refills go through a shared queue that bounds concurrent spawns.
 */
import { EMPTY_ENV_FINGERPRINT, envFingerprint } from '../commands/env.js';
import type { CommandSpec } from '../commands/types.js';
import { DrainingError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ChildTransport } from './childTransport.js';
import type { SpawnQueue } from './spawnQueue.js';
import type { Supervisor } from './supervisor.js';

export interface PoolOptions {
  readonly logger: Logger;
  readonly supervisor: Supervisor;
  /** Shared spawn queue; refills run at priority 0, below session starts. */
  readonly queue: SpawnQueue;
  /** A spare older than this is stopped and replaced. @default 600000 */
  readonly spareTtlMs: number;
  /** Asked before each refill spawn: false when a global or per-command limit is reached. */
  readonly hasRoom: (spec: CommandSpec) => boolean;
}

interface Spare {
  readonly child: ChildTransport;
  readonly timer: NodeJS.Timeout;
  readonly since: number;
}

interface Target {
  readonly spec: CommandSpec;
  readonly min: number;
}

/** Longest wait for a new spare's warm-up ping before it is offered anyway. */
const WARMUP_TIMEOUT_MS = 2_000;

function poolKey(commandKey: string, fingerprint: string): string {
  return `${commandKey}\u0000${fingerprint}`;
}

export class WarmPool {
  private readonly spares = new Map<string, Spare[]>();
  private readonly targets = new Map<string, Target>();
  private readonly inFlight = new Map<string, number>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private readonly starts = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly options: PoolOptions) {}

  /** Keeps `min` spares of `spec` ready (env-free sessions only). */
  setTarget(spec: CommandSpec, min: number): void {
    if (min <= 0) return;
    const key = poolKey(spec.key, EMPTY_ENV_FINGERPRINT);
    this.targets.set(key, { spec, min });
    this.refill(key);
  }

  /**
   * Stops keeping spares of `commandKey` (its entry was removed or changed): its spares stop,
   * and one still starting is stopped once started.
   */
  dropTarget(commandKey: string): void {
    const key = poolKey(commandKey, EMPTY_ENV_FINGERPRINT);
    this.targets.delete(key);
    const list = this.spares.get(key) ?? [];
    this.spares.delete(key);
    for (const spare of list) {
      clearTimeout(spare.timer);
      void spare.child.close();
    }
  }

  /** A ready spare for this command and env, or undefined. The caller refills after counting it. */
  take(spec: CommandSpec, accepted: Readonly<Record<string, string>>): ChildTransport | undefined {
    const key = poolKey(spec.key, envFingerprint(accepted));
    const list = this.spares.get(key);
    let spare = list?.shift();
    // A spare started for an earlier version of the entry runs something else: never handed out.
    while (spare && (spare.child.closed || spare.child.spec !== spec)) {
      clearTimeout(spare.timer);
      if (!spare.child.closed) void spare.child.close();
      spare = list?.shift();
    }
    if (spare) clearTimeout(spare.timer);
    return spare?.child;
  }

  /**
   * Keeps `child` (started for `child.spec` with no env, never used) as a spare if its
   * command's pool is short of one. False when it is not wanted: the caller stops it.
   */
  offer(child: ChildTransport): boolean {
    const key = poolKey(child.spec.key, EMPTY_ENV_FINGERPRINT);
    const target = this.targets.get(key);
    if (this.closed || !target || target.spec !== child.spec || child.closed || child.inUse) return false;
    if ((this.spares.get(key)?.length ?? 0) + (this.inFlight.get(key) ?? 0) >= target.min) return false;
    this.keep(key, target.spec, child);
    return true;
  }

  /** Starts spares for every command below its minimum (room permitting). */
  refillAll(): void {
    for (const key of this.targets.keys()) this.refill(key);
  }

  /** Spares of one command, or of all. */
  count(commandKey?: string): number {
    let n = 0;
    for (const [key, list] of this.spares) if (commandKey === undefined || key.startsWith(`${commandKey}\u0000`)) n += list.length;
    return n;
  }

  /** Spares being started right now. */
  starting(commandKey?: string): number {
    let n = 0;
    for (const [key, count] of this.inFlight) if (commandKey === undefined || key.startsWith(`${commandKey}\u0000`)) n += count;
    return n;
  }

  /** Stops the oldest spare (of `commandKey`, or of any command) to free a slot. */
  evictOne(commandKey?: string): boolean {
    const child = this.takeOldest(commandKey);
    if (child) void child.close();
    return child !== undefined;
  }

  /** Stops the oldest spare of any command to free its memory; resolves once it is gone (false: there was none). */
  async giveBack(): Promise<boolean> {
    const child = this.takeOldest(undefined);
    if (!child) return false;
    this.options.logger.debug('stopping a warm spare to free memory', { command: child.spec.key, pid: child.pid });
    await child.close();
    return true;
  }

  private takeOldest(commandKey: string | undefined): ChildTransport | undefined {
    let oldest: { key: string; spare: Spare } | undefined;
    for (const [key, list] of this.spares) {
      if (commandKey !== undefined && !key.startsWith(`${commandKey}\u0000`)) continue;
      const first = list[0];
      if (first && (!oldest || first.since < oldest.spare.since)) oldest = { key, spare: first };
    }
    if (!oldest) return undefined;
    this.remove(oldest.key, oldest.spare);
    return oldest.spare.child;
  }

  async closeAll(): Promise<void> {
    this.closed = true;
    for (const timer of this.retryTimers) clearTimeout(timer);
    // Starts under way finish first; startSpare then stops what they produced.
    await Promise.allSettled([...this.starts]);
    const all = [...this.spares.values()].flat();
    this.spares.clear();
    for (const spare of all) clearTimeout(spare.timer);
    await Promise.allSettled(all.map((spare) => spare.child.close()));
  }

  private refill(key: string): void {
    const target = this.targets.get(key);
    if (!target || this.closed) return;
    const missing = target.min - (this.spares.get(key)?.length ?? 0) - (this.inFlight.get(key) ?? 0);
    for (let i = 0; i < missing; i += 1) {
      if (!this.options.hasRoom(target.spec)) return;
      this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
      const start: Promise<void> = this.options.queue
        .add(() => this.startSpare(key, target.spec), 0)
        .catch((error: unknown) => {
          if (error instanceof DrainingError) return; // the gateway is closing: nothing to retry
          this.options.logger.warn('could not start a warm spare', { command: target.spec.key, error: String(error) });
          this.retryLater(key, target.spec);
        })
        .finally(() => {
          this.inFlight.set(key, (this.inFlight.get(key) ?? 1) - 1);
          this.starts.delete(start);
          // The entry changed while this spare started (it was stopped): start one of the new spec.
          const now = this.targets.get(key);
          if (now && now.spec !== target.spec) this.refill(key);
        });
      this.starts.add(start);
    }
  }

  /**
   * Starts a spare and offers it once it answered a ping (or the wait ran out). The wait is
   * part of the start, inside its queue slot: it is the server's own startup, and
   * spawnConcurrency bounds how many of those run at once. A child that was probed for its
   * entry's era at its start (supervisor) has had its request path run: no ping then.
   */
  private async startSpare(key: string, spec: CommandSpec): Promise<void> {
    if (this.closed) return;
    const child = await this.options.supervisor.start(spec, {});
    if (!this.closed && !child.probed && !(await child.warmUp(WARMUP_TIMEOUT_MS))) {
      this.options.logger.debug('warm spare did not answer a ping; offering it anyway', { command: spec.key, pid: child.pid });
    }
    // Closing, or the entry was removed or changed while this spare started.
    if (this.closed || this.targets.get(key)?.spec !== spec) {
      await child.close();
      return;
    }
    if (child.closed) throw new Error('the spare exited while warming up');
    this.keep(key, spec, child);
  }

  /** Adds a ready child to the spares of `key`, with its TTL and its replacement should it die. */
  private keep(key: string, spec: CommandSpec, child: ChildTransport): void {
    const spare: Spare = {
      child,
      since: Date.now(),
      timer: setTimeout(() => {
        this.remove(key, spare);
        void child.close();
        this.refill(key);
      }, this.options.spareTtlMs).unref(),
    };
    const list = this.spares.get(key) ?? [];
    list.push(spare);
    this.spares.set(key, list);
    void child.exited.then(() => {
      // A spare that died on its own is replaced after a delay, so a server that keeps
      // dying idle cannot make the pool spin.
      if (this.remove(key, spare)) this.retryLater(key, spec);
    });
  }

  /** After a failed start, try again once the command's circuit may allow it. */
  private retryLater(key: string, spec: CommandSpec): void {
    if (this.closed) return;
    const waitMs = Math.max(1000, this.options.supervisor.retryAfterSeconds(spec.key) * 1000);
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      this.refill(key);
    }, waitMs).unref();
    this.retryTimers.add(timer);
  }

  private remove(key: string, spare: Spare): boolean {
    const list = this.spares.get(key);
    const index = list?.indexOf(spare) ?? -1;
    if (!list || index === -1) return false;
    list.splice(index, 1);
    clearTimeout(spare.timer);
    return true;
  }
}
