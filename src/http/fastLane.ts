/**
 * The per-message path without the Express stack. A POST to an existing session
 * (`/<cmd>/messages?sessionId=<id>` or `/<cmd>/mcp` with `Mcp-Session-Id`) runs the same
 * checks in the same order as the full stack (drain, Host/Origin, failed-auth throttle,
 * bearer token, command, request rate limit, body limit, policy ambiguity), then reads and
 * parses its body once and hands it to the transport handler, which finds the session.
 *
 * Every case that is not plainly well-formed (another route, a check that fails before
 * anything is consumed, a chunked or compressed body, an unusual Content-Type) goes to the
 * full stack untouched, which answers it exactly as before. Once the request rate limit
 * has been charged, errors are answered here, through the same error writer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal, TokenVerifier } from '../auth/bearer.js';
import { bearerToken } from '../auth/bearer.js';
import { decodeCommandSegment, type CommandRegistry } from '../commands/registry.js';
import type { CommandSpec } from '../commands/types.js';
import { toWardenError, WardenError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { SseHandler } from '../transports/sse.js';
import type { TransportKind } from '../transports/sessions.js';
import type { StreamableHandler } from '../transports/streamableHttp.js';
import { ambiguityError } from './ambiguity.js';
import { writeError, type RejectionHook } from './respond.js';

export interface FastLaneDeps {
  readonly logger: Logger;
  readonly registry: CommandRegistry;
  readonly sse: SseHandler;
  readonly streamable: StreamableHandler;
  /** The full stack, for everything the lane does not take. */
  readonly fallback: (req: IncomingMessage, res: ServerResponse) => void;
  readonly isDraining: () => boolean;
  readonly hostCheck: (req: IncomingMessage) => WardenError | undefined;
  readonly verify: TokenVerifier;
  /** Charges one request to the caller's budget: the 429 to answer, or undefined. */
  readonly takeRequest?: (req: IncomingMessage & { principal?: Principal }) => Promise<WardenError | undefined>;
  readonly bodyLimitBytes: number;
  readonly policyActive: () => boolean;
  readonly onRejection?: RejectionHook;
}

const SSE_POST = /^\/([^/?]+)\/messages\?sessionId=([0-9a-f-]{36})$/;
const MCP_POST = /^\/([^/?]+)\/mcp\/?$/;
const JSON_TYPE = /^application\/json\s*(?:;\s*charset\s*=\s*"?utf-?8"?\s*)?$/i;

interface Taken {
  readonly kind: TransportKind;
  readonly spec: CommandSpec;
  readonly length: number;
  readonly sessionId: string;
}

/** The request listener: the lane for session messages, the full stack for the rest. */
export function fastLane(deps: FastLaneDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const reject = (res: ServerResponse, error: unknown) => {
    const warden = toWardenError(error);
    deps.onRejection?.(warden);
    if (!(error instanceof WardenError)) deps.logger.error('unhandled request error', { error: error instanceof Error ? error.stack : String(error) });
    writeError(res, warden);
  };

  /** What the lane can decide without reading or charging anything. */
  const take = (req: IncomingMessage): Taken | undefined => {
    if (req.method !== 'POST' || deps.isDraining() || deps.hostCheck(req)) return undefined;
    const url = req.url ?? '';
    let kind: TransportKind;
    let match = SSE_POST.exec(url);
    let sessionId: string | undefined;
    if (match) {
      kind = 'sse';
      sessionId = match[2];
    } else {
      match = MCP_POST.exec(url);
      const header = req.headers['mcp-session-id'];
      if (!match || typeof header !== 'string') return undefined;
      kind = 'streamable';
      sessionId = header;
    }
    const key = decodeCommandSegment(match[1]!);
    const spec = key === undefined ? undefined : deps.registry.get(key);
    if (!spec || sessionId === undefined) return undefined;
    const { headers } = req;
    if (headers['transfer-encoding'] !== undefined || headers['content-encoding'] !== undefined) return undefined;
    if (!JSON_TYPE.test(headers['content-type'] ?? '')) return undefined;
    const length = Number(headers['content-length']);
    if (!Number.isInteger(length) || length <= 0 || length > deps.bodyLimitBytes) return undefined;
    return { kind, spec, length, sessionId };
  };

  const handle = async (req: IncomingMessage & { principal?: Principal }, res: ServerResponse, taken: Taken): Promise<void> => {
    // A valid credential is never throttled; everything else goes to the full stack.
    const token = bearerToken(req);
    const principal = token === undefined ? undefined : deps.verify(token);
    if (!principal) return deps.fallback(req, res);
    req.principal = principal;
    const refusal = await deps.takeRequest?.(req);
    if (refusal) return reject(res, refusal);
    const raw = await readBody(req, taken.length);
    if (raw === undefined) {
      // The client went away mid-body; should the connection still be there, say so.
      if (!res.destroyed) reject(res, new WardenError('bad_request', 'the request body ended early'));
      return;
    }
    let body: unknown;
    try {
      // A leading byte order mark is dropped, as the full stack's body parser does.
      body = JSON.parse(raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw);
    } catch {
      body = undefined;
    }
    if (typeof body !== 'object' || body === null) return reject(res, new WardenError('parse_error', 'Parse error: request body is not valid JSON'));
    if (deps.policyActive()) {
      const ambiguous = ambiguityError(req.headers['content-type'], body, raw);
      if (ambiguous) return reject(res, ambiguous);
    }
    const request = { spec: taken.spec, principal, body };
    if (taken.kind === 'sse') deps.sse.post({ ...request, sessionId: taken.sessionId }, res);
    else deps.streamable.sessionRequest(request, req, res);
  };

  return (req, res) => {
    const taken = take(req);
    if (!taken) return deps.fallback(req, res);
    handle(req, res, taken).catch((error: unknown) => reject(res, error));
  };
}

/** The body as text, once `length` bytes arrived; undefined when the request ended early. */
function readBody(req: IncomingMessage, length: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
    });
    req.once('end', () => {
      if (received !== length) return resolve(undefined);
      resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, received).toString('utf8'));
    });
    req.once('error', () => resolve(undefined));
    req.once('close', () => resolve(undefined)); // after 'end' this changes nothing
  });
}
