/**
 * Under a policy, a request body the engine cannot read unambiguously is denied before
 * it reaches a transport: JSON-RPC batch arrays, and objects with duplicate keys.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { WardenError } from '../errors.js';
import { findDuplicateKey } from './duplicateKeys.js';

const RAW = Symbol('rawBody');

/** express.json `verify` hook: keeps a reference to the raw body (no copy). */
export function keepRawBody(req: IncomingMessage, _res: unknown, buf: Buffer): void {
  (req as IncomingMessage & { [RAW]?: Buffer })[RAW] = buf;
}

/**
 * Why a POST body is ambiguous under a policy, or undefined: a charset other than UTF-8,
 * a batch array, or an object that repeats a key (found in `raw`, the body as received).
 */
export function ambiguityError(contentType: string | undefined, body: unknown, raw: string | undefined): WardenError | undefined {
  const charset = /charset\s*=\s*"?([^;"\s]+)/i.exec(contentType ?? '')?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return new WardenError('policy_denied', 'only UTF-8 request bodies are accepted under a policy', { data: { reason: 'malformed_request', rule: 'shape' } });
  }
  if (Array.isArray(body)) {
    return new WardenError('policy_denied', 'batch requests are not accepted under a policy', { data: { reason: 'malformed_request', rule: 'shape' } });
  }
  const key = raw === undefined ? undefined : findDuplicateKey(raw);
  if (key === undefined) return undefined;
  return new WardenError('policy_denied', 'a JSON object repeats a key; ambiguous requests are denied', {
    data: { reason: 'malformed_request', rule: 'shape', key: key.slice(0, 64) },
  });
}

export function rejectAmbiguousBodies(policyActive: () => boolean): RequestHandler {
  return (req, _res, next) => {
    if (req.method !== 'POST' || !policyActive()) return next();
    const raw = (req as unknown as { [RAW]?: Buffer })[RAW];
    next(ambiguityError(req.headers['content-type'], req.body, raw?.toString('utf8')));
  };
}
