/**
 * Legacy HTTP+SSE: `GET /<cmd>/sse` opens the stream (one child per stream) and announces
 * the relative endpoint `/<cmd>/messages?sessionId=<id>`; `POST` there delivers one message.
 */
import type { Request, Response } from 'express';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import { SessionNotFoundError, WardenError } from '../errors.js';
import { commandOf } from '../http/commandRoute.js';
import type { SessionFactory } from './sessionFactory.js';
import type { SessionStore } from './sessions.js';
import { streamHeaders } from './streamHeaders.js';

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
    streamHeaders(res);
    const transport = new SSEServerTransport(`/${encodeURIComponent(spec.key)}/messages`, res);
    const link = this.factory.connect(transport, lease, spec, 'sse', req.principal!);
    link.bridge.outbound.track(res);
    link.register(transport.sessionId);
    const keepAlive = setInterval(() => {
      if (!res.writableEnded) res.write(': keepalive\n\n');
    }, this.options.keepAliveMs);
    keepAlive.unref();
    res.once('close', () => clearInterval(keepAlive));
    await link.bridge.start();
    this.options.onConnected?.('sse', lease.child.pooled, (performance.now() - started) / 1000);
  };

  readonly post = async (req: Request, res: Response): Promise<void> => {
    const spec = commandOf(req);
    const id = typeof req.query.sessionId === 'string' ? req.query.sessionId : undefined;
    const session = this.sessions.find(id, 'sse', spec.key, req.principal);
    if (!session) throw new SessionNotFoundError();
    this.factory.assertChildAccepting(session);
    if (req.body === undefined) throw new WardenError('bad_request', 'Content-Type must be application/json');
    const parsed = JSONRPCMessageSchema.safeParse(req.body);
    if (!parsed.success) throw new WardenError('bad_request', 'Invalid Request: not a JSON-RPC message');
    // Validated above; handing it on directly spares a second schema parse per message.
    session.bridge.client.onmessage?.(parsed.data);
    res.status(202).end('Accepted');
  };
}
