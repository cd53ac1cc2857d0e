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
 *
 * Before a session reads from it, the gateway may send the child requests of its own (the
 * warm-up ping, the era probe): their answers, late ones too, never reach a session.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { once } from 'node:events';
import type { ChildPort } from '../bridge/childPort.js';
import { asMessage } from '../bridge/jsonrpc.js';
import type { CommandSpec } from '../commands/types.js';
import { UpstreamExitedError, WardenError } from '../errors.js';
import { LogThrottle, type Logger } from '../logging/logger.js';
import {
  DEFAULT_MAX_LINE_BYTES,
  DEFAULT_STOP_TIMEOUTS,
  DEFAULT_TREE_SAMPLE_MS,
  type ChildTransportOptions,
  type ExitInfo,
  type StopTimeouts,
} from './childOptions.js';
import type { Era } from './era.js';
import { LineSplitter } from './lineSplitter.js';
import type { SpawnedChild } from './spawn.js';
import { stopTarget, until, type StopSignal, type StopTarget } from './stopTree.js';
import { within } from './within.js';

export type { ChildTransportOptions, ExitInfo, StopTimeouts } from './childOptions.js';

/** Ids of the gateway's own requests to a child (its warm-up ping, the era probe): their answers never reach a session. */
export const WARMUP_ID = 'mcp-warden-warmup';
export const ERA_PROBE_ID = 'mcp-warden-era-probe';
export type OwnRequestId = typeof WARMUP_ID | typeof ERA_PROBE_ID;
const OWN_IDS: ReadonlySet<unknown> = new Set<OwnRequestId>([WARMUP_ID, ERA_PROBE_ID]);

/** How one of the gateway's own requests ended: its answer (a result or an error), no answer in time, or the child gone. */
export type OwnReply = { readonly outcome: 'answer'; readonly message: JSONRPCMessage } | { readonly outcome: 'timeout' | 'exited' };

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
  /** The era its entry's server speaks (era.ts), stamped before the child is handed out. */
  era: Era | undefined;
  /** True when this child was sent the era probe (it is warm then: no ping needed). */
  probed = false;

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
  /** Stopped for a reason that does not wait for a voluntary exit (its memory): no EOF stage. */
  private urgent = false;
  private started = false;
  private sawMessage = false;
  private reading = false;
  private readonly ownAnswers = new Map<unknown, (message: JSONRPCMessage) => void>();

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
    this.read(true);
  }

  /**
   * Before any session uses it: sends a `ping` (which MCP allows before `initialize`) and
   * waits up to `timeoutMs` for the answer. A spare that answered has finished starting
   * and has run its request path once, so the first session's `initialize` is quicker.
   * Resolves false when no answer came in time (the child may still be fine).
   */
  async warmUp(timeoutMs: number): Promise<boolean> {
    return (await this.ask(WARMUP_ID, 'ping', undefined, timeoutMs)).outcome === 'answer';
  }

  /**
   * Before any session uses it: sends one of the gateway's own requests and waits up to
   * `timeoutMs` for its answer, which no session ever sees (nor a late one). Never rejects.
   */
  async ask(id: OwnRequestId, method: string, params: Record<string, unknown> | undefined, timeoutMs: number): Promise<OwnReply> {
    if (this.started) return { outcome: 'timeout' };
    let answered!: (message: JSONRPCMessage) => void;
    const answer = new Promise<JSONRPCMessage>((resolve) => (answered = resolve));
    this.ownAnswers.set(id, answered);
    this.read(true);
    try {
      await this.send({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });
      let reply: OwnReply = { outcome: 'timeout' };
      const outcome = Promise.race([
        answer.then((message) => ({ outcome: 'answer', message }) as const),
        this.exited.then(() => ({ outcome: 'exited' }) as const),
      ]).then((value) => {
        reply = value;
      });
      await within(outcome, timeoutMs);
      return reply;
    } catch {
      return { outcome: 'exited' }; // it could not take the request: its input is closed
    } finally {
      this.ownAnswers.delete(id);
      if (!this.started) this.read(false);
    }
  }

  /** Attaches (once) or detaches the stdout reader. */
  private read(on: boolean): void {
    if (on === this.reading) return;
    this.reading = on;
    if (on) this.child.subprocess.stdout.on('data', this.onData);
    else this.child.subprocess.stdout.off('data', this.onData);
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

  /**
   * Ends the child at once for `error` (e.g. it used too much memory): in-flight requests
   * get `error`, and the stop starts at SIGTERM, without waiting for an exit on EOF.
   */
  terminate(error: WardenError): void {
    this.urgent = true;
    this.fail(error);
  }

  /** Processes seen below the child so far (Linux; empty elsewhere). */
  get knownDescendants(): readonly number[] {
    return this.tree.pids;
  }

  private async stop(): Promise<void> {
    const { eofMs, termMs, killMs } = this.stopTimeouts;
    // Listed before EOF too: a server that exits on EOF takes its tree's shape with it.
    this.tree.refresh();
    if (!this.isClosed && !this.urgent) {
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
    if ('id' in message && OWN_IDS.has(message.id) && !('method' in message)) {
      this.ownAnswers.get(message.id)?.(message);
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
