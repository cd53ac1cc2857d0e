/**
 * CORS for browser-based clients (Inspector's web UI, web apps). The origin allowlist
 * (src/http/hostGuard.ts) decides who may call at all; for an allowed Origin, responses
 * carry `Access-Control-Allow-Origin` and expose the headers a client must read, and a
 * preflight (`OPTIONS`) is answered with the methods of the endpoint and the request
 * headers MCP uses: Authorization, Content-Type, Accept, Mcp-*, MCP-Protocol-Version,
 * Last-Event-ID and ENV_* (the per-session environment).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Response headers a browser script may read. */
const EXPOSED_HEADERS = 'Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, Retry-After, X-Warden-Error';

/** Request headers a preflight may ask for (compared in lower case). */
const ALLOWED_REQUEST_HEADER = /^(authorization|content-type|accept|last-event-id|mcp-[a-z0-9-]+|env_[a-z0-9_]+)$/;

const MAX_AGE_SECONDS = '600';

/** Marks a response to an allowed cross-origin request as readable by that origin. */
export function allowOrigin(res: ServerResponse, origin: string): void {
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
  res.setHeader('Vary', 'Origin');
}

/**
 * Answers a preflight for a path serving `methods` (the Origin already passed the
 * allowlist). Request headers outside what MCP uses are left out of the answer, so the
 * browser refuses the request itself.
 */
export function answerPreflight(req: IncomingMessage, res: ServerResponse, methods: readonly string[]): void {
  const allow = [...methods, 'OPTIONS'].join(', ');
  res.setHeader('Allow', allow);
  if (req.headers.origin !== undefined) {
    const asked = (req.headers['access-control-request-headers'] ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter((h) => ALLOWED_REQUEST_HEADER.test(h));
    res.setHeader('Access-Control-Allow-Methods', allow);
    if (asked.length > 0) res.setHeader('Access-Control-Allow-Headers', asked.join(', '));
    res.setHeader('Access-Control-Max-Age', MAX_AGE_SECONDS);
  }
  res.writeHead(204).end();
}
