/**
 * OAuth clients: who a client_id is (a metadata document URL, or a dynamic registration of
 * ours), and client authentication at /token and /revoke: `none` (client_id in the body),
 * `client_secret_post` (id and secret in the body) and `client_secret_basic` (an
 * `Authorization: Basic` header; its parts are URL-decoded when they are encoded, as
 * RFC 6749 §2.3.1 asks, and taken as they are otherwise).
 */
import type { IncomingMessage } from 'node:http';
import { isMetadataDocumentId, type ClientMetadataResolver } from './clientMetadata.js';
import type { Registrations } from './registration.js';
import { OAuthError } from './respond.js';

export type TokenAuthMethod = 'none' | 'client_secret_post' | 'client_secret_basic';

export interface OAuthClient {
  readonly id: string;
  /** Self-asserted: the consent page shows it next to facts the client cannot choose. */
  readonly name: string;
  readonly kind: 'metadata-document' | 'registered';
  readonly redirectUris: readonly string[];
  readonly authMethod: TokenAuthMethod;
  readonly grantTypes: readonly string[];
}

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part.replace(/\+/g, ' '));
  } catch {
    return part;
  }
}

/** The id and secret of an `Authorization: Basic` header, or undefined when there is none. */
export function basicCredentials(req: IncomingMessage): { id: string; secret: string } | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string' || !/^Basic\s+/i.test(header)) return undefined;
  const decoded = Buffer.from(header.replace(/^Basic\s+/i, '').trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1)
    throw new OAuthError('invalid_client', 'the Basic credentials must be client_id:client_secret', 401, { 'WWW-Authenticate': 'Basic realm="mcp-warden"' });
  return { id: decodePart(decoded.slice(0, colon)), secret: decodePart(decoded.slice(colon + 1)) };
}

export class ClientDirectory {
  constructor(
    private readonly documents: ClientMetadataResolver,
    private readonly registrations: Registrations,
  ) {}

  /** The client `clientId` names; OAuthError `invalid_client` (401) when it is unknown or unusable. */
  async resolve(clientId: string, status = 401): Promise<OAuthClient> {
    if (typeof clientId !== 'string' || clientId.length === 0) throw new OAuthError('invalid_request', 'client_id is required');
    if (clientId.length > 4096) throw new OAuthError('invalid_client', 'unknown client_id', status);
    if (isMetadataDocumentId(clientId)) {
      try {
        return await this.documents.resolve(clientId);
      } catch (error) {
        if (error instanceof OAuthError) throw new OAuthError(error.error, error.description, status);
        throw error;
      }
    }
    const registered = this.registrations.open(clientId);
    if (!registered) throw new OAuthError('invalid_client', 'unknown client_id: register again', status);
    return registered;
  }

  /** Authenticates the client of a /token or /revoke request (its form fields are `form`). */
  async authenticate(req: IncomingMessage, form: URLSearchParams): Promise<OAuthClient> {
    const basic = basicCredentials(req);
    const challenge: Record<string, string> = basic ? { 'WWW-Authenticate': 'Basic realm="mcp-warden"' } : {};
    const bodyId = form.get('client_id') ?? undefined;
    if (basic && bodyId !== undefined && bodyId !== basic.id)
      throw new OAuthError('invalid_request', 'client_id in the body differs from the Basic credentials');
    if (basic && form.has('client_secret')) throw new OAuthError('invalid_request', 'send the client secret one way only (Basic or the body)');
    const id = basic?.id ?? bodyId;
    if (id === undefined) throw new OAuthError('invalid_client', 'client authentication is required: send client_id', 401);
    const client = await this.resolve(id);
    if (client.authMethod === 'none') return client;
    const secret = basic?.secret ?? form.get('client_secret') ?? undefined;
    if (secret === undefined || !this.registrations.secretMatches(client.id, secret)) {
      throw new OAuthError('invalid_client', 'client authentication failed', 401, challenge);
    }
    return client;
  }
}
