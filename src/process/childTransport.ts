/**
 * The child side of a session as an SDK Transport: JSON-RPC lines over a spawned server's
 * stdin/stdout. Framing is a newline splitter with a size cap; lines that are not
 * JSON-RPC are dropped (and logged, throttled); a line over the cap ends the child.
 *
 * close() stops the whole tree in bounded stages (docs/processes.md), resolves once it is
 * gone, is idempotent; onclose fires once. The tree and its process groups are listed from
 * /proc before EOF and again before each signal (stopTree.ts): EOF, wait `eofMs` -> SIGTERM
 * to the child's group, every listed group and process, wait `termMs` for all of them ->
 * SIGKILL to the same, wait `killMs` -> SIGKILL to listed groups that still have members.
 * A child that exits on its own goes through the same stages without the EOF; output from
 * it schedules a listing within `treeSampleMs`, so helpers it started are known by then.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { once } from 'node:events';
import type { ChildPort } from '../bridge/childPort.js';
import { asMessage } from '../bridge/jsonrpc.js';
import type { CommandSpec } from '../commands/types.js';
import { UpstreamExitedError, WardenError } from '../errors.js';
import { LogThrottle, type Logger } from '../logging/logger.js';
import { LineSplitter } from './lineSplitter.js';
import type { SpawnedChild } from './spawn.js';
import { stopTarget, until, type StopSignal, type StopTarget } from './stopTree.js';
import { within } from './within.js';

/** How long each stage of a stop may take before the next, harsher one. */
export interface StopTimeouts {
  /** After closing stdin, wait this long for a voluntary exit. @default 1000 */
  readonly eofMs: number;
  /** After SIGTERM to the tree, wait this long before SIGKILL. @default 2000 */
  readonly termMs: number;
  /** After SIGKILL, wait at most this long for the child and its listed descendants to be gone. @default 2000 */
  readonly killMs: number;
}

const DEFAULT_STOP_TIMEOUTS: StopTimeouts = { eofMs: 1000, termMs: 2000, killMs: 2000 };

export interface ChildTransportOptions {
  /** Longest line the child may write on stdout, in bytes. @default 16 MiB */
  readonly maxLineBytes?: number;
  readonly stopTimeouts?: StopTimeouts;
  /**
   * After the child writes output, list the processes below it once within this many ms,
   * so helpers it started are known if it later dies on its own. 0: only when stopping.
   * @default 1000
   */
  readonly treeSampleMs?: number;
  /** Counts bytes written to stdin (`in`) and read from stdout (`out`). */
  readonly bytes?: { readonly in: { inc(n: number): void }; readonly out: { inc(n: number): void } };
}

const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;
const DEFAULT_TREE_SAMPLE_MS = 1000;

/** The id of the gateway's own warm-up ping; its answer is never forwarded to a session. */
const WARMUP_ID = 'mcp-warden-warmup';

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: string | null;
  /** `stopped`: the gateway asked it to stop; `exited`: it ended on its own. */
  readonly reason: 'stopped' | 'exited';
}

export class ChildTransport implements ChildPort {
  onmessage?: (message: JSONRPCMessage) => void;
  onerror?: (error: Error) => void;
  onclose?: () => void;

  readonly pid: number;
  /** Resolves once the child process has exited (close() resolves once its tree is gone too). */
  readonly exited: Promise<ExitInfo>;
  /** Why the child ended, as the error in-flight requests should receive. */
  closeError: WardenError | undefined;
  /** True when this child came from the warm pool. */
  pooled = false;

  private readonly lines: LineSplitter;
  private readonly junkThrottle = new LogThrottle(5, 10_000);
  private readonly stopTimeouts: StopTimeouts;
  private stopping: Promise<void> | undefined;
  private readonly tree: StopTarget;
  private readonly sampleMs: number;
  private sampleTimer: NodeJS.Timeout | undefined;
  /** Without /proc: the `ps` walks still running. */
  private readonly walks: Promise<void>[] = [];
  private isClosed = false;
  private started = false;
  private sawMessage = false;
  private warmUpAnswered: (() => void) | undefined;

  constructor(
    private readonly child: SpawnedChild,
    readonly spec: CommandSpec,
    private readonly logger: Logger,
    private readonly options: ChildTransportOptions = {},
  ) {
    this.pid = child.pid;
    this.lines = new LineSplitter(options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
    this.stopTimeouts = options.stopTimeouts ?? DEFAULT_STOP_TIMEOUTS;
    this.sampleMs = options.treeSampleMs ?? DEFAULT_TREE_SAMPLE_MS;
    this.tree = stopTarget(child.pid);
    this.exited = child.subprocess.then((result) => this.onExit(result.exitCode ?? null, result.signal ?? null));
    // A server that closed its stdin (EPIPE) can't take requests any more: end it, unless it
    // is exiting anyway (then its exit code is the better reason).
    child.subprocess.stdin.on('error', () => {
      void within(this.exited, 200).then((exited) => {
        if (!exited) this.fail(new UpstreamExitedError('its input was closed'));
      });
    });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** True once a session started reading from it (a spare that was never leased is not). */
  get inUse(): boolean {
    return this.started;
  }

  /** True once the child wrote at least one JSON-RPC message (it got past its startup). */
  get answered(): boolean {
    return this.sawMessage;
  }

  /** The last lines the child wrote on stderr. */
  stderrTail(): string[] {
    return this.child.stderr.tail();
  }

  /** The child's stdin, for backpressure decisions by the caller. */
  get writableLength(): number {
    return this.child.subprocess.stdin.writableLength;
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('ChildTransport already started');
    this.started = true;
    this.child.subprocess.stdout.on('data', this.onData);
  }

  /**
   * Before any session uses it: sends a `ping` (which MCP allows before `initialize`) and
   * waits up to `timeoutMs` for the answer. A spare that answered has finished starting
   * and has run its request path once, so the first session's `initialize` is quicker.
   * Resolves false when no answer came in time (the child may still be fine).
   */
  async warmUp(timeoutMs: number): Promise<boolean> {
    if (this.started) return false;
    const stdout = this.child.subprocess.stdout;
    let answered!: () => void;
    const answer = new Promise<void>((resolve) => (answered = resolve));
    this.warmUpAnswered = answered;
    stdout.on('data', this.onData);
    try {
      await this.send({ jsonrpc: '2.0', id: WARMUP_ID, method: 'ping' });
      let ok = false;
      const outcome = Promise.race([answer.then(() => true), this.exited.then(() => false)]).then((value) => {
        ok = value;
      });
      return (await within(outcome, timeoutMs)) && ok;
    } catch {
      return false;
    } finally {
      this.warmUpAnswered = undefined;
      if (!this.started) stdout.off('data', this.onData);
    }
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.isClosed || this.stopping) throw this.closeError ?? new UpstreamExitedError('not running');
    const stdin = this.child.subprocess.stdin;
    if (stdin.destroyed || stdin.writableEnded) {
      // Most often the server is exiting: give its exit code a moment to become the reason.
      await within(this.exited, 200);
      throw this.closeError ?? new UpstreamExitedError('its input was closed');
    }
    const line = JSON.stringify(message) + '\n';
    this.options.bytes?.in.inc(Buffer.byteLength(line));
    // Messages written in the same turn of the event loop (e.g. requests read from several
    // sockets in one poll) leave in one writev instead of one syscall each.
    if (!stdin.writableCorked) {
      stdin.cork();
      setImmediate(() => stdin.uncork());
    }
    if (stdin.write(line)) return;
    try {
      await Promise.race([once(stdin, 'drain'), this.exited]);
    } catch {
      // EPIPE: the server is gone or stopped reading for good.
      await within(this.exited, 200);
      throw this.closeError ?? new UpstreamExitedError('its input was closed');
    }
  }

  /** Stops the whole tree in bounded stages and resolves once it is gone (see the file header). Idempotent. */
  close(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  /** Processes seen below the child so far (Linux; empty elsewhere). */
  get knownDescendants(): readonly number[] {
    return this.tree.pids;
  }

  private async stop(): Promise<void> {
    const { eofMs, termMs, killMs } = this.stopTimeouts;
    // Listed before EOF too: a server that exits on EOF takes its tree's shape with it.
    this.tree.refresh();
    if (!this.isClosed) {
      this.child.subprocess.stdin.end();
      if (!(await within(this.exited, eofMs))) this.logger.debug('child did not exit on stdin EOF, sending SIGTERM', this.tags());
    }
    if (!(await this.stage('SIGTERM', termMs))) {
      this.logger.warn(this.isClosed ? 'descendants ignored SIGTERM, sending SIGKILL' : 'child ignored SIGTERM, sending SIGKILL', this.tags());
      await this.stage('SIGKILL', killMs);
    }
    await this.exited;
    this.tree.sweep();
    // Without /proc the tree walks (`ps`) finish too, bounded, so nothing of ours outlives close().
    await within(Promise.allSettled(this.walks), killMs);
  }

  /**
   * One stage: lists the tree again, signals the child's group, every listed group and
   * process, then waits up to `ms` for the child and every listed process to be gone. The
   * grace period runs from the signal. Resolves false when something is still running.
   */
  private async stage(signal: StopSignal, ms: number): Promise<boolean> {
    this.tree.refresh();
    const gone = (): boolean => this.isClosed && !this.tree.othersAlive();
    if (gone()) return true;
    if (this.isClosed) this.logger.debug('child gone, signalling its descendants', { ...this.tags(), signal });
    this.walks.push(this.tree.signal(signal));
    return until(gone, ms);
  }

  /** After output from the child, list its tree once within `treeSampleMs` (helpers it started meanwhile). */
  private sampleSoon(): void {
    if (this.sampleTimer !== undefined || this.isClosed || this.stopping || this.sampleMs <= 0) return;
    this.sampleTimer = setTimeout(() => {
      this.sampleTimer = undefined;
      if (!this.isClosed && !this.stopping) this.tree.refresh();
    }, this.sampleMs);
    this.sampleTimer.unref();
  }

  private readonly onData = (chunk: Buffer): void => {
    this.options.bytes?.out.inc(chunk.length);
    this.sampleSoon();
    if (this.closeError) return;
    if (!this.lines.push(chunk, this.onLine)) {
      this.fail(new WardenError('upstream_protocol', 'MCP server wrote a line over the size limit'));
    }
  };

  private readonly onLine = (line: string): void => {
    if (this.isClosed || this.closeError) return;
    let message;
    try {
      message = asMessage(JSON.parse(line));
    } catch {
      message = undefined;
    }
    if (message === undefined) {
      if (line.trim() === '') return;
      if (this.junkThrottle.allow((n) => this.logger.warn('non-JSON-RPC stdout lines suppressed', { ...this.tags(), lines: n }))) {
        this.logger.warn('dropped a stdout line that is not JSON-RPC', this.tags());
      }
      return;
    }
    this.sawMessage = true;
    if ('id' in message && message.id === WARMUP_ID && !('method' in message)) {
      this.warmUpAnswered?.();
      return;
    }
    this.onmessage?.(message);
  };

  private fail(error: WardenError): void {
    if (this.closeError) return;
    this.closeError = error;
    this.logger.warn('ending child', { ...this.tags(), reason: error.message });
    this.onerror?.(error);
    void this.close();
  }

  private onExit(code: number | null, signal: string | null): ExitInfo {
    clearTimeout(this.sampleTimer);
    this.sampleTimer = undefined;
    const reason = this.stopping ? 'stopped' : 'exited';
    if (!this.closeError && reason === 'exited') {
      this.closeError = new UpstreamExitedError(signal ? `signal ${signal}` : `code ${code}`);
    }
    this.isClosed = true;
    this.lines.clear();
    const level = reason === 'stopped' ? 'debug' : 'warn';
    this.logger.log(level, 'child exited', { ...this.tags(), code, signal, reason });
    const onclose = this.onclose;
    this.onclose = undefined;
    queueMicrotask(() => onclose?.());
    // What it left running (its group, helpers it was seen to start) goes in the usual stages.
    if (reason === 'exited') void this.close();
    return { code, signal, reason };
  }

  private tags() {
    return { command: this.spec.key, pid: this.pid };
  }
}
