/**
 * An external identity provider in place of the built-in authorization server: the gateway
 * is then a resource server only. Its endpoints' metadata name the provider's issuer, its
 * tokens are checked against the provider's keys (src/oauth/jwtVerifier.ts), and none of the
 * built-in server's routes exist (no /authorize, /token, /register, /revoke, no
 * authorization server metadata, no admin API for grants: the provider holds them).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRemoteJWKSet } from 'jose';
import type { Logger } from '../logging/logger.js';
import type { RoleRule } from './claims.js';
import { JwtVerifier } from './jwtVerifier.js';
import { ResourceServer } from './resource.js';
import { answerResourceMetadata } from './resourceRoutes.js';
import type { OAuthServer } from './server.js';

export interface ExternalProviderOptions {
  /** The gateway's public origin (no trailing slash): the resource URLs. */
  readonly publicUrl: string;
  /** Exactly the `iss` of the provider's tokens. */
  readonly issuer: string;
  readonly jwksUri: string;
  /** Audiences accepted on every endpoint besides the endpoint's own URL. */
  readonly audiences: readonly string[];
  /** The scope a token must carry; empty: none. */
  readonly requiredScope: string;
  readonly roleRule?: RoleRule;
  readonly defaultRole: string;
  /** Shortest time between two JWKS fetches for an unknown key id, ms. */
  readonly jwksCooldownMs: number;
  readonly logger: Logger;
}

/** How long fetched keys are used before they are fetched again, ms. */
const JWKS_MAX_AGE_MS = 10 * 60_000;
/** Deadline of a JWKS fetch, ms. */
const JWKS_TIMEOUT_MS = 5_000;

export function createExternalProvider(options: ExternalProviderOptions): OAuthServer {
  const resource = new ResourceServer(options.publicUrl, options.requiredScope);
  const keys = createRemoteJWKSet(new URL(options.jwksUri), {
    timeoutDuration: JWKS_TIMEOUT_MS,
    cooldownDuration: options.jwksCooldownMs,
    cacheMaxAge: JWKS_MAX_AGE_MS,
  });
  const verifier = new JwtVerifier({
    issuer: options.issuer,
    keys,
    resource,
    audiences: options.audiences,
    requiredScope: options.requiredScope,
    ...(options.roleRule ? { roleRule: options.roleRule } : {}),
    defaultRole: options.defaultRole,
    logger: options.logger,
  });
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    return answerResourceMetadata(res, q === -1 ? raw : raw.slice(0, q), resource, options.issuer);
  };
  return { issuer: options.issuer, resource, verifier, handle };
}
