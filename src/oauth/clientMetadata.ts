/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client_id
 * that is an https URL names a JSON document describing the client. It is fetched (through
 * the guarded fetch of src/oauth/metadataFetch.ts), checked (its `client_id` is exactly the
 * URL, it has a name and redirect URIs, it claims no shared secret) and cached for its
 * Cache-Control max-age, clamped to 5 minutes .. 24 hours. Failures are never cached.
 */
import type { OAuthClient } from './clients.js';
import { MetadataFetchError, type FetchedDocument } from './metadataFetch.js';
import { OAuthError } from './respond.js';

const MIN_CACHE_SECONDS = 300;
const MAX_CACHE_SECONDS = 86_400;
const MAX_ENTRIES = 256;

/** True when `clientId` is meant as a metadata document URL (https). */
export function isMetadataDocumentId(clientId: string): boolean {
  return clientId.startsWith('https://');
}

/** Why `clientId` is no valid metadata document URL, or undefined. */
export function metadataUrlProblem(clientId: string): string | undefined {
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    return 'the client_id is not a URL';
  }
  if (url.protocol !== 'https:') return 'a client_id URL must be https';
  if (url.username !== '' || url.password !== '') return 'a client_id URL must not carry a user name or password';
  if (clientId.includes('#')) return 'a client_id URL must not have a fragment';
  if (url.pathname === '/' || url.pathname === '') return 'a client_id URL must have a path';
  // The parser resolves `.`/`..` and normalises case and ports: a URL that changes is not in its one form.
  if (url.href !== clientId) return 'a client_id URL must be in normalised form (no dot segments, lower-case host, no default port)';
  return undefined;
}

function stringArray(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined;
}

/** Checks a fetched document against its URL; the client it describes. */
export function clientFromDocument(clientId: string, text: string): OAuthClient {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new OAuthError('invalid_client', 'the client metadata document is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new OAuthError('invalid_client', 'the client metadata document is not a JSON object');
  const fields = doc as Record<string, unknown>;
  if (fields.client_id !== clientId) throw new OAuthError('invalid_client', 'the client metadata document names another client_id than its URL');
  const name = fields.client_name;
  if (typeof name !== 'string' || name.trim() === '' || name.length > 200)
    throw new OAuthError('invalid_client', 'the client metadata document needs a client_name (1-200 characters)');
  const redirects = stringArray(fields.redirect_uris);
  if (!redirects || redirects.length === 0) throw new OAuthError('invalid_client', 'the client metadata document needs redirect_uris');
  if ('client_secret' in fields || 'client_secret_expires_at' in fields) {
    throw new OAuthError('invalid_client', 'a client metadata document must not contain a client_secret');
  }
  const method = fields.token_endpoint_auth_method ?? 'none';
  if (method !== 'none')
    throw new OAuthError(
      'invalid_client',
      `token_endpoint_auth_method ${JSON.stringify(String(method)).slice(0, 40)} is not supported for metadata documents; use "none"`,
    );
  const grantTypes = stringArray(fields.grant_types) ?? ['authorization_code'];
  return { id: clientId, name: name.trim(), kind: 'metadata-document', redirectUris: redirects, authMethod: 'none', grantTypes };
}

export interface ClientMetadataOptions {
  /** Fetches the document (src/oauth/metadataFetch.ts with the gateway's options). */
  readonly fetch: (url: URL) => Promise<FetchedDocument>;
  readonly now?: () => number;
}

export class ClientMetadataResolver {
  private readonly cache = new Map<string, { client: OAuthClient; until: number }>();
  private readonly now: () => number;

  constructor(private readonly options: ClientMetadataOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The client a metadata document URL describes; OAuthError `invalid_client` when it cannot be used. */
  async resolve(clientId: string): Promise<OAuthClient> {
    const cached = this.cache.get(clientId);
    if (cached && cached.until > this.now()) return cached.client;
    const problem = metadataUrlProblem(clientId);
    if (problem !== undefined) throw new OAuthError('invalid_client', problem);
    let fetched: FetchedDocument;
    try {
      fetched = await this.options.fetch(new URL(clientId));
    } catch (error) {
      const why = error instanceof MetadataFetchError ? error.message : 'it could not be fetched';
      throw new OAuthError('invalid_client', `the client metadata document cannot be used: ${why}`);
    }
    const client = clientFromDocument(clientId, fetched.text);
    const seconds = Math.min(MAX_CACHE_SECONDS, Math.max(MIN_CACHE_SECONDS, fetched.maxAgeSeconds ?? MIN_CACHE_SECONDS));
    this.cache.delete(clientId);
    if (this.cache.size >= MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(clientId, { client, until: this.now() + seconds * 1000 });
    return client;
  }
}
