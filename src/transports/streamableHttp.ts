/**
 * Streamable HTTP: `POST|GET|DELETE /<cmd>/mcp` with stateful sessions (`Mcp-Session-Id`).
 * A POST without a session id must be `initialize`; it starts the session's own child.
 * An unknown or closed session id gets 404 so that clients re-initialize.
 */
import type { Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { SessionNotFoundError, WardenError } from '../errors.js';
import { commandOf } from '../http/commandRoute.js';
import type { SessionFactory } from './sessionFactory.js';
import type { SessionStore } from './sessions.js';
import { streamHeaders } from './streamHeaders.js';

export interface StreamableOptions {
  /** Interval of keep-alive comments on open event streams. @default 15000 */
  readonly keepAliveMs: number;
  /** Told how long each session took to open. */
  readonly onConnected?: (kind: 'sse' | 'streamable', pooled: boolean, seconds: number) => void;
}

export class StreamableHandler {
  constructor(
    private readonly factory: SessionFactory,
    private readonly sessions: SessionStore,
    private readonly options: StreamableOptions,
  ) {}

  readonly handle = async (req: Request, res: Response): Promise<void> => {
    const spec = commandOf(req);
    const header = req.headers['mcp-session-id'];
    streamHeaders(res);
    if (header !== undefined) {
      const id = Array.isArray(header) ? undefined : header;
      const session = this.sessions.find(id, 'streamable', spec.key, req.principal);
      if (!session) throw new SessionNotFoundError();
      if (req.method === 'POST') this.factory.assertChildAccepting(session);
      if (req.method !== 'DELETE') session.bridge.outbound.track(res);
      await (session.bridge.client as StreamableHTTPServerTransport).handleRequest(req, res, req.body);
      return;
    }
    if (req.method !== 'POST') throw new WardenError('bad_request', 'Bad Request: Mcp-Session-Id header is required');
    // What the SDK transport would refuse, refused before a child is started for it.
    const accept = req.headers.accept ?? '';
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
      throw new WardenError('not_acceptable', 'Not Acceptable: Accept must include application/json and text/event-stream');
    }
    if (!(req.headers['content-type'] ?? '').includes('application/json')) {
      throw new WardenError('unsupported_media_type', 'Unsupported Media Type: Content-Type must be application/json');
    }
    if (!isInitializeRequest(req.body)) {
      throw new WardenError('bad_request', 'Bad Request: a session starts with an initialize request');
    }
    await this.initialize(req, res);
  };

  private async initialize(req: Request, res: Response): Promise<void> {
    const started = performance.now();
    const spec = commandOf(req);
    const lease = await this.factory.leaseChild(req, spec);
    const principal = req.principal!;
    let link: ReturnType<SessionFactory['connect']> | undefined;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      keepAliveMs: this.options.keepAliveMs,
      onsessioninitialized: (id) => {
        link?.register(id);
      },
    });
    link = this.factory.connect(transport, lease, spec, 'streamable', principal);
    link.bridge.outbound.track(res);
    await link.bridge.start();
    await transport.handleRequest(req, res, req.body);
    if (!link.session) await link.bridge.close('initialize refused');
    else this.options.onConnected?.('streamable', lease.child.pooled, (performance.now() - started) / 1000);
  }
}
