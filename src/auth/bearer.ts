/**
 * Bearer-token authentication. Tokens are compared as SHA-256 digests with
 * timingSafeEqual, so neither content nor length leaks through timing. Only the
 * Authorization header counts: a token in the query string is refused, never used.
 */
import type { IncomingMessage } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * What kind of credential a principal presented: the shared WARDEN_SECRET, a token from the
 * clients file, the admin credential, or an OAuth access token (each grant is its own
 * principal, whose id is the grant id); ids are only unique within a kind, so principals
 * are compared by kind and id together (`samePrincipal`).
 */
export type PrincipalKind = 'shared-secret' | 'client' | 'admin' | 'oauth';

/** Who is calling, attached to the request as `req.principal` once authenticated. */
export interface Principal {
  readonly kind: PrincipalKind;
  /** Unique within `kind`; the shared-secret principal's id is `SHARED_SECRET_ID`. */
  readonly clientId: string;
  readonly role: string;
  /**
   * OAuth grants: the credential the person entered at consent (`shared-secret` or
   * `client:<id>`), named in audit records next to the grant id.
   */
  readonly via?: string;
}

/** The id of the principal of callers that present the shared secret. */
export const SHARED_SECRET_ID = 'shared-secret';

/** True when `a` and `b` are the same caller: the same kind and the same id. */
export function samePrincipal(a: Principal, b: Principal): boolean {
  return a.kind === b.kind && a.clientId === b.clientId;
}

/** The frozen principal of callers that present the shared secret. */
export function sharedSecretPrincipal(role: string): Principal {
  return Object.freeze<Principal>({ kind: 'shared-secret', clientId: SHARED_SECRET_ID, role });
}

declare module 'express-serve-static-core' {
  interface Request {
    /** Who the pipeline authenticated. */
    principal?: Principal;
  }
}

export function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Resolves a presented token to a principal, or undefined. */
export type TokenVerifier = (token: string) => Principal | undefined;

export function sharedSecretVerifier(secret: string, role = 'default'): TokenVerifier {
  const expected = digest(secret);
  const principal = sharedSecretPrincipal(role);
  return (token) => (sameDigest(digest(token), expected) ? principal : undefined);
}

const QUERY_CREDENTIAL = /^(token|access_token|auth|authorization|secret|key|api_key|apikey|bearer)$/i;

export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** Why a request without a valid credential is refused, in words that say what to send. */
export function unauthorizedReason(req: IncomingMessage, token: string | undefined, query: Record<string, unknown>): string {
  if (Object.keys(query).some((k) => QUERY_CREDENTIAL.test(k))) {
    return 'credentials in the query string are not accepted; send Authorization: Bearer <token>';
  }
  if (token !== undefined) return 'invalid bearer token';
  if (req.headers.authorization !== undefined) return 'the Authorization header must be "Bearer <token>"';
  return 'missing bearer token: send Authorization: Bearer <token>';
}
