/**
 * The client side of a Streamable HTTP session as an SDK Transport. Each POST that carries
 * requests is an exchange answered on its own response: when the one request's reply is
 * the first thing to send, it goes back as a single `application/json` body (one write);
 * otherwise (progress first, a batch, or no reply within `jsonReplyWindowMs`) the response
 * becomes an event stream that ends with the last reply. Messages that belong to no request
 * go to the session's GET stream, if one is open. Requests arrive already validated.
 */
import type { ServerResponse } from 'node:http';
import type { TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { ClientPort } from '../bridge/clientPort.js';
import { plainSessionId, type MintSessionId } from '../fly/sessionIds.js';
import { isNotification, isRequest, isResponse } from '../bridge/jsonrpc.js';
import { SessionNotFoundError, WardenError } from '../errors.js';
import { EventStream, messageEvent } from './eventStream.js';
import { OutboundMeter } from './outboundMeter.js';

export interface StreamableSessionOptions {
  /** Interval of keep-alive comments on event streams, ms. */
  readonly keepAliveMs: number;
  /** How long a single request's POST waits to answer as JSON, ms; 0: always stream. */
  readonly jsonReplyWindowMs: number;
  /** How far the client may fall behind on its streams before the session is dropped, bytes. */
  readonly maxBacklogBytes: number;
  /** Where session ids come from (on Fly.io they name the machine). @default a random UUID */
  readonly mintSessionId?: MintSessionId;
}

/** One POST's response and the requests still unanswered on it. */
class Exchange {
  stream: EventStream | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly res: ServerResponse,
    public remaining: number,
    private readonly session: StreamableSessionTransport,
  ) {
    // A single request may be answered with plain JSON; anything else streams at once.
    const window = session.options.jsonReplyWindowMs;
    if (remaining > 1 || window === 0) this.toStream().flush();
    else this.timer = setTimeout(() => this.toStream().flush(), window);
    res.once('close', () => this.stopTimer());
  }

  /** Writes `message`; `last` when it is the final reply of this exchange. */
  write(message: JSONRPCMessage, last: boolean): void {
    if (this.res.writableEnded || this.res.destroyed) {
      this.stopTimer(); // the client left: the reply has nowhere to go
      return;
    }
    if (last && !this.stream) {
      this.stopTimer();
      this.res.writeHead(200, { 'Content-Type': 'application/json', 'mcp-session-id': this.session.sessionId });
      this.res.end(JSON.stringify(message));
      return;
    }
    this.toStream().write(messageEvent(message));
    if (last) this.stream!.end();
  }

  end(): void {
    this.stopTimer();
    if (this.stream) this.stream.end();
    else if (!this.res.headersSent) this.res.writeHead(200, { 'Content-Type': 'text/event-stream' }).end();
  }

  private toStream(): EventStream {
    this.stopTimer();
    this.stream ??= new EventStream(this.res, this.session.options.keepAliveMs, { 'mcp-session-id': this.session.sessionId });
    return this.stream;
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export class StreamableSessionTransport implements ClientPort {
  onmessage?: (message: JSONRPCMessage) => void;
  onerror?: (error: Error) => void;
  onclose?: () => void;

  readonly sessionId: string;
  private readonly exchanges = new Map<RequestId, Exchange>();
  private standalone: EventStream | undefined;
  private ended = false;
  readonly outbound: OutboundMeter;

  constructor(readonly options: StreamableSessionOptions) {
    this.sessionId = (options.mintSessionId ?? plainSessionId)();
    this.outbound = new OutboundMeter(options.maxBacklogBytes);
  }

  async start(): Promise<void> {}

  /**
   * A POST's messages. With requests among them, `res` stays open for their replies;
   * otherwise it is answered 202 at once.
   */
  post(res: ServerResponse, messages: readonly JSONRPCMessage[]): void {
    if (this.ended) throw new SessionNotFoundError();
    this.outbound.track(res);
    for (const message of messages) if (isNotification(message) && message.method === 'notifications/cancelled') this.cancelled(message.params?.requestId);
    const requests = messages.filter(isRequest);
    if (requests.length === 0) {
      res.writeHead(202).end();
    } else {
      const exchange = new Exchange(res, requests.length, this);
      for (const request of requests) this.exchanges.set(request.id, exchange);
    }
    for (const message of messages) this.onmessage?.(message);
  }

  /** The client cancelled `id`: no reply will come for it, so its part of the exchange ends. */
  private cancelled(id: unknown): void {
    if (typeof id !== 'string' && typeof id !== 'number') return;
    const exchange = this.exchanges.get(id);
    if (!exchange) return;
    this.exchanges.delete(id);
    exchange.remaining -= 1;
    if (exchange.remaining === 0) exchange.end();
  }

  /** The GET stream for messages that belong to no request; only one at a time. */
  openStream(res: ServerResponse): void {
    if (this.ended) throw new SessionNotFoundError();
    if (this.standalone?.open) throw new WardenError('conflict', 'Conflict: Only one SSE stream is allowed per session');
    const stream = new EventStream(res, this.options.keepAliveMs, { 'mcp-session-id': this.sessionId });
    this.outbound.track(res);
    stream.flush();
    this.standalone = stream;
    res.once('close', () => {
      if (this.standalone === stream) this.standalone = undefined;
    });
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (this.ended) throw new Error('Not connected');
    const response = isResponse(message);
    const id = response ? (message as { id?: RequestId }).id : options?.relatedRequestId;
    if (id === undefined) {
      if (response) throw new Error('Cannot send a response that belongs to no request');
      this.standalone?.write(messageEvent(message));
      return;
    }
    const exchange = this.exchanges.get(id);
    if (!exchange) throw new Error(`No connection established for request ID: ${String(id)}`);
    if (response) {
      this.exchanges.delete(id);
      exchange.remaining -= 1;
    }
    exchange.write(message, response && exchange.remaining === 0);
  }

  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    for (const exchange of new Set(this.exchanges.values())) exchange.end();
    this.exchanges.clear();
    this.standalone?.end();
    this.standalone = undefined;
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.();
  }
}
