/**
 * The client side of a modern conversation (one principal, one whitelist key, one env) as
 * the bridge's ClientPort, for a legacy (2025) child: the gateway performs the handshake
 * itself, then each modern HTTP request becomes a legacy request with a gateway-unique id
 * (and progress token), and each answer goes back translated on that request's response:
 * `resultType`, cache fields and the server's identity added, the client's id and token
 * restored. The child's notifications go where they belong: progress to its request, a log
 * line to the one request in flight that asked for logs (else nowhere), list changes and
 * resource updates to the listens. The child's elicitation requests become multi round-trip
 * requests (`input_required` with a sealed `requestState`); closing a response cancels its
 * request at the child.
 */
import type { ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { LATEST_PROTOCOL_VERSION, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { ClientPort } from '../bridge/clientPort.js';
import { WardenError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { OutboundMeter } from '../transports/outboundMeter.js';
import type { Envelope } from './validate.js';
import { ModernExchange } from './exchange.js';
import { honoredFilter, Listens } from './listen.js';
import { CACHEABLE, LOG_LEVELS, META, MRTR_METHODS, withoutEnvelope, type LogLevel } from './protocol.js';
import { newNonce, requestDigest, type RequestStateSealer } from './requestState.js';

type Bag = Record<string, unknown>;
type Json = { jsonrpc: '2.0'; id?: RequestId; method?: string; params?: Bag; result?: Bag; error?: Bag };

export interface ModernPortOptions {
  readonly logger: Logger;
  readonly keepAliveMs: number;
  readonly jsonReplyWindowMs: number;
  readonly maxBacklogBytes: number;
  /** How long a held multi round-trip request waits for the client's retry, ms. */
  readonly inputTimeoutMs: number;
  readonly sealer: RequestStateSealer;
  /** Whose conversation this is (`kind:id`), bound into every sealed requestState. */
  readonly principalKey: string;
  /** `private` when answers depend on the caller (a policy shapes them, per-caller env). */
  readonly cacheScope: () => 'public' | 'private';
  /** The gateway's own name and version, for the handshake. */
  readonly clientInfo: { readonly name: string; readonly version: string };
  /** Told of every tools/list result (the tools' schemas declare `Mcp-Param-*` headers). */
  readonly onToolsListed?: (tools: unknown) => void;
  /** On Fly.io: this machine's id, sealed into every requestState so the retry comes back here. */
  readonly machine?: string;
}

/** A modern request as validated by the handler. */
export interface ModernRequest {
  readonly message: Json & { id: RequestId; method: string };
  readonly envelope: Envelope;
  readonly res: ServerResponse;
}

interface Held {
  readonly nonce: string;
  readonly childRequestId: RequestId;
  readonly key: string;
  readonly timer: NodeJS.Timeout;
}

interface InFlight {
  clientId: RequestId;
  readonly method: string;
  clientToken: string | number | undefined;
  logLevel: LogLevel | undefined;
  capabilities: Bag;
  readonly digest: string;
  /** Undefined while a multi round-trip request waits for the client's retry. */
  exchange: ModernExchange | undefined;
  held: Held | undefined;
  /** A final answer that came while no retry was there to take it. */
  parked: Json | undefined;
}

export class ModernClientPort implements ClientPort {
  onmessage?: (message: JSONRPCMessage) => void;
  onerror?: (error: Error) => void;
  onclose?: () => void;

  readonly sessionId = randomUUID();
  readonly listens: Listens;
  /** The child's InitializeResult, once the handshake is done. */
  initialized: Bag | undefined;
  private readonly inFlight = new Map<string, InFlight>();
  private readonly byNonce = new Map<string, string>();
  private readonly internal = new Map<string, { resolve: (result: Bag) => void; reject: (error: Error) => void }>();
  private readonly meter: OutboundMeter;
  private nextId = 0;
  private ended = false;

  constructor(private readonly options: ModernPortOptions) {
    this.meter = new OutboundMeter(options.maxBacklogBytes);
    this.listens = new Listens({
      subscribe: (uri) => void this.call('resources/subscribe', { uri }).catch((e: unknown) => this.debug('subscribe failed', e)),
      unsubscribe: (uri) => void this.call('resources/unsubscribe', { uri }).catch((e: unknown) => this.debug('unsubscribe failed', e)),
    });
  }

  /** True while a listen is open or a request waits for the client's input: not idle. */
  get busy(): boolean {
    if (this.listens.size > 0) return true;
    for (const entry of this.inFlight.values()) if (entry.held) return true;
    return false;
  }

  get serverInfo(): Bag | undefined {
    return this.initialized?.serverInfo as Bag | undefined;
  }

  get capabilities(): Bag {
    return (this.initialized?.capabilities as Bag | undefined) ?? {};
  }

  async start(): Promise<void> {}

  /** The legacy handshake, done once by the gateway on behalf of every request to come. */
  async handshake(): Promise<Bag> {
    const result = await this.call('initialize', { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: { elicitation: {} }, clientInfo: this.options.clientInfo });
    this.emit({ jsonrpc: '2.0', method: 'notifications/initialized' });
    this.initialized = result;
    // Log lines are filtered per request here; the child sends all of them.
    if (this.capabilities.logging !== undefined) void this.call('logging/setLevel', { level: 'debug' }).catch((e: unknown) => this.debug('setLevel failed', e));
    return result;
  }

  /** A client's request: a fresh one, or the retry of one that waits for input. */
  request({ message, envelope, res }: ModernRequest): void {
    const params = (message.params ?? {}) as Bag;
    if (params.requestState !== undefined || params.inputResponses !== undefined) return this.retry(message, envelope, res, params);
    const id = `m${(this.nextId += 1)}`;
    const token = (params._meta as Bag | undefined)?.progressToken;
    const clientToken = typeof token === 'string' || typeof token === 'number' ? token : undefined;
    const entry: InFlight = {
      clientId: message.id,
      method: message.method,
      clientToken,
      logLevel: envelope.logLevel,
      capabilities: envelope.clientCapabilities,
      digest: requestDigest(params),
      exchange: this.exchange(res, id),
      held: undefined,
      parked: undefined,
    };
    this.inFlight.set(id, entry);
    let forwarded = withoutEnvelope(params) ?? {};
    if (clientToken !== undefined) forwarded = { ...forwarded, _meta: { ...(forwarded._meta as Bag), progressToken: id } };
    this.emit({ jsonrpc: '2.0', id, method: message.method, params: forwarded });
  }

  /** `subscriptions/listen`: the acknowledgement, then the notifications the filter asked for. */
  listen(message: Json & { id: RequestId }, res: ServerResponse): void {
    const filter = honoredFilter((message.params as Bag | undefined)?.notifications, this.capabilities);
    this.meter.track(res);
    this.listens.open(res, message.id, filter, this.options.keepAliveMs);
  }

  /** A `notifications/cancelled` the client POSTed: a listen it closes, or one of its requests. */
  cancelled(requestId: unknown): void {
    if (this.listens.cancel(requestId)) return;
    const matches = [...this.inFlight].filter(([, entry]) => entry.clientId === requestId && entry.exchange);
    // Two conversations' requests may share an id: cancel only what is unambiguous.
    if (matches.length === 1) this.abandon(matches[0]![0]);
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (this.ended) throw new Error('Not connected');
    const m = message as Json;
    if (m.method === undefined) return this.answer(m);
    if (m.id !== undefined) return this.childRequest(m as Json & { id: RequestId; method: string });
    if (m.method === 'notifications/progress') {
      const entry = options?.relatedRequestId === undefined ? undefined : this.inFlight.get(String(options.relatedRequestId));
      if (entry?.exchange && entry.clientToken !== undefined) entry.exchange.notify({ ...m, params: { ...m.params, progressToken: entry.clientToken } });
      return;
    }
    if (m.method === 'notifications/message') return this.logLine(m);
    this.listens.deliver(m as { method: string; params?: Bag });
  }

  lagging(message: unknown): boolean {
    return this.meter.add(message);
  }

  get backlog(): number {
    return this.meter.backlog;
  }

  cutStreams(): void {
    this.meter.destroyAll();
  }

  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    for (const entry of this.inFlight.values()) {
      if (entry.held) clearTimeout(entry.held.timer);
      entry.exchange?.finish({ jsonrpc: '2.0', id: entry.clientId, error: { code: -32603, message: 'the server behind this key stopped' } });
    }
    this.inFlight.clear();
    this.byNonce.clear();
    for (const { reject } of this.internal.values()) reject(new Error('closed'));
    this.internal.clear();
    this.listens.closeAll(this.serverInfo);
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.();
  }

  private exchange(res: ServerResponse, id: string): ModernExchange {
    this.meter.track(res);
    return new ModernExchange(res, this.options, () => this.abandon(id));
  }

  /** The client closed a request's response: cancelled at the child, its late answer dropped. */
  private abandon(id: string): void {
    const entry = this.inFlight.get(id);
    if (!entry) return;
    this.inFlight.delete(id);
    if (entry.held) this.release(entry.held, { action: 'cancel' });
    this.emit({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'the client closed the response' } });
  }

  private answer(m: Json): void {
    const id = String(m.id);
    const internal = this.internal.get(id);
    if (internal) {
      this.internal.delete(id);
      if (m.result) internal.resolve(m.result);
      else internal.reject(new WardenError('upstream_failed', `the server refused ${id.split('-')[1] ?? 'a request'}: ${String((m.error as Bag | undefined)?.message ?? 'error')}`));
      return;
    }
    const entry = this.inFlight.get(id);
    if (!entry) return;
    if (!entry.exchange) {
      entry.parked = m; // answered while waiting for the client's input: given to the retry
      return;
    }
    this.inFlight.delete(id);
    if (entry.held) this.release(entry.held, undefined);
    if (entry.method === 'tools/list' && m.result) this.options.onToolsListed?.(m.result.tools);
    entry.exchange.finish(this.translate(m, entry));
  }

  private translate(m: Json, entry: InFlight): Json {
    if (m.error) {
      const code = m.error.code === -32002 ? -32602 : m.error.code; // resource not found is -32602 now
      return { jsonrpc: '2.0', id: entry.clientId, error: { ...m.error, code } };
    }
    const result = { ...m.result } as Bag;
    result.resultType ??= 'complete';
    if (CACHEABLE.has(entry.method) && result.ttlMs === undefined) {
      result.ttlMs = 0;
      result.cacheScope = this.options.cacheScope();
    }
    const serverInfo = this.serverInfo;
    if (serverInfo) result._meta = { ...(result._meta as Bag | undefined), [META.serverInfo]: serverInfo };
    return { jsonrpc: '2.0', id: entry.clientId, result };
  }

  /** A child's log line goes to the one request in flight that asked for logs at its level. */
  private logLine(m: Json): void {
    const level = LOG_LEVELS.indexOf(m.params?.level as LogLevel);
    const takers = [...this.inFlight.values()].filter((e) => e.exchange?.open && e.logLevel !== undefined);
    if (takers.length !== 1) return;
    const taker = takers[0]!;
    if (level >= LOG_LEVELS.indexOf(taker.logLevel!)) taker.exchange!.notify(m);
  }

  /** The child asks the client something: an elicitation becomes a multi round-trip request. */
  private childRequest(m: Json & { id: RequestId; method: string }): void {
    if (m.method === 'ping') return this.emit({ jsonrpc: '2.0', id: m.id, result: {} });
    if (m.method !== 'elicitation/create') {
      return this.refuseChild(m.id, `${m.method} is not bridged to clients of protocol revision 2026-07-28 (sampling and roots are deprecated there)`);
    }
    const mode = (m.params?.mode as string | undefined) ?? 'form';
    const takers = [...this.inFlight].filter(([, e]) => {
      const elicitation = e.capabilities.elicitation as Bag | undefined;
      if (!e.exchange?.open || e.held || !MRTR_METHODS.has(e.method) || elicitation === undefined) return false;
      // `elicitation: {}` declares form mode only.
      return mode === 'form' ? elicitation.form !== undefined || Object.keys(elicitation).length === 0 : elicitation[mode] !== undefined;
    });
    if (takers.length !== 1) return this.refuseChild(m.id, 'no request in flight can take this elicitation (the client must declare elicitation in its request)');
    const [id, entry] = takers[0]!;
    const nonce = newNonce();
    const key = 'input';
    const timer = setTimeout(() => this.expire(id, nonce), this.options.inputTimeoutMs);
    timer.unref();
    entry.held = { nonce, childRequestId: m.id, key, timer };
    this.byNonce.set(nonce, id);
    const { _meta: _childMeta, ...params } = m.params ?? {};
    const machine = this.options.machine === undefined ? {} : { machine: this.options.machine };
    const requestState = this.options.sealer.seal({ nonce, principal: this.options.principalKey, method: entry.method, digest: entry.digest, expires: Date.now() + this.options.inputTimeoutMs, ...machine });
    const serverInfo = this.serverInfo;
    const result = { resultType: 'input_required', inputRequests: { [key]: { method: m.method, params } }, requestState, ...(serverInfo ? { _meta: { [META.serverInfo]: serverInfo } } : {}) };
    entry.exchange!.finish({ jsonrpc: '2.0', id: entry.clientId, result });
    entry.exchange = undefined;
  }

  /** The client's retry of a request that waits for input: answer the child, take the rest. */
  private retry(message: ModernRequest['message'], envelope: Envelope, res: ServerResponse, params: Bag): void {
    const sealed = this.options.sealer.open(params.requestState);
    const id = sealed ? this.byNonce.get(sealed.nonce) : undefined;
    const entry = id === undefined ? undefined : this.inFlight.get(id);
    if (!sealed || !entry?.held || sealed.principal !== this.options.principalKey || sealed.method !== message.method || sealed.digest !== requestDigest(params)) {
      throw new WardenError('invalid_params', 'requestState is not valid: expired, already used, or not issued for this request', { data: { field: 'requestState' } });
    }
    const held = entry.held;
    this.byNonce.delete(held.nonce);
    clearTimeout(held.timer);
    entry.held = undefined;
    entry.clientId = message.id;
    entry.logLevel = envelope.logLevel;
    entry.capabilities = envelope.clientCapabilities;
    const token = (params._meta as Bag | undefined)?.progressToken;
    entry.clientToken = typeof token === 'string' || typeof token === 'number' ? token : entry.clientToken;
    entry.exchange = this.exchange(res, id!);
    const responses = params.inputResponses as Bag | undefined;
    const response = responses?.[held.key];
    if (response && typeof response === 'object') this.emit({ jsonrpc: '2.0', id: held.childRequestId, result: response as Bag });
    else this.refuseChild(held.childRequestId, 'the client gave no answer to this request');
    if (entry.parked) this.answer(entry.parked);
  }

  private expire(id: string, nonce: string): void {
    const entry = this.inFlight.get(id);
    if (!entry?.held || entry.held.nonce !== nonce) return;
    this.byNonce.delete(nonce);
    this.release(entry.held, { action: 'cancel' });
    entry.held = undefined;
    this.inFlight.delete(id);
    this.emit({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'the client did not answer in time' } });
  }

  private release(held: Held, answer: Bag | undefined): void {
    clearTimeout(held.timer);
    this.byNonce.delete(held.nonce);
    if (answer) this.emit({ jsonrpc: '2.0', id: held.childRequestId, result: answer });
  }

  private refuseChild(id: RequestId, message: string): void {
    this.emit({ jsonrpc: '2.0', id, error: { code: -32601, message } });
  }

  /** A request of the gateway's own (handshake, subscriptions) through the bridge. */
  private call(method: string, params: Bag): Promise<Bag> {
    const id = `warden-${method}-${(this.nextId += 1)}`;
    return new Promise((resolve, reject) => {
      this.internal.set(id, { resolve, reject });
      this.emit({ jsonrpc: '2.0', id, method, params });
    });
  }

  private emit(message: Json): void {
    if (!this.ended) this.onmessage?.(message as JSONRPCMessage);
  }

  private debug(what: string, error: unknown): void {
    this.options.logger.debug(what, { error: error instanceof Error ? error.message : String(error) });
  }
}
