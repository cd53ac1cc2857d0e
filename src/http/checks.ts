/**
 * The one list of checks a request passes, each a plain function of the request context
 * that returns a rejection, HANDLED (it answered the request itself), or nothing. Route
 * classes (src/http/routes.ts) pick their checks from this list in this order:
 * drain -> host/origin -> preflight -> credentials (failed-login throttle) -> machine (Fly.io:
 * a session held by another machine is replayed there, nothing charged) -> rate limit ->
 * command -> method -> body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken, unauthorizedReason, type Principal, type TokenVerifier } from '../auth/bearer.js';
import { decodeCommandSegment, type CommandRegistry } from '../commands/registry.js';
import type { CommandSpec } from '../commands/types.js';
import { DrainingError, ForbiddenError, InsufficientScopeError, UnauthorizedError, UnknownCommandError, WardenError } from '../errors.js';
import { ADMIN_HINT } from '../auth/admin.js';
import { ResourceServer, type ChallengeError, type ResourceTarget } from '../oauth/resource.js';
import type { OAuthVerifier } from '../oauth/verifier.js';
import { readJsonBody } from './body.js';
import { clientKey, type AddressOf } from './clientAddress.js';
import { allowOrigin, answerPreflight } from './cors.js';
import { ENDPOINT_METHODS, type Route } from './routes.js';

/** What the checks learn about a request, for the checks after them and the handler. */
export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly route: Route;
  principal?: Principal;
  /** Admin routes: what the credential opens. */
  access?: 'admin' | 'client';
  spec?: CommandSpec;
  /** The parsed JSON body of a POST. */
  body?: unknown;
  /** OAuth: env values sealed into the caller's grant at consent. */
  grantEnv?: Readonly<Record<string, string>>;
}

/** A check answered the request itself (a preflight, a client that left): stop quietly. */
export const HANDLED = Symbol('handled');
export type Verdict = WardenError | typeof HANDLED | undefined;
export type Check = (ctx: RequestContext) => Verdict | Promise<Verdict>;

export interface CheckDeps {
  readonly isDraining: () => boolean;
  readonly hostCheck: (req: IncomingMessage) => WardenError | undefined;
  readonly registry: CommandRegistry;
  /** A removed entry's spec, for a request of one of its live sessions (src/whitelist/retired.ts). */
  readonly retired?: (key: string, ctx: RequestContext) => CommandSpec | undefined;
  readonly verify: TokenVerifier;
  readonly verifyAdmin: TokenVerifier | undefined;
  readonly addressOf: AddressOf;
  /** Failed logins per address: `check` throws the 429, `fail` counts one. */
  readonly authThrottle?: { check(address: string): Promise<void>; fail(address: string): Promise<void> };
  /** Told of each failed login (never given the token). */
  readonly onAuthFailure?: (req: IncomingMessage, path: string, reason: string) => void;
  /** Charges one request to a client's budget: the 429 to answer, or undefined. */
  readonly takeRequest?: (key: string) => Promise<WardenError | undefined>;
  readonly bodyLimitBytes: number;
  readonly policyActive: () => boolean;
  /** On Fly.io: the answer that replays a request for another machine's session there (src/fly/router.ts). */
  readonly sessionMachine?: (ctx: RequestContext) => WardenError | undefined;
  /** On Fly.io: extra headers of the drain's 503 (`fly-replay: elsewhere=true` for a new session). */
  readonly drainHeaders?: (ctx: RequestContext) => Readonly<Record<string, string>> | undefined;
  /**
   * OAuth, when an authorization server is configured (built in or external): access tokens
   * are tried after the static credentials, and every 401 says where the endpoint's metadata is.
   */
  readonly oauth?: { readonly verifier: OAuthVerifier; readonly resource: ResourceServer };
}

/** The resource a message route is (undefined: not an MCP endpoint, or a malformed key). */
function targetOf(route: Route): ResourceTarget | undefined {
  if (route.keySegment === undefined || route.endpoint === undefined) return undefined;
  const key = decodeCommandSegment(route.keySegment);
  return key === undefined ? undefined : { key, segment: route.keySegment, endpoint: ResourceServer.endpointOf(route.endpoint) };
}

export type Checks = ReturnType<typeof buildChecks>;

export function buildChecks(deps: CheckDeps) {
  /** The 401 for `route`: with OAuth on, its challenge names the endpoint's metadata (and the token's fault). */
  const unauthorized = (route: Route, reason: string, error?: ChallengeError): UnauthorizedError =>
    deps.oauth ? new UnauthorizedError(reason, deps.oauth.resource.challenge(route, error)) : new UnauthorizedError(reason);

  /** 401 (or 429 once the address used up its failures) for a request without valid credentials. */
  const refuse = async (ctx: RequestContext, token: string | undefined): Promise<Verdict> => {
    const address = deps.addressOf(ctx.req);
    try {
      await deps.authThrottle?.check(address);
    } catch (error) {
      return error as WardenError;
    }
    const reason = unauthorizedReason(ctx.req, token, Object.fromEntries(ctx.route.query));
    deps.onAuthFailure?.(ctx.req, ctx.route.path, reason);
    await deps.authThrottle?.fail(address).catch(() => undefined);
    return unauthorized(ctx.route, reason, token === undefined ? undefined : { error: 'invalid_token', description: reason });
  };

  /** An OAuth access token: the grant's principal and env, or the refusal RFC 6750 asks for. */
  const oauthToken = async (ctx: RequestContext, token: string, oauth: NonNullable<CheckDeps['oauth']>): Promise<Verdict> => {
    const target = targetOf(ctx.route);
    if (!target) return refuse(ctx, token);
    const outcome = await oauth.verifier.verify(token, target);
    if (!outcome.ok) {
      if (outcome.error === 'unavailable') return new WardenError('unavailable', outcome.description, { retryAfter: 1 });
      if (outcome.error === 'insufficient_scope') {
        return new InsufficientScopeError(
          outcome.description,
          oauth.resource.challenge(ctx.route, { error: 'insufficient_scope', description: outcome.description }),
        );
      }
      // A token of the trusted issuer (expired, revoked, another resource) is no guess: not
      // throttled, and an expired one is routine (the client refreshes), so not a failed login either.
      if (!outcome.authentic) return refuse(ctx, token);
      return unauthorized(ctx.route, outcome.description, { error: 'invalid_token', description: outcome.description });
    }
    ctx.principal = outcome.token.principal;
    if (outcome.token.env) ctx.grantEnv = outcome.token.env;
    return undefined;
  };

  return {
    drain: (ctx: RequestContext): Verdict => {
      if (!deps.isDraining()) return undefined;
      ctx.res.setHeader('Connection', 'close');
      return new DrainingError(deps.drainHeaders?.(ctx));
    },

    hostOrigin: (ctx: RequestContext): Verdict => {
      const refusal = deps.hostCheck(ctx.req);
      if (refusal) return refusal;
      const origin = ctx.req.headers.origin;
      if (origin !== undefined) allowOrigin(ctx.res, origin);
      return undefined;
    },

    preflight: (ctx: RequestContext): Verdict => {
      if (ctx.req.method !== 'OPTIONS') return undefined;
      const endpoint = ctx.route.endpoint;
      answerPreflight(ctx.req, ctx.res, endpoint ? ENDPOINT_METHODS[endpoint] : ['GET', 'POST']);
      return HANDLED;
    },

    /**
     * A client credential (shared secret, client token), then an OAuth access token; valid
     * ones are never throttled.
     */
    credentials: (ctx: RequestContext): Verdict | Promise<Verdict> => {
      const token = bearerToken(ctx.req);
      const principal = token === undefined ? undefined : deps.verify(token);
      if (principal) {
        ctx.principal = principal;
        return undefined;
      }
      if (token !== undefined && deps.oauth) return oauthToken(ctx, token, deps.oauth);
      return refuse(ctx, token);
    },

    /** The admin credential; a client credential passes only where `clientsAllowed`. */
    adminCredentials: (ctx: RequestContext): Verdict | Promise<Verdict> => {
      const token = bearerToken(ctx.req);
      const admin = token === undefined ? undefined : deps.verifyAdmin?.(token);
      if (admin) {
        ctx.principal = admin;
        ctx.access = 'admin';
        return undefined;
      }
      const client = token === undefined ? undefined : deps.verify(token);
      if (!client) return refuse(ctx, token);
      // /status has a summary for clients; every other admin route is the admin's alone.
      if (ctx.route.path !== '/status') return new ForbiddenError(ADMIN_HINT);
      ctx.principal = client;
      ctx.access = 'client';
      return undefined;
    },

    machine: (ctx: RequestContext): Verdict => deps.sessionMachine?.(ctx),

    rateLimit: (ctx: RequestContext): Verdict | Promise<Verdict> => {
      if (!deps.takeRequest || !ctx.principal) return undefined;
      return deps.takeRequest(clientKey(ctx.principal));
    },

    command: (ctx: RequestContext): Verdict => {
      const segment = ctx.route.keySegment;
      const key = segment === undefined ? undefined : decodeCommandSegment(segment);
      const spec = key === undefined ? undefined : (deps.registry.get(key) ?? deps.retired?.(key, ctx));
      if (!spec) return new UnknownCommandError();
      ctx.spec = spec;
      return undefined;
    },

    method: (ctx: RequestContext): Verdict => {
      const methods = ENDPOINT_METHODS[ctx.route.endpoint!];
      if (methods.includes(ctx.req.method ?? '')) return undefined;
      return new WardenError('method_not_allowed', `${ctx.req.method} is not supported on /${ctx.route.endpoint}`, { headers: { Allow: methods.join(', ') } });
    },

    body: async (ctx: RequestContext): Promise<Verdict> => {
      if (ctx.req.method !== 'POST') return undefined;
      const body = await readJsonBody(ctx.req, { limitBytes: deps.bodyLimitBytes, strict: deps.policyActive() });
      if (!body) {
        // The client went away mid-body; should the connection still be there, say so.
        return ctx.res.destroyed ? HANDLED : new WardenError('bad_request', 'the request body ended early');
      }
      ctx.body = body.value;
      return undefined;
    },
  } satisfies Record<string, Check>;
}
