/**
 * Who a request comes from, for per-client limits: the authenticated client when it has
 * its own token, else the peer address. On Fly.io the peer is Fly's proxy, so its
 * `Fly-Client-IP` header is used instead; a raw X-Forwarded-For (which a client can
 * forge) never is.
 */
import type { IncomingMessage } from 'node:http';
import type { Principal } from '../auth/bearer.js';

export function clientAddress(req: IncomingMessage, trustFlyClientIp: boolean): string {
  if (trustFlyClientIp) {
    const fly = req.headers['fly-client-ip'];
    if (typeof fly === 'string' && fly.length > 0 && fly.length <= 64) return fly;
  }
  return req.socket.remoteAddress ?? 'unknown';
}

/** Shared-secret callers are told apart by address; named clients by their id. */
export function clientKey(req: IncomingMessage & { principal?: Principal }, trustFlyClientIp: boolean): string {
  const principal = req.principal;
  if (principal && principal.kind !== 'shared-secret') return `${principal.kind}:${principal.clientId}`;
  return `addr:${clientAddress(req, trustFlyClientIp)}`;
}
