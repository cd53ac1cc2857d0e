/**
 * How the authorization server answers: RFC 6749 JSON errors (`{error, error_description}`)
 * from /token, /register, /revoke; an HTML page from /authorize while it cannot trust the
 * redirect URI (phase 1); a redirect carrying `error`, `state` and `iss` once it can
 * (phase 2). The pipeline's own refusals (drain, Host/Origin) on these routes are written in
 * the same formats by `writeOAuthRefusal`.
 */
import type { ServerResponse } from 'node:http';
import { toWardenError, type WardenError } from '../errors.js';
import { errorPage, pageHeaders } from './pages.js';

/** The error codes of RFC 6749, RFC 7009, RFC 7591 and RFC 8707 this server answers with. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'unsupported_token_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'access_denied'
  | 'invalid_redirect_uri'
  | 'invalid_client_metadata'
  | 'server_error'
  | 'temporarily_unavailable';

/** A refusal in the OAuth format. `description` never quotes a secret. */
export class OAuthError extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly status = 400,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(description);
    this.name = 'OAuthError';
  }
}

const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

/** Printable ASCII only (RFC 6749 limits error_description to it). */
function descriptionSafe(text: string): string {
  return text.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, ' ').slice(0, 300);
}

export function writeJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  // Never cached, unless the caller says how (the metadata documents).
  const cache = headers['Cache-Control'] === undefined ? NO_STORE : {};
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...cache, ...headers }).end(JSON.stringify(body));
}

export function writeOAuthError(res: ServerResponse, error: OAuthError): void {
  writeJson(res, error.status, { error: error.error, error_description: descriptionSafe(error.description) }, error.headers);
}

/** A 302/303 to `target` (never cached). */
export function redirect(res: ServerResponse, target: string, status: 302 | 303 = 302): void {
  res.writeHead(status, { Location: target, ...NO_STORE, 'Referrer-Policy': 'no-referrer' }).end();
}

/** `redirectUri` with the authorization response's parameters added (RFC 6749 §4.1.2, RFC 9207). */
export function withParams(redirectUri: string, params: Readonly<Record<string, string | undefined>>): string {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.append(name, value);
  return url.toString();
}

/** The OAuth code for a refusal of the request pipeline. */
function oauthCodeOf(error: WardenError): OAuthErrorCode {
  if (error.code === 'unauthorized') return 'invalid_client';
  if (error.code === 'forbidden_host' || error.code === 'forbidden_origin' || error.code === 'forbidden') return 'access_denied';
  if (error.status === 429 || error.status === 503) return 'temporarily_unavailable';
  return error.status >= 500 ? 'server_error' : 'invalid_request';
}

/** Writes a pipeline refusal (or anything thrown) on an OAuth route in that route's format. */
export function writeOAuthRefusal(res: ServerResponse, thrown: unknown, path: string): void {
  if (thrown instanceof OAuthError) {
    if (path === '/authorize') writePage(res, thrown.status, errorPage('This authorization request cannot go on', thrown.description), thrown.headers);
    else writeOAuthError(res, thrown);
    return;
  }
  const error = toWardenError(thrown);
  const headers: Record<string, string> = { ...error.headers, 'X-Warden-Error': `${error.code}` };
  if (error.retryAfter !== undefined) headers['Retry-After'] = String(Math.max(1, Math.ceil(error.retryAfter)));
  if (path === '/authorize') writePage(res, error.status, errorPage('This authorization request cannot go on', error.message), headers);
  else writeOAuthError(res, new OAuthError(oauthCodeOf(error), error.message, error.status, headers));
}

/** An HTML page with the headers every page of the authorization server carries. */
export function writePage(res: ServerResponse, status: number, html: string, headers: Readonly<Record<string, string>> = {}): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  res.writeHead(status, { ...pageHeaders(), ...headers }).end(html);
}
