/**
 * A session's child that can sleep: the ChildPort of a session whose whitelist entry says
 * `"idle": "hibernate"`. It owns the real child and records what the session told it
 * (replay.ts). Told to hibernate (by the hibernator when the session went quiet, or by the
 * memory budget), it stops the child while the session stays. The next message the session
 * sends starts a child (from the warm pool when there is one), replays the handshake (the
 * client's `initialize`, whose answer is swallowed, then `notifications/initialized`), the
 * logging level and the subscriptions, then forwards the message and every one that came
 * meanwhile, in order. A subscription the new child refuses is reported to the client as
 * `notifications/resources/list_changed`. A start that fails fails the waiting messages
 * (the client gets the error as their answer) and leaves the session asleep; the next
 * message tries again. The bridge, the guard and the transports see one ChildPort
 * throughout.
 */
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { ChildPort } from '../bridge/childPort.js';
import { isNotification, isRequest, isResponse } from '../bridge/jsonrpc.js';
import type { CommandSpec } from '../commands/types.js';
import { toWardenError, UpstreamExitedError, WardenError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ChildTransport } from './childTransport.js';
import { SessionReplay } from './replay.js';

export interface HibernateOptions {
  readonly logger: Logger;
  /** A child for this session, as its first one was got (warm spare, or a start under the limits). */
  readonly restart: () => Promise<ChildTransport>;
  /** Quiet time after which the session's child is stopped, ms. */
  readonly afterMs: number;
  /** Longest the replayed `initialize` may take, ms. @default 30000 */
  readonly initializeTimeoutMs?: number;
  /** Told when the child was stopped for idleness. */
  readonly onHibernate?: (spec: CommandSpec) => void;
  /** Told when a child was started again, how long until the session could go on, and whether it was a warm spare. */
  readonly onResume?: (spec: CommandSpec, seconds: number, pooled: boolean) => void;
}

type State = 'live' | 'hibernated' | 'waking' | 'closed';

interface Waiting {
  readonly message: JSONRPCMessage;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** Requests the child or the client may leave unanswered before the oldest is forgotten. */
const MAX_OUTSTANDING = 1024;
const OWN_PREFIX = 'mcp-warden-resume-';

export class HibernatingPort implements ChildPort {
  onmessage?: (message: JSONRPCMessage) => void;
  onerror?: (error: Error) => void;
  onclose?: () => void;

  readonly spec: CommandSpec;
  readonly pooled: boolean;
  closeError: WardenError | undefined;
  private state: State = 'live';
  private child: ChildTransport | undefined;
  private lastPid: number;
  private readonly replay = new SessionReplay();
  private readonly waiting: Waiting[] = [];
  /** The client's requests the child has not answered. */
  private readonly atChild = new Set<RequestId>();
  /** The child's requests the client has not answered. */
  private readonly atClient = new Set<RequestId>();
  /** Answers awaited for the gateway's own replayed requests. */
  private readonly own = new Map<string, (message: JSONRPCMessage) => void>();
  private nextOwn = 0;
  private closing: Promise<void> | undefined;

  constructor(
    first: ChildTransport,
    private readonly options: HibernateOptions,
  ) {
    this.child = first;
    this.spec = first.spec;
    this.pooled = first.pooled;
    this.lastPid = first.pid;
  }

  /** The current child's pid; the last one's while asleep. */
  get pid(): number {
    return this.child?.pid ?? this.lastPid;
  }

  get writableLength(): number {
    return this.child?.writableLength ?? 0;
  }

  /** True while the session has no child. */
  get hibernated(): boolean {
    return this.state === 'hibernated';
  }

  /** The child now serving the session (none while asleep). */
  get current(): ChildTransport | undefined {
    return this.state === 'live' ? this.child : undefined;
  }

  get afterMs(): number {
    return this.options.afterMs;
  }

  async start(): Promise<void> {
    const child = this.child!;
    this.attach(child);
    await child.start();
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.state === 'closed') throw this.closeError ?? new UpstreamExitedError('session closed');
    this.fromClient(message);
    // Straight to a live child (synchronously: the write keeps its place), else behind a wake-up.
    const sent =
      this.state === 'live' && this.waiting.length === 0
        ? this.child!.send(message)
        : new Promise<void>((resolve, reject) => {
            this.waiting.push({ message, resolve, reject });
            this.wake();
          });
    return sent.catch((error: unknown) => {
      if (isRequest(message)) this.atChild.delete(message.id);
      throw error;
    });
  }

  /**
   * Stops the child if nothing is outstanding either way; resolves true once it is gone,
   * false (at once) when the session cannot sleep now.
   */
  async hibernate(): Promise<boolean> {
    const child = this.child;
    if (this.state !== 'live' || !child || this.waiting.length > 0 || this.atChild.size > 0 || this.atClient.size > 0) return false;
    this.state = 'hibernated';
    this.child = undefined;
    this.lastPid = child.pid;
    this.own.clear();
    this.options.logger.debug('session hibernating: stopping its child', { command: this.spec.key, pid: child.pid });
    this.options.onHibernate?.(this.spec);
    await child.close();
    return true;
  }

  /** Ends the session's side: stops the child if there is one; onclose fires once. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const child = this.child;
    this.state = 'closed';
    this.child = undefined;
    this.own.clear();
    this.failWaiting(this.closeError ?? new UpstreamExitedError('session closed'));
    if (child) await child.close();
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.();
  }

  /** Wires a child to this port: its messages go to the session, its end ends the session while it serves it. */
  private attach(child: ChildTransport): void {
    child.onmessage = (message) => this.fromChild(child, message);
    child.onerror = (error) => this.onerror?.(error);
    child.onclose = () => {
      if (child !== this.child || this.state !== 'live') return; // stopped for sleep, or a resume that failed
      this.closeError = child.closeError ?? new UpstreamExitedError('exited');
      void this.close();
    };
  }

  private fromClient(message: JSONRPCMessage): void {
    this.replay.fromClient(message);
    if (isRequest(message)) bounded(this.atChild).add(message.id);
    else if (isResponse(message)) this.atClient.delete((message as { id: RequestId }).id);
    else if (isNotification(message) && message.method === 'notifications/cancelled') {
      const id = message.params?.requestId;
      if (typeof id === 'string' || typeof id === 'number') this.atChild.delete(id);
    }
  }

  private fromChild(child: ChildTransport, message: JSONRPCMessage): void {
    if (child !== this.child) return;
    const id = (message as { id?: RequestId }).id;
    if (isResponse(message) && typeof id === 'string' && id.startsWith(OWN_PREFIX)) {
      const answered = this.own.get(id);
      this.own.delete(id);
      answered?.(message);
      return;
    }
    this.replay.fromServer(message);
    if (isResponse(message) && id !== undefined) this.atChild.delete(id);
    else if (isRequest(message)) bounded(this.atClient).add(message.id);
    this.onmessage?.(message);
  }

  private wake(): void {
    if (this.state !== 'hibernated') return;
    this.state = 'waking';
    this.resume().catch((error: unknown) => this.resumeFailed(error));
  }

  private async resume(): Promise<void> {
    const started = performance.now();
    const child = await this.options.restart();
    if (this.state !== 'waking') {
      await child.close();
      return;
    }
    this.child = child;
    this.attach(child);
    await child.start();
    const init = this.replay.initialize;
    if (init !== undefined) {
      const answer = await this.ask(child, 'initialize', init, this.options.initializeTimeoutMs ?? 30_000);
      if ('error' in answer) throw new WardenError('upstream_failed', "the restarted MCP server refused the session's initialize");
      if (this.replay.wasInitialized) await child.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    }
    if (this.replay.logLevel !== undefined) this.askLater(child, 'logging/setLevel', { level: this.replay.logLevel }, () => undefined);
    let told = false;
    for (const uri of this.replay.subscriptions) {
      this.askLater(child, 'resources/subscribe', { uri }, (answer) => {
        if (!('error' in answer) || told || child !== this.child) return;
        told = true; // the client learns that what it watched may have changed; it lists and subscribes again
        this.onmessage?.({ jsonrpc: '2.0', method: 'notifications/resources/list_changed' });
      });
    }
    if (this.state !== 'waking' || child !== this.child) return; // closed meanwhile: close() stopped it
    if (child.closed) throw child.closeError ?? new UpstreamExitedError('exited');
    this.state = 'live';
    this.lastPid = child.pid;
    this.options.logger.debug('session resumed on a new child', { command: this.spec.key, pid: child.pid, pooled: child.pooled });
    this.options.onResume?.(this.spec, (performance.now() - started) / 1000, child.pooled);
    // In order, synchronously: nothing can overtake the messages that waited.
    for (const { message, resolve, reject } of this.waiting.splice(0)) child.send(message).then(resolve, reject);
  }

  /** The child could not be started or did not take the handshake: the waiting messages fail, the session sleeps on. */
  private resumeFailed(error: unknown): void {
    if (this.state !== 'waking') return; // closed meanwhile: close() failed the waiting messages
    const child = this.child;
    this.state = 'hibernated';
    this.child = undefined;
    if (child) void child.close();
    this.own.clear();
    const reason = toWardenError(error);
    this.options.logger.warn('could not wake a hibernated session', { command: this.spec.key, error: reason.message });
    this.failWaiting(reason);
  }

  private failWaiting(error: WardenError): void {
    for (const { reject } of this.waiting.splice(0)) reject(error);
  }

  /** Sends one of the gateway's own requests and resolves with its answer; rejects when the child ends or is too slow. */
  private ask(child: ChildTransport, method: string, params: Record<string, unknown>, timeoutMs: number): Promise<JSONRPCMessage> {
    return new Promise<JSONRPCMessage>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new WardenError('upstream_timeout', `the restarted MCP server did not answer ${method} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      timer.unref();
      void child.exited.then(() => {
        clearTimeout(timer);
        reject(child.closeError ?? new UpstreamExitedError('exited while restarting'));
      });
      this.askLater(child, method, params, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
    });
  }

  private askLater(child: ChildTransport, method: string, params: Record<string, unknown>, answered: (message: JSONRPCMessage) => void): void {
    const id = `${OWN_PREFIX}${(this.nextOwn += 1)}`;
    if (this.own.size >= MAX_OUTSTANDING) this.own.delete(this.own.keys().next().value!);
    this.own.set(id, answered);
    child.send({ jsonrpc: '2.0', id, method, params }).catch(() => this.own.delete(id));
  }
}

/** `set`, with its oldest entry forgotten when it is full. */
function bounded<T>(set: Set<T>): Set<T> {
  if (set.size >= MAX_OUTSTANDING) set.delete(set.values().next().value!);
  return set;
}
