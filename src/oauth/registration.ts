/**
 * Dynamic client registration (RFC 7591), with nothing stored: the client_id IS the
 * registered metadata, sealed (encrypted and authenticated with the OAuth key), and a
 * confidential client's secret is an HMAC of its client_id. Any machine with the key knows
 * every client; a key rotation (once the previous key is dropped) retires them, and clients
 * then register again (`invalid_client` tells them to).
 */
import type { OAuthClient, TokenAuthMethod } from './clients.js';
import { redirectUriProblem } from './redirects.js';
import { OAuthError } from './respond.js';
import type { Sealer } from './seal.js';

/** Marks a registered client's id (a metadata document's id is an https URL). */
export const REGISTERED_PREFIX = 'wdc.';
/** Registrations do not expire on their own; rotating the key retires them. */
const REGISTRATION_TTL_MS = 10 * 365 * 86_400_000;
const AUTH_METHODS: readonly TokenAuthMethod[] = ['none', 'client_secret_post', 'client_secret_basic'];
const GRANT_TYPES = ['authorization_code', 'refresh_token'];

/** What the sealed client_id holds. */
interface Registered {
  readonly n: string;
  readonly u: readonly string[];
  readonly m: TokenAuthMethod;
  readonly g: readonly string[];
  readonly cu?: string;
  readonly t: number;
}

function stringList(value: unknown, field: string, max: number): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length > max || !value.every((v) => typeof v === 'string')) {
    throw new OAuthError('invalid_client_metadata', `${field} must be an array of at most ${max} strings`);
  }
  return value as string[];
}

export class Registrations {
  constructor(private readonly sealer: Sealer) {}

  /** Registers `body` (the parsed JSON request); the RFC 7591 answer. */
  register(body: unknown, now: number): Record<string, unknown> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new OAuthError('invalid_client_metadata', 'the body must be a JSON object');
    const fields = body as Record<string, unknown>;
    const redirects = stringList(fields.redirect_uris, 'redirect_uris', 10);
    if (!redirects || redirects.length === 0) throw new OAuthError('invalid_redirect_uri', 'redirect_uris is required');
    for (const uri of redirects) {
      const problem = redirectUriProblem(uri);
      if (problem !== undefined) throw new OAuthError('invalid_redirect_uri', problem);
    }
    const method = (fields.token_endpoint_auth_method ?? 'client_secret_basic') as TokenAuthMethod;
    if (!AUTH_METHODS.includes(method)) {
      throw new OAuthError('invalid_client_metadata', `token_endpoint_auth_method must be one of ${AUTH_METHODS.join(', ')}`);
    }
    // Grant types this server does not know are left out of the registration (RFC 7591 §3.2.1).
    const grants = (stringList(fields.grant_types, 'grant_types', 10) ?? ['authorization_code']).filter((g) => GRANT_TYPES.includes(g));
    if (!grants.includes('authorization_code')) throw new OAuthError('invalid_client_metadata', 'grant_types must include authorization_code');
    const responses = stringList(fields.response_types, 'response_types', 5) ?? ['code'];
    if (!responses.includes('code')) throw new OAuthError('invalid_client_metadata', 'response_types must include code');
    const name = fields.client_name ?? 'unnamed client';
    if (typeof name !== 'string' || name.trim() === '' || name.length > 200)
      throw new OAuthError('invalid_client_metadata', 'client_name must be 1-200 characters');
    const clientUri = fields.client_uri;
    if (clientUri !== undefined && (typeof clientUri !== 'string' || clientUri.length > 512 || !/^https?:\/\//.test(clientUri) || !URL.canParse(clientUri))) {
      throw new OAuthError('invalid_client_metadata', 'client_uri must be an http(s) URL');
    }
    const issuedAt = Math.floor(now / 1000);
    const sealed: Registered = { n: name.trim(), u: redirects, m: method, g: grants, ...(clientUri ? { cu: clientUri as string } : {}), t: issuedAt };
    const clientId = `${REGISTERED_PREFIX}${this.sealer.seal('client', sealed, REGISTRATION_TTL_MS)}`;
    return {
      client_id: clientId,
      client_id_issued_at: issuedAt,
      ...(method === 'none' ? {} : { client_secret: this.secretOf(clientId), client_secret_expires_at: 0 }),
      client_name: sealed.n,
      redirect_uris: redirects,
      token_endpoint_auth_method: method,
      grant_types: grants,
      response_types: ['code'],
      ...(clientUri ? { client_uri: clientUri } : {}),
    };
  }

  /** The client a registered client_id describes; undefined when it is none of ours. */
  open(clientId: string): OAuthClient | undefined {
    if (!clientId.startsWith(REGISTERED_PREFIX)) return undefined;
    const opened = this.sealer.open<Registered>('client', clientId.slice(REGISTERED_PREFIX.length));
    if (!opened.ok) return undefined;
    const r = opened.value;
    return { id: clientId, name: r.n, kind: 'registered', redirectUris: r.u, authMethod: r.m, grantTypes: r.g };
  }

  /** A confidential client's secret: HMAC of its client_id under the current key. */
  secretOf(clientId: string): string {
    return this.sealer.mac('client-secret', clientId);
  }

  /** True when `secret` is the client's secret under the current or the previous key. */
  secretMatches(clientId: string, secret: string): boolean {
    return this.sealer.macMatches('client-secret', clientId, secret);
  }
}
