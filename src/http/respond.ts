/**
 * The one place an HTTP rejection is written: status, headers (Retry-After,
 * WWW-Authenticate, and X-Warden-Error with the reason) and a JSON-RPC error body. Never
 * echoes request input beyond what an error's own message quotes.
 */
import type { ServerResponse } from 'node:http';
import { errorBody, toWardenError } from '../errors.js';

/** Printable ASCII only, at most 200 characters (a header value must not carry anything else). */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}

/** Writes `error` on any response (no hook): status, headers and the JSON-RPC error body. */
export function writeError(res: ServerResponse, error: unknown, id: string | number | null = null): void {
  const warden = toWardenError(error);
  if (res.headersSent) {
    // A stream is already open: all we can do is end it.
    if (!res.writableEnded) res.end();
    return;
  }
  for (const [name, value] of Object.entries(warden.headers)) res.setHeader(name, value);
  // A body that was not read (a 401 before a huge upload, say) is not read afterwards either:
  // the connection closes instead of draining whatever the client still sends.
  if (res.req && !res.req.complete) res.setHeader('Connection', 'close');
  if (warden.retryAfter !== undefined) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(warden.retryAfter))));
  // The reason in a header too: some clients show only the status of a failed request.
  res.setHeader('X-Warden-Error', headerSafe(`${warden.code}: ${warden.message}`));
  res.statusCode = warden.status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(errorBody(warden, id)));
}
