/**
 * Starts children and keeps score per command. A start that fails (spawn error, or an
 * exit inside the startup window) is retried with exponential backoff a bounded number of
 * times; then the command's circuit opens and starts are refused until it half-opens.
 * Other commands are unaffected. The child's last stderr lines go to the log only.
 * Every child leaves start() with its entry's era stamped on it (era.ts): the first one of
 * an entry is probed; one that exits on the probe makes the entry legacy and is replaced.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { AuditRecorder } from '../audit/recorder.js';
import { buildChildEnv, defaultChildEnvBase, type ChildEnvBase } from '../commands/env.js';
import type { CommandSpec } from '../commands/types.js';
import { UpstreamFailedError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { ChildTransport, type ChildTransportOptions } from './childTransport.js';
import { CircuitBreaker, DEFAULT_CIRCUIT, type CircuitOptions, type CircuitState } from './circuit.js';
import type { EraRegistry } from './era.js';
import { spawnChild } from './spawn.js';
import { newStats, recordExit, type CommandStats } from './stats.js';
import { within } from './within.js';

export interface SupervisorOptions {
  readonly logger: Logger;
  readonly child?: ChildTransportOptions;
  /** PATH, HOME and LANG every child starts from. @default defaultChildEnvBase() */
  readonly envBase?: ChildEnvBase;
  /** Start attempts per request, the first included. @default 3 */
  readonly startAttempts?: number;
  /** Delay before the first retry; doubles with each further one. @default 100 */
  readonly retryBaseMs?: number;
  /** A child that exits this soon after spawning failed to start. @default 100 */
  readonly startupWindowMs?: number;
  readonly circuit?: CircuitOptions;
  /** Receives `spawn` and `exit` events. */
  readonly audit?: AuditRecorder;
  readonly metrics?: Metrics;
  /** Learns each entry's era from its first child; unset: no probe, no era stamped. */
  readonly eras?: EraRegistry;
  /** Told of every child right after its spawn (the memory sampler follows it from there). */
  readonly onSpawn?: (child: ChildTransport) => void;
}

interface CommandState {
  readonly circuit: CircuitBreaker;
  readonly stats: CommandStats;
  /** Why the last start failed, repeated while the circuit refuses starts. */
  lastFailure: string | undefined;
}

export interface CommandHealth extends CommandStats {
  readonly circuit: CircuitState;
}

/** After a legacy verdict, how long to watch for an exit the probe caused. */
const PROBE_EXIT_GRACE_MS = 100;

export class Supervisor {
  private readonly commands = new Map<string, CommandState>();
  private readonly envBase: ChildEnvBase;

  constructor(private readonly options: SupervisorOptions) {
    this.envBase = options.envBase ?? defaultChildEnvBase();
  }

  health(key: string): CommandHealth {
    const { circuit, stats } = this.state(key);
    return { ...stats, lastExits: [...stats.lastExits], circuit: circuit.state };
  }

  /** Forgets `key`'s circuit and counters (its entry changed: a different server now). */
  forget(key: string): void {
    this.commands.delete(key);
  }

  /** Seconds until the command may be started again, 0 if now. */
  retryAfterSeconds(key: string): number {
    return Math.ceil(this.state(key).circuit.retryAfterMs() / 1000);
  }

  /** Starts `spec` with the accepted env vars, retrying failed starts with backoff. */
  async start(spec: CommandSpec, accepted: Readonly<Record<string, string>>): Promise<ChildTransport> {
    const state = this.state(spec.key);
    const { circuit, stats } = state;
    const halfOpen = circuit.state === 'half-open';
    if (!circuit.tryAcquire()) {
      const last = state.lastFailure ? ` (last: ${state.lastFailure})` : '';
      throw new UpstreamFailedError(`the command is failing${last}; try again later`, this.retryAfterSeconds(spec.key));
    }
    const env = buildChildEnv(spec, { ...accepted }, this.envBase);
    // A half-open circuit gets one trial start, not a full round of retries.
    const attempts = halfOpen ? 1 : Math.max(1, this.options.startAttempts ?? 3);
    const base = this.options.retryBaseMs ?? 100;
    let reason = 'unknown';
    let stderr: string[] = [];
    for (let attempt = 0; attempt < attempts; attempt += 1) {
      if (attempt > 0) {
        stats.restarts += 1;
        await delay(base * 2 ** (attempt - 1), undefined, { ref: false });
      }
      try {
        let child = await this.startOnce(spec, env, stats);
        if (!(await this.settleEra(child, stats))) {
          // It exited on the era probe (which made the entry legacy): its replacement is not probed.
          stats.restarts += 1;
          child = await this.startOnce(spec, env, stats);
          await this.settleEra(child, stats);
        }
        circuit.recordSuccess();
        this.watch(child, state);
        return child;
      } catch (error) {
        stats.failures += 1;
        reason = error instanceof UpstreamFailedError ? error.message.replace(/^upstream failed to start: /, '') : String(error);
        stderr = (error as { stderr?: string[] }).stderr ?? stderr;
      }
    }
    circuit.recordFailure();
    state.lastFailure = reason;
    this.options.logger.warn('upstream failed to start', { command: spec.key, attempts, reason, stderr: stderr.slice(-10) });
    throw new UpstreamFailedError(reason, Math.max(1, this.retryAfterSeconds(spec.key)));
  }

  private async startOnce(spec: CommandSpec, env: Record<string, string>, stats: CommandStats): Promise<ChildTransport> {
    const started = performance.now();
    const spawned = await spawnChild(spec, env, this.options.logger);
    stats.spawns += 1;
    this.options.metrics?.spawns.inc({ command: spec.key });
    const child = new ChildTransport(spawned, spec, this.options.logger, this.options.child);
    this.options.onSpawn?.(child);
    this.options.audit?.record('spawn', { command: spec.key, pid: child.pid });
    void child.exited.then((exit) => this.options.audit?.record('exit', { command: spec.key, pid: child.pid, ...exit }));
    const exitedEarly = await within(child.exited, this.options.startupWindowMs ?? 100);
    if (!exitedEarly) {
      this.options.metrics?.spawnSeconds.observe({ command: spec.key }, (performance.now() - started) / 1000);
      return child;
    }
    this.options.metrics?.exits.inc({ command: spec.key, reason: 'failed_start' });
    const exit = await child.exited;
    recordExit(stats, exit.signal ?? exit.code ?? 'unknown');
    const error = new UpstreamFailedError(exit.signal ? `killed by ${exit.signal} during startup` : `exited with code ${exit.code} during startup`);
    throw Object.assign(error, { stderr: child.stderrTail() });
  }

  /**
   * Stamps the entry's era on a new child, probing it if the era is not known yet. False
   * when the child exited during its probe (some servers exit on any request that comes
   * before `initialize`); that exit is not a failed start.
   */
  private async settleEra(child: ChildTransport, stats: CommandStats): Promise<boolean> {
    const eras = this.options.eras;
    if (!eras) return true;
    await eras.probe(child);
    if (!child.probed) return true;
    // A server that refuses the probe may answer it and exit just after: give it a moment.
    if (child.era === 'legacy' && !child.closed) await within(child.exited, PROBE_EXIT_GRACE_MS);
    if (!child.closed) return true;
    const exit = await child.exited;
    recordExit(stats, exit.signal ?? exit.code ?? 'unknown');
    this.options.metrics?.exits.inc({ command: child.spec.key, reason: 'failed_start' });
    this.options.logger.info('child exited on the era probe, starting another', {
      command: child.spec.key,
      pid: child.pid,
      code: exit.code,
      signal: exit.signal,
    });
    return false;
  }

  private watch(child: ChildTransport, state: CommandState): void {
    const { circuit, stats } = state;
    void child.exited.then((exit) => {
      recordExit(stats, exit.signal ?? exit.code ?? 'unknown');
      const reason = exit.reason !== 'exited' ? 'stopped' : child.answered ? 'crashed' : 'failed_start';
      this.options.metrics?.exits.inc({ command: child.spec.key, reason });
      if (exit.reason !== 'exited') return;
      if (!child.inUse) {
        // A spare that ended before any session used it (killed from outside, or crashed
        // idle): the pool replaces it, with a delay; the command's circuit is not touched.
        this.options.logger.warn('warm spare exited', { command: child.spec.key, pid: child.pid, code: exit.code, signal: exit.signal });
      } else if (child.answered) {
        stats.crashes += 1;
      } else {
        // Died before saying anything: a start failure, even if it took longer than the window.
        stats.failures += 1;
        circuit.recordFailure();
        state.lastFailure = `exited with ${exit.signal ?? `code ${exit.code}`} before answering`;
        this.options.logger.warn('child exited before answering', { command: child.spec.key, pid: child.pid, stderr: child.stderrTail().slice(-10) });
      }
    });
  }

  private state(key: string): CommandState {
    let state = this.commands.get(key);
    if (!state) {
      state = { circuit: new CircuitBreaker(this.options.circuit ?? DEFAULT_CIRCUIT), stats: newStats(), lastFailure: undefined };
      this.commands.set(key, state);
    }
    return state;
  }
}
