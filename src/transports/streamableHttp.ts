/**
 * Streamable HTTP on `/<cmd>/mcp`, both eras on one URL, chosen per request: a POST whose
 * `params._meta` claims protocol revision 2026-07-28 is modern and served statelessly
 * (src/modern/handler.ts); anything else is legacy, with stateful sessions
 * (`Mcp-Session-Id`): a POST without a session id must be `initialize`, which starts the
 * session's own child, and an unknown or closed session id gets 404 so that clients
 * re-initialize. GET and DELETE need a legacy session (405 otherwise). The checks this
 * transport asks for (Accept, MCP-Protocol-Version) are answered here, with the gateway's
 * error bodies; Content-Type was checked when the body was read.
 */
import type { IncomingMessage } from 'node:http';
import { SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { asMessage, isInitialize } from '../bridge/jsonrpc.js';
import type { ModernHandler } from '../modern/handler.js';
import { batchClaimsModern, claimsModern, MODERN_VERSION } from '../modern/protocol.js';
import { SessionNotFoundError, WardenError } from '../errors.js';
import type { RoutedRequest } from './routed.js';
import type { SessionFactory } from './sessionFactory.js';
import type { SessionStore } from './sessions.js';
import { StreamableSessionTransport } from './streamableSession.js';
import type { MintSessionId } from '../fly/sessionIds.js';

export interface StreamableOptions {
  /** Interval of keep-alive comments on open event streams. @default 15000 */
  readonly keepAliveMs: number;
  /** How long a POST waits to answer its one reply as JSON; 0: always an event stream. */
  readonly jsonReplyWindowMs: number;
  /** Where session ids come from (on Fly.io they name the machine). @default a random UUID */
  readonly mintSessionId?: MintSessionId;
}

export class StreamableHandler {
  constructor(
    private readonly factory: SessionFactory,
    private readonly sessions: SessionStore,
    private readonly options: StreamableOptions,
    private readonly modern: ModernHandler,
  ) {}

  /** Every request to `/<cmd>/mcp`. */
  async handle(request: RoutedRequest): Promise<void> {
    const { req, body } = request;
    const modern = req.method === 'POST' && claimsModern(body);
    if (request.sessionId !== undefined && !modern) return this.sessionRequest(request);
    if (req.method !== 'POST') {
      throw new WardenError('method_not_allowed', `${req.method} needs the Mcp-Session-Id of a 2025 session; 2026-07-28 requests are POSTs`, {
        headers: { Allow: 'POST' },
      });
    }
    checkAccept(req);
    if (batchClaimsModern(body)) throw new WardenError('bad_request', 'Invalid Request: a batch may not carry 2026-07-28 requests');
    if (modern) return this.modern.handle(request);
    const versionHeader = req.headers['mcp-protocol-version'];
    const modernHeader = typeof versionHeader === 'string' && versionHeader >= MODERN_VERSION;
    const initialize = isInitialize(body);
    if (initialize && modernHeader)
      throw new WardenError('header_mismatch', 'Header mismatch: initialize is a 2025 request, but MCP-Protocol-Version names a 2026 revision');
    if (modernHeader) {
      throw new WardenError(
        'invalid_params',
        'Invalid _meta envelope: a 2026-07-28 request carries its protocol version, client info and capabilities in params._meta',
        {
          data: { envelope: { missing: ['_meta'] } },
        },
      );
    }
    if (!initialize)
      throw new WardenError(
        'bad_request',
        'Bad Request: a 2025 session starts with an initialize request (or send a 2026-07-28 request with its _meta envelope)',
      );
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
