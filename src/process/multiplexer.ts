/**
 * A JSON-RPC multiplexer: one child serving many sessions (`"mode": "shared"` on a
 * whitelist entry), for stateless servers. The gateway initializes the child once; each
 * session's `initialize` is answered from that result. Request ids and progress tokens are
 * rewritten on the way in and restored on the way out, so sessions with colliding ids only
 * see their own replies. Notifications from the server go to every session;
 * server-to-client requests cannot be attributed to a session and are refused. Tasks are
 * not offered: the child's task store is one for all sessions, so one session would see
 * another's tasks. If the child dies, every session on it ends (their in-flight requests
 * fail at once).
 */
import {
  ErrorCode,
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
  type InitializeResult,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { createRequire } from 'node:module';
import type { ChildPort } from '../bridge/childPort.js';
import { isNotification, isRequest } from '../bridge/jsonrpc.js';
import type { CommandSpec } from '../commands/types.js';
import { UpstreamExitedError, UpstreamFailedError, type WardenError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ChildTransport } from './childTransport.js';
import { within } from './within.js';

/**
 * How the gateway introduces itself when it initializes a shared child: the package's own
 * name and version, read once (dist/process/ and src/process/ both sit two levels below
 * package.json).
 */
const CLIENT_INFO: { readonly name: string; readonly version: string } = (() => {
  const { name, version } = createRequire(import.meta.url)('../../package.json') as { name: string; version: string };
  return { name, version };
})();

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
  private nextId = 0;
  private result: InitializeResult | undefined;
  private initializing: { id: string; resolve: (r: InitializeResult) => void; reject: (e: Error) => void } | undefined;

  constructor(
    readonly child: ChildTransport,
    private readonly logger: Logger,
  ) {}

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
    const id = this.newId();
    const answered = new Promise<InitializeResult>((resolve, reject) => {
      this.initializing = { id, resolve, reject };
    });
    await this.child.send({
      jsonrpc: '2.0',
      id,
      method: 'initialize',
      params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: CLIENT_INFO },
    });
    if (!(await within(answered, timeoutMs))) {
      await this.child.close();
      throw new UpstreamFailedError('the shared server did not answer initialize');
    }
    this.result = await answered;
    await this.child.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  }

  /** A port for one more session. */
  open(): MultiplexedPort {
    const port = new MultiplexedPort(this);
    this.ports.add(port);
    return port;
  }

  /** The cached initialize result with the session's protocol version negotiated. */
  initializeFor(request: JSONRPCRequest): JSONRPCMessage {
    const requested = (request.params as { protocolVersion?: unknown } | undefined)?.protocolVersion;
    const result = this.result!;
    const protocolVersion =
      typeof requested === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : result.protocolVersion;
    const { tasks: _sharedTaskStore, ...capabilities } = result.capabilities as Record<string, unknown>;
    return { jsonrpc: '2.0', id: request.id, result: { ...result, protocolVersion, capabilities } } as JSONRPCMessage;
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

  /** A session left: cancel what it still waits for. */
  detach(port: MultiplexedPort): void {
    this.ports.delete(port);
    for (const [id, entry] of [...this.inFlight]) {
      if (entry.port !== port) continue;
      this.drop(id);
      this.child.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'session closed' } }).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.child.close();
  }

  private newId(): string {
    this.nextId += 1;
    return `w${this.nextId}`;
  }

  private drop(id: string): void {
    this.inFlight.delete(id);
    this.tokens.delete(id);
  }

  private fromChild(message: JSONRPCMessage): void {
    if ('id' in message && !('method' in message)) {
      const id = String(message.id);
      if (this.initializing?.id === id) {
        const pending = this.initializing;
        this.initializing = undefined;
        if ('result' in message) pending.resolve(message.result as InitializeResult);
        else pending.reject(new UpstreamFailedError('the shared server refused initialize'));
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
          : { jsonrpc: '2.0', id: message.id, error: { code: ErrorCode.MethodNotFound, message: `${message.method} is not available through a shared server` } };
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
    // list_changed, logging, resource updates: for every session of this child.
    for (const port of this.ports) port.deliver(message);
  }

  private onChildClose(): void {
    this.initializing?.reject(this.child.closeError ?? new UpstreamExitedError('exited during initialize'));
    this.initializing = undefined;
    const error = this.child.closeError ?? new UpstreamExitedError('exited');
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
    return { code: ErrorCode.MethodNotFound, message: `${request.method} is not available through a shared server: its tasks would be visible to every session` };
  }
  if (request.method === 'tools/call' && request.params?.task !== undefined) {
    return { code: ErrorCode.InvalidParams, message: 'task-augmented tools/call is not available through a shared server; call the tool without "task"' };
  }
  return undefined;
}

/** One session's view of a shared child. */
export class MultiplexedPort implements ChildPort {
  onmessage?: (message: JSONRPCMessage) => void;
  onerror?: (error: Error) => void;
  onclose?: () => void;
  readonly pooled = true;
  closeError: WardenError | undefined;
  private closed = false;

  constructor(private readonly shared: Multiplexer) {}

  get pid(): number {
    return this.shared.child.pid;
  }

  get spec(): CommandSpec {
    return this.shared.child.spec;
  }

  get writableLength(): number {
    return this.shared.child.writableLength;
  }

  async start(): Promise<void> {}

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) throw this.closeError ?? new UpstreamExitedError('session closed');
    if (isRequest(message)) {
      if (message.method === 'initialize') {
        const reply = this.shared.initializeFor(message);
        queueMicrotask(() => this.deliver(reply));
        return;
      }
      const refusal = sharedRefusal(message);
      if (refusal) {
        queueMicrotask(() => this.deliver({ jsonrpc: '2.0', id: message.id, error: refusal }));
        return;
      }
      await this.shared.forward(this, message);
      return;
    }
    if (isNotification(message) && message.method === 'notifications/cancelled') {
      const requestId = message.params?.requestId;
      if (typeof requestId === 'string' || typeof requestId === 'number') await this.shared.cancel(this, requestId, message.params?.reason);
    }
    // notifications/initialized was already sent by the gateway; other client
    // notifications and responses have no meaning for a server shared by many.
  }

  deliver(message: JSONRPCMessage): void {
    if (!this.closed) this.onmessage?.(message);
  }

  /** The shared child died: this session ends with `error`. */
  end(error: WardenError): void {
    if (this.closed) return;
    this.closeError = error;
    this.finish();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.shared.detach(this);
    this.finish();
  }

  private finish(): void {
    this.closed = true;
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.();
  }
}
