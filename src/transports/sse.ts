/**
 * Legacy HTTP+SSE: `GET /<cmd>/sse` opens the stream (one child per stream) and announces
 * the relative endpoint `/<cmd>/messages?sessionId=<id>`; `POST` there delivers one message.
 */
import { asMessage } from '../bridge/jsonrpc.js';
import { SessionNotFoundError, WardenError } from '../errors.js';
import type { RoutedRequest } from './routed.js';
import type { SessionFactory } from './sessionFactory.js';
import type { SessionStore } from './sessions.js';
import { SseSessionTransport } from './sseSession.js';
import type { MintSessionId } from '../fly/sessionIds.js';

export interface SseOptions {
  /** Interval of `: keepalive` comments on open streams. @default 15000 */
  readonly keepAliveMs: number;
  /** Where session ids come from (on Fly.io they name the machine). @default a random UUID */
  readonly mintSessionId?: MintSessionId;
}

export class SseHandler {
  constructor(
    private readonly factory: SessionFactory,
    private readonly sessions: SessionStore,
    private readonly options: SseOptions,
  ) {}

  /** `GET /<cmd>/sse`: a new session whose stream is this response. */
  async open(request: RoutedRequest): Promise<void> {
    const endpoint = `/${encodeURIComponent(request.spec.key)}/messages`;
    const backlog = this.factory.limits.maxClientBacklogBytes;
    await this.factory.open(
      request,
      'sse',
      () => new SseSessionTransport(endpoint, request.res, this.options.keepAliveMs, backlog, this.options.mintSessionId),
    );
  }

  /** One POSTed message for the session named by `?sessionId=`: 202 once handed over. */
  post(request: RoutedRequest): void {
    const session = this.sessions.find(request.sessionId, 'sse', request.spec.key, request.principal);
    if (!session) throw new SessionNotFoundError();
    this.factory.assertChildAccepting(session);
    const message = asMessage(request.body);
    if (!message) throw new WardenError('bad_request', 'Invalid Request: not a JSON-RPC message');
    session.bridge.admit([message]);
    session.transport.receive(message);
    request.res.statusCode = 202;
    request.res.end('Accepted');
  }
}
