/**
 * The one place an HTTP rejection is written: status, headers (Retry-After,
 * WWW-Authenticate) and a JSON-RPC error body. Never echoes request input.
 */
import type { ServerResponse } from 'node:http';
import type { Response } from 'express';
import { errorBody, toWardenError, type WardenError } from '../errors.js';

/** Set on `app.locals` to be told of every rejection (metrics). */
export type RejectionHook = (error: WardenError) => void;

/** Through Express: tells `app.locals.onRejection`, then writes the error. */
export function sendError(res: Response, error: unknown, id: string | number | null = null): void {
  const warden = toWardenError(error);
  (res.app?.locals.onRejection as RejectionHook | undefined)?.(warden);
  writeError(res, warden, id);
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
  res.statusCode = warden.status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(errorBody(warden, id)));
}
