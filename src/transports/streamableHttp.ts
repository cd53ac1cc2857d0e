/**
 * Streamable HTTP: `POST|GET|DELETE /<cmd>/mcp` with stateful sessions (`Mcp-Session-Id`).
 * A POST without a session id must be `initialize`; it starts the session's own child.
 * An unknown or closed session id gets 404 so that clients re-initialize. The checks this
 * transport asks for (Accept, MCP-Protocol-Version) are answered here, with the gateway's
 * error bodies; Content-Type was checked when the body was read.
 */
import type { IncomingMessage } from 'node:http';
import { SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { asMessage, isInitialize } from '../bridge/jsonrpc.js';
import { SessionNotFoundError, WardenError } from '../errors.js';
import type { RoutedRequest } from './routed.js';
import type { SessionFactory } from './sessionFactory.js';
import type { SessionStore } from './sessions.js';
import { StreamableSessionTransport } from './streamableSession.js';

export interface StreamableOptions {
  /** Interval of keep-alive comments on open event streams. @default 15000 */
  readonly keepAliveMs: number;
  /** How long a POST waits to answer its one reply as JSON; 0: always an event stream. */
  readonly jsonReplyWindowMs: number;
}

export class StreamableHandler {
  constructor(
    private readonly factory: SessionFactory,
    private readonly sessions: SessionStore,
    private readonly options: StreamableOptions,
  ) {}

  /** Every request to `/<cmd>/mcp`. */
  async handle(request: RoutedRequest): Promise<void> {
    if (request.sessionId !== undefined) return this.sessionRequest(request);
    if (request.req.method !== 'POST') throw new WardenError('bad_request', 'Bad Request: Mcp-Session-Id header is required');
    checkAccept(request.req);
    if (!isInitialize(request.body)) throw new WardenError('bad_request', 'Bad Request: a session starts with an initialize request');
    const options = { ...this.options, maxBacklogBytes: this.factory.limits.maxClientBacklogBytes };
    const session = await this.factory.open(request, 'streamable', () => new StreamableSessionTransport(options));
    session?.transport.post(request.res, [request.body as JSONRPCMessage]);
  }

  /** A request on an existing session: POST messages, GET the event stream, DELETE it. */
  private sessionRequest({ req, res, spec, principal, sessionId, body }: RoutedRequest): void {
    const session = this.sessions.find(sessionId, 'streamable', spec.key, principal);
    if (!session) throw new SessionNotFoundError();
    checkProtocolVersion(req);
    if (req.method === 'DELETE') {
      res.writeHead(200).end();
      void session.close('client ended the session');
      return;
    }
    if (req.method === 'GET') {
      if (!(req.headers.accept ?? '').includes('text/event-stream')) {
        throw new WardenError('not_acceptable', 'Not Acceptable: Accept must include text/event-stream');
      }
      session.transport.openStream(res);
      return;
    }
    checkAccept(req);
    this.factory.assertChildAccepting(session);
    const messages = toMessages(body);
    if (messages.some(isInitialize)) throw new WardenError('bad_request', 'Invalid Request: Server already initialized');
    session.bridge.admit(messages);
    session.transport.post(res, messages);
  }
}

/** POSTs must accept both reply forms. */
function checkAccept(req: IncomingMessage): void {
  const accept = req.headers.accept ?? '';
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
    throw new WardenError('not_acceptable', 'Not Acceptable: Accept must include application/json and text/event-stream');
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
