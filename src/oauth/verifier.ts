/**
 * The seam between the request pipeline and whoever issues access tokens. The credentials
 * check (src/http/checks.ts) tries the static credentials first, then one OAuthVerifier:
 * the built-in authorization server's sealed tokens (below), or an external identity
 * provider's JWTs (src/oauth/jwtVerifier.ts).
 */
import type { Principal } from '../auth/bearer.js';
import { grantPrincipal, scopesOf, type GrantSeals } from './grants.js';
import { MCP_SCOPE, type ResourceServer, type ResourceTarget } from './resource.js';
import type { GrantStore } from './store.js';

/** A token that passed: who it stands for, what it may do, and the env its grant carries. */
export interface VerifiedToken {
  readonly principal: Principal;
  readonly scopes: readonly string[];
  /** Env values sealed into the grant at consent; treated like ENV_* headers. */
  readonly env?: Readonly<Record<string, string>>;
}

export type VerifyOutcome =
  | { readonly ok: true; readonly token: VerifiedToken }
  /**
   * `authentic`: the token was issued by the authorization server trusted here (expired,
   * revoked, or for another resource), so refusing it is no failed login and the failure
   * throttle does not count it.
   */
  | { readonly ok: false; readonly error: 'invalid_token'; readonly description: string; readonly authentic: boolean }
  /** A valid token that does not open this endpoint: a scope it lacks, no role (403). */
  | { readonly ok: false; readonly error: 'insufficient_scope'; readonly description: string }
  /** The token could not be checked now (the store did not answer): 503, try again. */
  | { readonly ok: false; readonly error: 'unavailable'; readonly description: string };

export interface OAuthVerifier {
  /** Checks `token` for a request to `target` (audience, expiry, revocation). */
  verify(token: string, target: ResourceTarget): Promise<VerifyOutcome>;
}

export interface SealedTokenVerifierDeps {
  readonly seals: GrantSeals;
  readonly store: GrantStore;
  readonly resource: ResourceServer;
  /** A grant's last use is written at most this often per machine, ms. @default 60000 */
  readonly touchEveryMs?: number;
  readonly now?: () => number;
}

/** Verifies the built-in authorization server's access tokens. */
export class SealedTokenVerifier implements OAuthVerifier {
  private readonly touched = new Map<string, number>();

  constructor(private readonly deps: SealedTokenVerifierDeps) {}

  async verify(token: string, target: ResourceTarget): Promise<VerifyOutcome> {
    const opened = this.deps.seals.openAccess(token);
    if (!opened.ok) {
      return opened.reason === 'expired'
        ? { ok: false, error: 'invalid_token', description: 'the access token expired', authentic: true }
        : { ok: false, error: 'invalid_token', description: 'invalid bearer token', authentic: false };
    }
    const claims = opened.value;
    // Audience: issued for this gateway and this key (either of its endpoints).
    const audience = this.deps.resource.parse(claims.r);
    if (!audience || audience.key !== target.key) {
      return { ok: false, error: 'invalid_token', description: 'the access token was issued for another resource', authentic: true };
    }
    let active: boolean;
    try {
      active = await this.deps.store.active(claims.g);
    } catch {
      return { ok: false, error: 'unavailable', description: 'the grant store did not answer; try again' };
    }
    if (!active) return { ok: false, error: 'invalid_token', description: 'the grant was revoked', authentic: true };
    this.noteUse(claims.g);
    const scopes = scopesOf(claims.s);
    if (!scopes.includes(MCP_SCOPE)) return { ok: false, error: 'insufficient_scope', description: `the access token lacks the "${MCP_SCOPE}" scope` };
    return { ok: true, token: { principal: grantPrincipal(claims), scopes, ...(claims.e ? { env: claims.e } : {}) } };
  }

  /** Writes the grant's last use, at most once a minute per grant (a store failure is no refusal). */
  private noteUse(id: string): void {
    const now = (this.deps.now ?? Date.now)();
    const last = this.touched.get(id);
    if (last !== undefined && now - last < (this.deps.touchEveryMs ?? 60_000)) return;
    if (this.touched.size >= 10_000) this.touched.clear();
    this.touched.set(id, now);
    this.deps.store.touch(id, now).catch(() => undefined);
  }
}
