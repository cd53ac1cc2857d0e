/**
 * A JSON-RPC multiplexer: one child serving many sessions (`"mode": "shared"` on a
 * whitelist entry), for stateless servers. The gateway initializes the child once; each
 * session's `initialize` is answered from that result, with the protocol version the child
 * agreed to (a session that does not speak it disconnects, as with any server). Request ids
 * and progress tokens are rewritten on the way in and restored on the way out, so sessions
 * with colliding ids only see their own replies. Resource subscriptions and logging levels
 * are kept per session (sharedSubscriptions.ts, sharedLogLevels.ts); other notifications
 * from the server go to every session. Server-to-client requests cannot be attributed to a
 * session and are refused. Tasks are not offered: the child's task store is one for all
 * sessions, so one session would see another's tasks. If the child dies, every session on
 * it ends (their in-flight requests fail at once).
 */
import {
  ErrorCode,
  LATEST_PROTOCOL_VERSION,
  type InitializeResult,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { isNotification, isRequest } from '../bridge/jsonrpc.js';
import { UpstreamExitedError, UpstreamFailedError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ChildTransport } from './childTransport.js';
import { MultiplexedPort } from './multiplexedPort.js';
import { LOGGING_LEVELS, SharedLogLevels } from './sharedLogLevels.js';
import { SharedSubscriptions, ANSWERED, type Outcome } from './sharedSubscriptions.js';
import { within } from './within.js';
import { PACKAGE_NAME, PACKAGE_VERSION } from '../version.js';

export { MultiplexedPort } from './multiplexedPort.js';

export interface MultiplexerOptions {
  /**
   * Resource uris one session may be subscribed to at once; one more is refused
   * (`limit_reached`).
   * @default 1000
   */
  readonly maxSubscriptions?: number;
}

/** How the gateway introduces itself when it initializes a shared child. */
const CLIENT_INFO = { name: PACKAGE_NAME, version: PACKAGE_VERSION } as const;

type ProgressToken = string | number;

interface InFlight {
  readonly port: MultiplexedPort;
  readonly id: RequestId;
  readonly token: ProgressToken | undefined;
}

export class Multiplexer {
  private readonly ports = new Set<MultiplexedPort>();
  private readonly inFlight = new Map<string, InFlight>();
  private readonly tokens = new Map<string, InFlight>();
  /** The gateway's own requests to the child (initialize, subscriptions, levels), by id. */
  private readonly own = new Map<string, { resolve: (outcome: Outcome) => void; reject: (error: Error) => void }>();
  private readonly subscriptions: SharedSubscriptions<MultiplexedPort>;
  private readonly levels: SharedLogLevels<MultiplexedPort>;
  private nextId = 0;
  private retiring = false;
  private result: InitializeResult | undefined;

  constructor(
    readonly child: ChildTransport,
    private readonly logger: Logger,
    options: MultiplexerOptions = {},
  ) {
    const ask = (method: string, params: Record<string, unknown>) => this.request(method, params);
    this.subscriptions = new SharedSubscriptions(ask, (port) => this.ports.has(port), options.maxSubscriptions ?? 1000);
    this.levels = new SharedLogLevels((level) => {
      ask('logging/setLevel', { level }).then(
        (outcome) => {
          if ('error' in outcome)
            this.logger.warn('shared child refused logging/setLevel', { command: this.child.spec.key, pid: this.child.pid, level, code: outcome.error.code });
        },
        () => undefined, // the child ended: its sessions end with it
      );
    });
  }

  get sessions(): number {
    return this.ports.size;
  }

  get closed(): boolean {
    return this.child.closed;
  }

  /** Starts the child's stream and initializes it once for every session to come. */
  async start(timeoutMs = 30_000): Promise<void> {
    this.child.onmessage = (message) => this.fromChild(message);
    this.child.onclose = () => this.onChildClose();
    await this.child.start();
    const answered = this.request('initialize', { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: CLIENT_INFO });
    if (!(await within(answered, timeoutMs))) {
      await this.child.close();
      throw new UpstreamFailedError('the shared server did not answer initialize');
    }
    const outcome = await answered;
    if (!('result' in outcome)) throw new UpstreamFailedError('the shared server refused initialize');
    this.result = outcome.result as InitializeResult;
    await this.child.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  }

  /** A port for one more session. */
  open(): MultiplexedPort {
    const port = new MultiplexedPort(this);
    this.ports.add(port);
    return port;
  }

  /**
   * The answer to a session request that the multiplexer gives itself, or undefined when the
   * request goes to the child (`forward`).
   */
  answer(port: MultiplexedPort, request: JSONRPCRequest): Promise<Outcome> | undefined {
    const params = request.params as Record<string, unknown> | undefined;
    switch (request.method) {
      case 'initialize': {
        // The child's version, whatever the session asked: the only one the child is known
        // to speak. A session that does not speak it disconnects (MCP lifecycle).
        const { tasks: _sharedTaskStore, ...capabilities } = this.result!.capabilities as Record<string, unknown>;
        return Promise.resolve({ result: { ...this.result!, capabilities } });
      }
      case 'resources/subscribe':
      case 'resources/unsubscribe': {
        const uri = params?.uri;
        if (typeof uri !== 'string') return Promise.resolve({ error: { code: ErrorCode.InvalidParams, message: `${request.method}: "uri" must be a string` } });
        return request.method === 'resources/subscribe' ? this.subscriptions.subscribe(port, uri) : this.subscriptions.unsubscribe(port, uri);
      }
      case 'logging/setLevel':
        if (this.levels.set(port, params?.level)) return Promise.resolve(ANSWERED);
        return Promise.resolve({ error: { code: ErrorCode.InvalidParams, message: `logging/setLevel: "level" must be one of ${LOGGING_LEVELS.join(', ')}` } });
      default: {
        const refusal = sharedRefusal(request);
        return refusal && Promise.resolve({ error: refusal });
      }
    }
  }

  /** Forwards one session request with a gateway-unique id (and progress token). */
  forward(port: MultiplexedPort, request: JSONRPCRequest): Promise<void> {
    const id = this.newId();
    const meta = request.params?._meta;
    const token = meta?.progressToken;
    const original: ProgressToken | undefined = typeof token === 'string' || typeof token === 'number' ? token : undefined;
    const entry: InFlight = { port, id: request.id, token: original };
    this.inFlight.set(id, entry);
    let params = request.params;
    if (original !== undefined) {
      this.tokens.set(id, entry);
      params = { ...params, _meta: { ...meta, progressToken: id } };
    }
    return this.child.send({ ...request, id, ...(params === undefined ? {} : { params }) } as JSONRPCMessage);
  }

  /** Rewrites a session's cancellation to the id the child knows. */
  cancel(port: MultiplexedPort, requestId: RequestId, reason: unknown): Promise<void> | undefined {
    for (const [id, entry] of this.inFlight) {
      if (entry.port !== port || entry.id !== requestId) continue;
      this.drop(id);
      return this.child.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, ...(reason === undefined ? {} : { reason }) } });
    }
    return undefined;
  }

  /** A session left: cancel what it still waits for, give up its subscriptions and level. */
  detach(port: MultiplexedPort): void {
    this.ports.delete(port);
    if (this.retiring && this.ports.size === 0) void this.close();
    this.subscriptions.leave(port);
    this.levels.leave(port);
    for (const [id, entry] of [...this.inFlight]) {
      if (entry.port !== port) continue;
      this.drop(id);
      this.child.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'session closed' } }).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.child.close();
  }

  /** Takes no new sessions from now on (the caller stops handing it out); stops once the last session left. */
  retire(): void {
    this.retiring = true;
    if (this.ports.size === 0) void this.close();
  }

  private newId(): string {
    this.nextId += 1;
    return `w${this.nextId}`;
  }

  /** Sends a request of the gateway's own; resolves with the child's answer, rejects if the child ends first. */
  private request(method: string, params: Record<string, unknown>): Promise<Outcome> {
    const id = this.newId();
    return new Promise<Outcome>((resolve, reject) => {
      this.own.set(id, { resolve, reject });
      this.child.send({ jsonrpc: '2.0', id, method, params }).catch((error: Error) => {
        this.own.delete(id);
        reject(error);
      });
    });
  }

  private drop(id: string): void {
    this.inFlight.delete(id);
    this.tokens.delete(id);
  }

  private fromChild(message: JSONRPCMessage): void {
    if ('id' in message && !('method' in message)) {
      const id = String(message.id);
      const own = this.own.get(id);
      if (own) {
        this.own.delete(id);
        own.resolve('result' in message ? { result: message.result } : { error: (message as { error: { code: number; message: string } }).error });
        return;
      }
      const entry = this.inFlight.get(id);
      if (!entry) return;
      this.drop(id);
      entry.port.deliver({ ...message, id: entry.id } as JSONRPCMessage);
      return;
    }
    if (isRequest(message)) {
      // Server-to-client requests (sampling, elicitation, roots) can't be attributed to one
      // session of a shared server; ping is answered here.
      const reply: JSONRPCMessage =
        message.method === 'ping'
          ? { jsonrpc: '2.0', id: message.id, result: {} }
          : {
              jsonrpc: '2.0',
              id: message.id,
              error: { code: ErrorCode.MethodNotFound, message: `${message.method} is not available through a shared server` },
            };
      this.child.send(reply).catch(() => undefined);
      return;
    }
    if (isNotification(message) && message.method === 'notifications/progress') {
      const token = message.params?.progressToken;
      const entry = token === undefined ? undefined : this.tokens.get(String(token));
      if (entry && entry.token !== undefined) entry.port.deliver({ ...message, params: { ...message.params, progressToken: entry.token } } as JSONRPCMessage);
      return;
    }
    if (isNotification(message) && message.method === 'notifications/tasks/status') return; // no session's own
    if (isNotification(message) && message.method === 'notifications/cancelled') {
      const requestId = message.params?.requestId;
      const entry = requestId === undefined ? undefined : this.inFlight.get(String(requestId));
      if (!entry) return;
      this.drop(String(requestId));
      entry.port.deliver({ ...message, params: { ...message.params, requestId: entry.id } } as JSONRPCMessage);
      return;
    }
    if (isNotification(message) && message.method === 'notifications/resources/updated') {
      const uri = message.params?.uri;
      if (typeof uri === 'string') for (const port of this.subscriptions.subscribers(uri)) port.deliver(message);
      return;
    }
    if (isNotification(message) && message.method === 'notifications/message') {
      const level = message.params?.level;
      for (const port of this.ports) if (this.levels.admits(port, level)) port.deliver(message);
      return;
    }
    // list_changed and the like: for every session of this child.
    for (const port of this.ports) port.deliver(message);
  }

  private onChildClose(): void {
    const error = this.child.closeError ?? new UpstreamExitedError('exited');
    const own = [...this.own.values()];
    this.own.clear();
    for (const pending of own) pending.reject(error);
    this.logger.warn('shared child ended', { command: this.child.spec.key, pid: this.child.pid, sessions: this.ports.size });
    const ports = [...this.ports];
    this.ports.clear();
    this.inFlight.clear();
    this.tokens.clear();
    for (const port of ports) port.end(error);
  }
}

/** Why a session's request can't go to a shared child (one task store for all sessions). */
function sharedRefusal(request: JSONRPCRequest): { code: number; message: string } | undefined {
  if (request.method.startsWith('tasks/')) {
    return {
      code: ErrorCode.MethodNotFound,
      message: `${request.method} is not available through a shared server: its tasks would be visible to every session`,
    };
  }
  if (request.method === 'tools/call' && request.params?.task !== undefined) {
    return { code: ErrorCode.InvalidParams, message: 'task-augmented tools/call is not available through a shared server; call the tool without "task"' };
  }
  return undefined;
}
