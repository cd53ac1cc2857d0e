/**
 * Streamable HTTP: `POST|GET|DELETE /<cmd>/mcp` with stateful sessions (`Mcp-Session-Id`).
 * A POST without a session id must be `initialize`; it starts the session's own child.
 * An unknown or closed session id gets 404 so that clients re-initialize. Every check the
 * protocol asks for (Accept, Content-Type, MCP-Protocol-Version) is answered here, with the
 * gateway's error bodies.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import { SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { asMessage, isInitialize } from '../bridge/jsonrpc.js';
import { SessionNotFoundError, WardenError } from '../errors.js';
import { commandOf } from '../http/commandRoute.js';
import type { SessionFactory } from './sessionFactory.js';
import type { MessageRequest, SessionStore } from './sessions.js';
import { StreamableSessionTransport } from './streamableSession.js';

export interface StreamableOptions {
  /** Interval of keep-alive comments on open event streams. @default 15000 */
  readonly keepAliveMs: number;
  /** How long a POST waits to answer its one reply as JSON; 0: always an event stream. */
  readonly jsonReplyWindowMs: number;
  /** Told how long each session took to open. */
  readonly onConnected?: (kind: 'sse' | 'streamable', pooled: boolean, seconds: number) => void;
}

export class StreamableHandler {
  constructor(
    private readonly factory: SessionFactory,
    private readonly sessions: SessionStore,
    private readonly options: StreamableOptions,
  ) {}

  /** Every request to `/<cmd>/mcp` that came through the full middleware stack. */
  readonly handle = async (req: Request, res: Response): Promise<void> => {
    const request: MessageRequest = { spec: commandOf(req), principal: req.principal!, body: req.body };
    if (req.headers['mcp-session-id'] !== undefined) return this.sessionRequest(request, req, res);
    if (req.method !== 'POST') throw new WardenError('bad_request', 'Bad Request: Mcp-Session-Id header is required');
    checkPostHeaders(req);
    if (!isInitialize(req.body)) {
      throw new WardenError('bad_request', 'Bad Request: a session starts with an initialize request');
    }
    await this.initialize(req, res);
  };

  /** A request on an existing session: POST messages, GET the event stream, DELETE it. */
  readonly sessionRequest = (request: MessageRequest, req: IncomingMessage, res: ServerResponse): void => {
    const header = req.headers['mcp-session-id'];
    const id = typeof header === 'string' ? header : undefined;
    const session = this.sessions.find(id, 'streamable', request.spec.key, request.principal);
    if (!session) throw new SessionNotFoundError();
    checkProtocolVersion(req);
    const transport = session.bridge.client as StreamableSessionTransport;
    if (req.method === 'DELETE') {
      res.writeHead(200).end();
      void session.close('client ended the session');
      return;
    }
    if (req.method === 'GET') {
      if (!(req.headers.accept ?? '').includes('text/event-stream')) {
        throw new WardenError('not_acceptable', 'Not Acceptable: Accept must include text/event-stream');
      }
      session.bridge.outbound.track(res);
      transport.openStream(res);
      return;
    }
    checkPostHeaders(req);
    this.factory.assertChildAccepting(session);
    const messages = toMessages(request.body);
    if (messages.some(isInitialize)) throw new WardenError('bad_request', 'Invalid Request: Server already initialized');
    session.bridge.admit(messages);
    session.bridge.outbound.track(res);
    transport.post(res, messages);
  };

  private async initialize(req: Request, res: Response): Promise<void> {
    const started = performance.now();
    const spec = commandOf(req);
    const lease = await this.factory.leaseChild(req, spec);
    if (res.destroyed || res.writableEnded) {
      await lease.child.close(); // the client left while its child started
      return;
    }
    const transport = new StreamableSessionTransport(this.options);
    const link = this.factory.connect(transport, lease, spec, 'streamable', req.principal!);
    link.bridge.outbound.track(res);
    await link.bridge.start();
    link.register(transport.sessionId);
    transport.post(res, [req.body as JSONRPCMessage]);
    this.options.onConnected?.('streamable', lease.child.pooled, (performance.now() - started) / 1000);
  }
}

/** POSTs must accept both reply forms and send JSON. */
function checkPostHeaders(req: IncomingMessage): void {
  const accept = req.headers.accept ?? '';
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
    throw new WardenError('not_acceptable', 'Not Acceptable: Accept must include application/json and text/event-stream');
  }
  if (!/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
    throw new WardenError('unsupported_media_type', 'Unsupported Media Type: Content-Type must be application/json');
  }
}

function checkProtocolVersion(req: IncomingMessage): void {
  const version = req.headers['mcp-protocol-version'];
  if (version === undefined || (typeof version === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(version))) return;
  throw new WardenError('bad_request', `Bad Request: Unsupported protocol version (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`);
}

/** One message or a non-empty batch, each a valid JSON-RPC message. */
function toMessages(body: unknown): JSONRPCMessage[] {
  const items = Array.isArray(body) ? body : [body];
  if (items.length === 0) throw new WardenError('bad_request', 'Invalid Request: empty batch');
  const messages: JSONRPCMessage[] = [];
  for (const item of items) {
    const message = asMessage(item);
    if (!message) throw new WardenError('bad_request', 'Invalid Request: not a JSON-RPC message');
    messages.push(message);
  }
  return messages;
}
