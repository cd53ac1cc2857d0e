/**
 * The one route table. Every request is sorted into a route class before any check runs;
 * the class decides which checks apply, in which order (src/http/pipeline.ts):
 * - `message`: the MCP endpoints `/<key>/mcp`, `/<key>/sse`, `/<key>/messages` (and any
 *   other path, which is refused as an unknown command once the caller authenticated, so
 *   an anonymous caller cannot probe which keys exist);
 * - `metadata`: public documents that need no credentials (`/health`, `/.well-known/*`);
 * - `oauth`: the authorization server's endpoints, which answer in their own error format;
 * - `admin`: the admin credential's routes (`/status`, `/metrics`, `/admin/*`).
 * Paths are matched on the raw (still percent-encoded) path, so an encoded `/` stays
 * inside the key segment.
 */
import type { IncomingHttpHeaders } from 'node:http';

export type Endpoint = 'sse' | 'messages' | 'mcp';
export type RouteClass = 'message' | 'metadata' | 'oauth' | 'admin';

export interface Route {
  readonly class: RouteClass;
  /** The path without the query string, still percent-encoded. */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Message routes: the raw key segment and the endpoint (undefined: not an MCP path). */
  readonly keySegment?: string;
  readonly endpoint?: Endpoint;
}

/** Methods each endpoint serves (besides OPTIONS, which CORS answers). */
export const ENDPOINT_METHODS: Readonly<Record<Endpoint, readonly string[]>> = {
  sse: ['GET'],
  messages: ['POST'],
  mcp: ['GET', 'POST', 'DELETE'],
};

const MESSAGE_PATH = /^\/([^/]+)\/(sse|messages|mcp)\/?$/;
const ADMIN_PATHS = new Set(['/status', '/metrics']);
const OAUTH_PATHS = new Set(['/authorize', '/token', '/register', '/revoke']);

/** Sorts a request by its raw URL. */
export function routeOf(rawUrl: string): Route {
  const q = rawUrl.indexOf('?');
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1));
  if (path === '/health' || path.startsWith('/.well-known/')) return { class: 'metadata', path, query };
  if (ADMIN_PATHS.has(path) || path.startsWith('/admin/')) return { class: 'admin', path, query };
  if (OAUTH_PATHS.has(path)) return { class: 'oauth', path, query };
  const match = MESSAGE_PATH.exec(path);
  if (!match) return { class: 'message', path, query };
  return { class: 'message', path, query, keySegment: match[1]!, endpoint: match[2] as Endpoint };
}

/** The session a message request names: `?sessionId=` on SSE message POSTs, `Mcp-Session-Id` on Streamable requests. */
export function sessionIdOf(route: Route, headers: IncomingHttpHeaders): string | undefined {
  if (route.endpoint === 'messages') return route.query.get('sessionId') ?? undefined;
  const header = headers['mcp-session-id'];
  return route.endpoint === 'mcp' && typeof header === 'string' ? header : undefined;
}
