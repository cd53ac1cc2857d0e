/**
 * The built-in authorization server and the resource-server documents, put together from
 * settings: the routes it answers (the pipeline's `metadata`, `oauth` and `admin` classes
 * reach it through the pages app, after their checks) and the verifier the credentials check
 * uses. Every route answers in its own format: metadata as JSON, the OAuth endpoints in the
 * OAuth error format (a page on /authorize), the admin API as the other admin routes do.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { writeError } from '../http/respond.js';
import { routeOf } from '../http/routes.js';
import { OAuthAdminApi } from './adminApi.js';
import { AuthorizeEndpoint } from './authorize.js';
import { ClientMetadataResolver } from './clientMetadata.js';
import { ClientDirectory } from './clients.js';
import type { AuthServerContext } from './context.js';
import { GrantSeals } from './grants.js';
import { authorizationServerMetadata } from './metadata.js';
import { fetchMetadataDocument } from './metadataFetch.js';
import { registerEndpoint } from './register.js';
import { Registrations } from './registration.js';
import { ResourceServer } from './resource.js';
import { writeJson, writeOAuthRefusal, OAuthError } from './respond.js';
import { answerResourceMetadata } from './resourceRoutes.js';
import { revokeEndpoint } from './revoke.js';
import { Sealer } from './seal.js';
import { TokenEndpoint } from './token.js';
import { SealedTokenVerifier, type OAuthVerifier } from './verifier.js';

export interface OAuthServerOptions extends Omit<AuthServerContext, 'issuer' | 'resource' | 'sealer' | 'seals' | 'clients' | 'registrations'> {
  /** The public origin (no trailing slash): issuer and resource URLs. */
  readonly publicUrl: string;
  readonly key: string;
  readonly previousKey?: string;
  readonly accessTtlMs: number;
  readonly grantTtlMs: number;
  /** Client metadata documents on loopback addresses (tests). */
  readonly allowLoopbackMetadata: boolean;
  /** Extra CAs trusted when fetching client metadata documents (tests). */
  readonly metadataCa?: string | Buffer;
}

export interface OAuthServer {
  readonly issuer: string;
  readonly resource: ResourceServer;
  readonly verifier: OAuthVerifier;
  /** Answers `req` when it is one of its routes; false otherwise (the caller answers 404). */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

const AS_METADATA = '/.well-known/oauth-authorization-server';

export function createOAuthServer(options: OAuthServerOptions): OAuthServer {
  const issuer = options.publicUrl;
  const resource = new ResourceServer(issuer);
  const sealer = new Sealer(options.key, options.previousKey, { now: options.now });
  const seals = new GrantSeals(sealer, options.accessTtlMs, options.grantTtlMs);
  const registrations = new Registrations(sealer);
  const documents = new ClientMetadataResolver({
    now: options.now,
    fetch: (url) =>
      fetchMetadataDocument(url, { allowLoopback: options.allowLoopbackMetadata, ...(options.metadataCa === undefined ? {} : { ca: options.metadataCa }) }),
  });
  const ctx: AuthServerContext = { ...options, issuer, resource, sealer, seals, registrations, clients: new ClientDirectory(documents, registrations) };
  const authorize = new AuthorizeEndpoint(ctx);
  const token = new TokenEndpoint(ctx, options.grantTtlMs);
  const admin = new OAuthAdminApi(options.store, options.audit);
  const verifier = new SealedTokenVerifier({ seals, store: options.store, resource, now: options.now });

  const oauthRoute = async (req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> => {
    const method = req.method ?? 'GET';
    if (path === '/authorize' && (method === 'GET' || method === 'HEAD')) return authorize.show(req, res, query);
    if (path === '/authorize' && method === 'POST') return authorize.submit(req, res);
    if (method !== 'POST') throw new OAuthError('invalid_request', `use POST on ${path}`, 405, { Allow: path === '/authorize' ? 'GET, POST' : 'POST' });
    if (path === '/token') return token.handle(req, res);
    if (path === '/register') return registerEndpoint(ctx, req, res);
    return revokeEndpoint(ctx, req, res);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const { class: routeClass, path, query } = routeOf(req.url ?? '/');
    if (routeClass === 'oauth') {
      try {
        await oauthRoute(req, res, path, query);
      } catch (error) {
        if (!(error instanceof OAuthError))
          options.logger.error('OAuth endpoint failed', { path, error: error instanceof Error ? error.message : String(error) });
        writeOAuthRefusal(res, error, path);
      }
      return true;
    }
    if (path.startsWith('/admin/oauth/')) {
      try {
        return await admin.handle(req, res, path);
      } catch (error) {
        writeError(res, error);
        return true;
      }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if (path === AS_METADATA) {
      writeJson(res, 200, authorizationServerMetadata(issuer), { 'Cache-Control': 'public, max-age=300' });
      return true;
    }
    return answerResourceMetadata(res, path, resource, issuer);
  };

  return { issuer, resource, verifier, handle };
}
