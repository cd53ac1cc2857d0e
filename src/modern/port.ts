/**
 * The client side of a modern conversation (one principal, one whitelist key, one env) as
 * the bridge's ClientPort. Each modern HTTP request goes to the child with a gateway-unique
 * id (and progress token) and its answer comes back on that request's response with the
 * client's id and token restored. Towards a 2025 child the gateway speaks 2025: it does the
 * handshake itself, strips the envelope, adds `resultType`, cache fields and the server's
 * identity to results, turns the child's elicitations into multi round-trip requests
 * (src/modern/inputRequired.ts) and serves listens itself (src/modern/listen.ts). A
 * 2026-07-28 child gets the requests as they are (pass-through), listens included. Either
 * way: progress goes to its request, a log line to the one request in flight that asked for
 * logs (else nowhere), and closing a response cancels its request at the child.
 */
import type { ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { LATEST_PROTOCOL_VERSION, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { ClientPort } from '../bridge/clientPort.js';
import { WardenError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { EventStream, messageEvent } from '../transports/eventStream.js';
import { OutboundMeter } from '../transports/outboundMeter.js';
import { ModernExchange } from './exchange.js';
import { InputRounds, type Held } from './inputRequired.js';
import { honoredFilter, Listens } from './listen.js';
import { CACHEABLE, LOG_LEVELS, META, withoutEnvelope, type LogLevel } from './protocol.js';
import { requestDigest, type RequestStateSealer } from './requestState.js';
import type { Envelope } from './validate.js';

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

/** What the server behind the key said of itself: its handshake, or its discover answer. */
export interface ServerFacts {
  readonly capabilities: Bag;
  readonly serverInfo: Bag | undefined;
  readonly instructions: string | undefined;
}

/** A modern request as validated by the handler. */
export interface ModernRequest {
  readonly message: Json & { id: RequestId; method: string };
  readonly envelope: Envelope;
  readonly res: ServerResponse;
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
  /** A listen passed through to a 2026-07-28 child: its stream. */
  listen?: EventStream;
}

export class ModernClientPort implements ClientPort {
  onmessage?: (message: JSONRPCMessage) => void;
  onerror?: (error: Error) => void;
  onclose?: () => void;

  readonly sessionId = randomUUID();
  readonly listens: Listens;
  /** What the server behind the key said of itself, once known. */
  facts: ServerFacts | undefined;
  /** True for a 2026-07-28 child: requests and listens pass through. */
  private passthrough = false;
  private readonly inFlight = new Map<string, InFlight>();
  private readonly internal = new Map<string, { resolve: (result: Bag) => void; reject: (error: Error) => void }>();
  private readonly inputs: InputRounds;
  readonly outbound: OutboundMeter;
  private nextId = 0;
  private ended = false;

  constructor(private readonly options: ModernPortOptions) {
    this.outbound = new OutboundMeter(options.maxBacklogBytes);
    this.listens = new Listens({
      subscribe: (uri) => void this.call('resources/subscribe', { uri }).catch((e: unknown) => this.debug('subscribe failed', e)),
      unsubscribe: (uri) => void this.call('resources/unsubscribe', { uri }).catch((e: unknown) => this.debug('unsubscribe failed', e)),
    });
    this.inputs = new InputRounds({
      sealer: options.sealer,
      principalKey: options.principalKey,
      inputTimeoutMs: options.inputTimeoutMs,
      machine: options.machine,
      toChild: (message) => this.emit(message as Json),
      onExpired: (id) => this.abandon(id, 'the client did not answer in time'),
    });
  }

  /** True while a listen is open or a request waits for the client's input: not idle. */
  get busy(): boolean {
    if (this.listens.size > 0) return true;
    for (const entry of this.inFlight.values()) if (entry.held || entry.listen) return true;
    return false;
  }

  async start(): Promise<void> {}

  /** A 2025 child: the handshake, done once by the gateway for every request to come. */
  async handshake(): Promise<ServerFacts> {
    const result = await this.call('initialize', {
      protocolVersion: LATEST_PROTOCOL_VERSION,
      capabilities: { elicitation: {} },
      clientInfo: this.options.clientInfo,
    });
    this.emit({ jsonrpc: '2.0', method: 'notifications/initialized' });
    this.facts = {
      capabilities: (result.capabilities as Bag) ?? {},
      serverInfo: result.serverInfo as Bag | undefined,
      instructions: result.instructions as string | undefined,
    };
    // Log lines are filtered per request here; the child sends all of them.
    if (this.facts.capabilities.logging !== undefined)
      void this.call('logging/setLevel', { level: 'debug' }).catch((e: unknown) => this.debug('setLevel failed', e));
    return this.facts;
  }

  /** A 2026-07-28 child: no handshake; requests pass through. `discover` is its answer to the era probe. */
  passThrough(discover: Bag | undefined): ServerFacts {
    this.passthrough = true;
    const meta = discover?._meta as Bag | undefined;
    this.facts = {
      capabilities: (discover?.capabilities as Bag) ?? {},
      serverInfo: meta?.[META.serverInfo] as Bag | undefined,
      instructions: discover?.instructions as string | undefined,
    };
    return this.facts;
  }

  /** A client's request: a fresh one, or (for a 2025 child) the retry of one that waits for input. */
  request({ message, envelope, res }: ModernRequest): void {
    const params = (message.params ?? {}) as Bag;
    if (!this.passthrough && (params.requestState !== undefined || params.inputResponses !== undefined)) return this.retry(message, envelope, res, params);
    const id = `m${(this.nextId += 1)}`;
    const token = (params._meta as Bag | undefined)?.progressToken;
    const entry = this.track(id, message, envelope, params, typeof token === 'string' || typeof token === 'number' ? token : undefined);
    entry.exchange = this.exchange(res, id);
    this.emit({ jsonrpc: '2.0', id, method: message.method, params: this.towardsChild(params, entry.clientToken === undefined ? undefined : id) });
  }

  /** `subscriptions/listen`: served here for a 2025 child, passed through to a 2026-07-28 one. */
  listen(message: Json & { id: RequestId; method: string }, envelope: Envelope, res: ServerResponse): void {
    this.outbound.track(res);
    if (!this.passthrough) {
      const filter = honoredFilter((message.params as Bag | undefined)?.notifications, this.facts?.capabilities ?? {});
      this.listens.open(res, message.id, filter, this.options.keepAliveMs);
      return;
    }
    const id = `m${(this.nextId += 1)}`;
    const entry = this.track(id, message, envelope, (message.params ?? {}) as Bag, undefined);
    entry.listen = new EventStream(res, this.options.keepAliveMs);
    res.once('close', () => this.abandon(id, 'the client closed the listen'));
    this.emit({ jsonrpc: '2.0', id, method: message.method, params: message.params });
  }

  /** A `notifications/cancelled` the client POSTed: a listen it closes, or one of its requests. */
  cancelled(requestId: unknown): void {
    if (this.listens.cancel(requestId)) return;
    const matches = [...this.inFlight].filter(([, entry]) => entry.clientId === requestId && (entry.exchange || entry.listen));
    // Two conversations' requests may share an id: cancel only what is unambiguous.
    if (matches.length === 1) this.abandon(matches[0]![0], 'the client cancelled the request');
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
    const subscription = (m.params?._meta as Bag | undefined)?.[META.subscriptionId];
    const listen = subscription === undefined ? undefined : this.inFlight.get(String(subscription));
    if (listen?.listen) {
      listen.listen.write(messageEvent({ ...m, params: { ...m.params, _meta: { ...(m.params?._meta as Bag), [META.subscriptionId]: listen.clientId } } }));
      return;
    }
    if (!this.passthrough) this.listens.deliver(m as { method: string; params?: Bag });
  }

  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    for (const entry of this.inFlight.values()) {
      this.inputs.drop(entry, undefined);
      entry.exchange?.finish({ jsonrpc: '2.0', id: entry.clientId, error: { code: -32603, message: 'the server behind this key stopped' } });
      entry.listen?.end();
    }
    this.inFlight.clear();
    this.inputs.clear();
    for (const { reject } of this.internal.values()) reject(new Error('closed'));
    this.internal.clear();
    this.listens.closeAll(this.facts?.serverInfo);
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.();
  }

  private track(id: string, message: ModernRequest['message'], envelope: Envelope, params: Bag, clientToken: string | number | undefined): InFlight {
    let digest: string | undefined;
    const entry: InFlight = {
      clientId: message.id,
      method: message.method,
      clientToken,
      logLevel: envelope.logLevel,
      capabilities: envelope.clientCapabilities,
      // Needed only when the request comes to wait for input; the params are never changed.
      get digest() {
        return (digest ??= requestDigest(params));
      },
      exchange: undefined,
      held: undefined,
      parked: undefined,
    };
    this.inFlight.set(id, entry);
    return entry;
  }

  /** The params as the child gets them: the envelope stripped for a 2025 child; the progress token the gateway's. */
  private towardsChild(params: Bag, token: string | undefined): Bag {
    const forwarded = this.passthrough ? params : (withoutEnvelope(params) ?? {});
    if (token === undefined) return forwarded;
    return { ...forwarded, _meta: { ...(forwarded._meta as Bag), progressToken: token } };
  }

  private exchange(res: ServerResponse, id: string): ModernExchange {
    this.outbound.track(res);
    return new ModernExchange(res, this.options, () => this.abandon(id, 'the client closed the response'));
  }

  /** The client gave up a request: cancelled at the child, its late answer dropped. */
  private abandon(id: string, reason: string): void {
    const entry = this.inFlight.get(id);
    if (!entry) return;
    this.inFlight.delete(id);
    this.inputs.drop(entry);
    entry.listen?.end();
    this.emit({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason } });
  }

  private answer(m: Json): void {
    const id = String(m.id);
    const internal = this.internal.get(id);
    if (internal) {
      this.internal.delete(id);
      if (m.result) internal.resolve(m.result);
      else internal.reject(new WardenError('upstream_failed', `the server refused ${id.split('-')[1] ?? 'a request'}: ${String(m.error?.message ?? 'error')}`));
      return;
    }
    const entry = this.inFlight.get(id);
    if (!entry) return;
    if (!entry.exchange && !entry.listen) {
      entry.parked = m; // answered while waiting for the client's input: given to the retry
      return;
    }
    this.inFlight.delete(id);
    this.inputs.drop(entry, undefined);
    if (entry.method === 'tools/list' && m.result) this.options.onToolsListed?.(m.result.tools);
    const translated = this.translate(m, entry);
    if (entry.listen) {
      entry.listen.write(messageEvent(translated));
      entry.listen.end();
      return;
    }
    entry.exchange!.finish(translated);
  }

  private translate(m: Json, entry: InFlight): Json {
    if (m.error) {
      const code = m.error.code === -32002 ? -32602 : m.error.code; // resource not found is -32602 now
      return { jsonrpc: '2.0', id: entry.clientId, error: { ...m.error, code } };
    }
    const result = { ...m.result } as Bag;
    result.resultType ??= 'complete';
    if (CACHEABLE.has(entry.method) && result.ttlMs === undefined && result.resultType === 'complete') {
      result.ttlMs = 0;
      result.cacheScope = this.options.cacheScope();
    }
    const serverInfo = this.facts?.serverInfo;
    if (serverInfo && !this.passthrough) result._meta = { ...(result._meta as Bag | undefined), [META.serverInfo]: serverInfo };
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
    if (m.method !== 'elicitation/create' || this.passthrough) {
      return this.inputs.refuse(m.id, `${m.method} is not bridged to clients of protocol revision 2026-07-28 (sampling and roots are deprecated there)`);
    }
    const open = [...this.inFlight].filter(([, e]) => e.exchange?.open === true);
    const taker = this.inputs.taker(open, (m.params?.mode as string | undefined) ?? 'form');
    if (!taker) return this.inputs.refuse(m.id, 'no request in flight can take this elicitation (the client must declare elicitation in its request)');
    const [id, entry] = taker;
    const result = this.inputs.ask(id, entry, m);
    const serverInfo = this.facts?.serverInfo;
    entry.exchange!.finish({ jsonrpc: '2.0', id: entry.clientId, result: serverInfo ? { ...result, _meta: { [META.serverInfo]: serverInfo } } : result });
    entry.exchange = undefined;
  }

  /** The client's retry of a request that waits for input: answer the child, take the rest. */
  private retry(message: ModernRequest['message'], envelope: Envelope, res: ServerResponse, params: Bag): void {
    const id = this.inputs.resume(message.method, params, (candidate) => this.inFlight.get(candidate));
    const entry = this.inFlight.get(id)!;
    entry.clientId = message.id;
    entry.logLevel = envelope.logLevel;
    entry.capabilities = envelope.clientCapabilities;
    const token = (params._meta as Bag | undefined)?.progressToken;
    entry.clientToken = typeof token === 'string' || typeof token === 'number' ? token : entry.clientToken;
    entry.exchange = this.exchange(res, id);
    if (entry.parked) this.answer(entry.parked);
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
