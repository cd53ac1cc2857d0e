/**
 * Legacy HTTP+SSE: `GET /<cmd>/sse` opens the stream (one child per stream) and announces
 * the relative endpoint `/<cmd>/messages?sessionId=<id>`; `POST` there delivers one message.
 */
import type { ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { asMessage } from '../bridge/jsonrpc.js';
import { SessionNotFoundError, WardenError } from '../errors.js';
import { commandOf } from '../http/commandRoute.js';
import type { SessionFactory } from './sessionFactory.js';
import type { MessageRequest, SessionStore } from './sessions.js';
import { SseSessionTransport } from './sseSession.js';

export interface SseOptions {
  /** Interval of `: keepalive` comments on open streams. @default 15000 */
  readonly keepAliveMs: number;
  /** Told how long each session took to open. */
  readonly onConnected?: (kind: 'sse' | 'streamable', pooled: boolean, seconds: number) => void;
}

export class SseHandler {
  constructor(
    private readonly factory: SessionFactory,
    private readonly sessions: SessionStore,
    private readonly options: SseOptions,
  ) {}

  readonly open = async (req: Request, res: Response): Promise<void> => {
    const started = performance.now();
    const spec = commandOf(req);
    const lease = await this.factory.leaseChild(req, spec);
    if (res.destroyed || res.writableEnded) {
      await lease.child.close(); // the client left while its child started
      return;
    }
    const transport = new SseSessionTransport(`/${encodeURIComponent(spec.key)}/messages`, res, this.options.keepAliveMs);
    const link = this.factory.connect(transport, lease, spec, 'sse', req.principal!);
    link.bridge.outbound.track(res);
    link.register(transport.sessionId);
    await link.bridge.start();
    this.options.onConnected?.('sse', lease.child.pooled, (performance.now() - started) / 1000);
  };

  /** One POSTed message for session `sessionId`: 202 once handed to the session. */
  readonly post = (request: MessageRequest & { readonly sessionId: string | undefined }, res: ServerResponse): void => {
    const { spec, principal } = request;
    const session = this.sessions.find(request.sessionId, 'sse', spec.key, principal);
    if (!session) throw new SessionNotFoundError();
    this.factory.assertChildAccepting(session);
    if (request.body === undefined) throw new WardenError('bad_request', 'Content-Type must be application/json');
    const message = asMessage(request.body);
    if (!message) throw new WardenError('bad_request', 'Invalid Request: not a JSON-RPC message');
    session.bridge.admit([message]);
    (session.bridge.client as SseSessionTransport).receive(message);
    res.statusCode = 202;
    res.end('Accepted');
  };
}
