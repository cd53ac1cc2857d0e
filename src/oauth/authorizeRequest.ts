/**
 * Validating an authorization request (GET /authorize), in the two phases of RFC 6749
 * §4.1.2.1: while the client or its redirect URI is in doubt, errors are shown to the person
 * (an HTML page, never a redirect: the URI could be anyone's); once both are known, errors go
 * back to the client by redirect, with `state` and `iss`. What passes becomes a pending
 * request, sealed into the consent form so that nothing is stored and the form cannot be
 * altered.
 */
import { randomBytes } from 'node:crypto';
import type { ClientDirectory, OAuthClient } from './clients.js';
import { isLoopbackRedirect, redirectMatches, redirectUriProblem } from './redirects.js';
import { MCP_SCOPE, OFFLINE_SCOPE, type ResourceServer, type ResourceTarget } from './resource.js';
import { OAuthError, type OAuthErrorCode } from './respond.js';
import type { ConsentedBy } from './grants.js';

/** A validated authorization request, as sealed into the consent form. */
export interface Pending {
  /** client_id and its name. */
  readonly c: string;
  readonly cn: string;
  /** redirect_uri as given (absent when left out), and the one used. */
  readonly u?: string;
  readonly ru: string;
  /** PKCE S256 challenge. */
  readonly ch: string;
  readonly st?: string;
  /** Granted scope, space-separated. */
  readonly s: string;
  /** The resource, as the client named it. */
  readonly r: string;
  /** Whether the client gets refresh tokens. */
  readonly o: boolean;
  /** True when every redirect URI of the client is a loopback one (the page warns). */
  readonly lo: boolean;
  /** Nonce tying the CSRF token to this form. */
  readonly k: string;
  /** Set once the person proved who they are (the env page follows). */
  readonly p?: ConsentedBy;
}

/** A phase-2 failure: sent back to the client at its (now trusted) redirect URI. */
export class RedirectableError extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly redirectUri: string,
    readonly state: string | undefined,
  ) {
    super(description);
  }
}

const PKCE_CHALLENGE = /^[A-Za-z0-9_-]{43,128}$/;
const SUPPORTED_SCOPES = [MCP_SCOPE, OFFLINE_SCOPE];
/** RFC 6749 allows each parameter once. */
const SINGLE = ['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'code_challenge', 'code_challenge_method', 'resource'];

export interface ValidatedRequest {
  readonly pending: Pending;
  readonly client: OAuthClient;
  readonly target: ResourceTarget;
}

/** Phase 1 (a page) or phase 2 (a redirect); what passes both is pending consent. */
export async function validateAuthorizationRequest(query: URLSearchParams, clients: ClientDirectory, resource: ResourceServer): Promise<ValidatedRequest> {
  const clientId = query.get('client_id');
  if (!clientId) throw new OAuthError('invalid_request', 'client_id is missing');
  if (query.getAll('client_id').length > 1 || query.getAll('redirect_uri').length > 1)
    throw new OAuthError('invalid_request', 'client_id and redirect_uri may each be given once');
  const client = await clients.resolve(clientId, 400);
  const given = query.get('redirect_uri') ?? undefined;
  let redirectUri: string;
  if (given === undefined) {
    if (client.redirectUris.length !== 1) throw new OAuthError('invalid_request', 'redirect_uri is missing and the client has more than one');
    redirectUri = client.redirectUris[0]!;
  } else {
    if (!redirectMatches(client.redirectUris, given)) throw new OAuthError('invalid_request', 'redirect_uri is not one the client registered');
    redirectUri = given;
  }
  const problem = redirectUriProblem(redirectUri);
  if (problem !== undefined) throw new OAuthError('invalid_request', problem);

  // Phase 2: the client and where it gets its answer are known.
  const state = query.get('state') ?? undefined;
  const fail = (error: OAuthErrorCode, description: string): never => {
    throw new RedirectableError(error, description, redirectUri, state);
  };
  for (const name of SINGLE) if (query.getAll(name).length > 1) fail('invalid_request', `${name} may be given once`);
  if (query.get('response_type') !== 'code') fail('unsupported_response_type', 'response_type must be code');
  const challenge = query.get('code_challenge');
  if (challenge === null) fail('invalid_request', 'PKCE is required: send code_challenge with code_challenge_method=S256');
  if (query.get('code_challenge_method') !== 'S256') fail('invalid_request', 'code_challenge_method must be S256 (plain is not accepted)');
  if (!PKCE_CHALLENGE.test(challenge!)) fail('invalid_request', 'code_challenge must be 43-128 base64url characters');
  const requested = (query.get('scope') ?? MCP_SCOPE).split(' ').filter((s) => s.length > 0);
  const unknown = requested.find((s) => !SUPPORTED_SCOPES.includes(s));
  if (unknown !== undefined) fail('invalid_scope', `unknown scope; this server grants ${SUPPORTED_SCOPES.join(' and ')}`);
  const scopes = SUPPORTED_SCOPES.filter((s) => (requested.length === 0 ? s === MCP_SCOPE : requested.includes(s)));
  const named = query.get('resource');
  if (named === null) fail('invalid_target', `resource is required: name the MCP endpoint, e.g. ${resource.resourceUrl('<key>', 'mcp')}`);
  const target = resource.parse(named!);
  if (!target) fail('invalid_target', `resource must be one of this gateway's MCP endpoints, ${resource.resourceUrl('<key>', 'mcp')} or .../sse`);
  const refresh = client.grantTypes.includes('refresh_token') || scopes.includes(OFFLINE_SCOPE);
  const pending: Pending = {
    c: client.id,
    cn: client.name,
    ...(given === undefined ? {} : { u: given }),
    ru: redirectUri,
    ch: challenge!,
    ...(state === undefined ? {} : { st: state }),
    s: scopes.join(' '),
    r: named!,
    o: refresh,
    lo: client.redirectUris.every(isLoopbackRedirect),
    k: randomBytes(12).toString('base64url'),
  };
  return { pending, client, target: target! };
}
