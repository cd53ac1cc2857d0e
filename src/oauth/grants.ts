/**
 * What a grant carries, and the sealed forms it travels in: the authorization code (60 s,
 * single use), the access token (short-lived, self-contained: verifying it needs only the
 * key and a revocation check) and the refresh token (its generation rotates on every use).
 * Each is sealed whole (src/oauth/seal.ts), so the env values a person entered at consent
 * stay encrypted inside and are readable only by a machine holding the key.
 */
import type { Principal } from '../auth/bearer.js';
import type { Opened, Sealer } from './seal.js';

/** The credential entered at consent: its kind, id and role (never the credential itself). */
export interface ConsentedBy {
  readonly kind: 'shared-secret' | 'client';
  readonly id: string;
  readonly role: string;
}

/** Everything a grant is: sealed into its code, access and refresh tokens. */
export interface GrantClaims {
  /** Grant id. */
  readonly g: string;
  /** OAuth client_id. */
  readonly c: string;
  /** The resource (audience) it was issued for, as the client named it. */
  readonly r: string;
  /** Granted scope, space-separated. */
  readonly s: string;
  readonly p: ConsentedBy;
  /** Env values entered at consent, name -> value; absent when none. */
  readonly e?: Readonly<Record<string, string>>;
  /** Whether the client gets refresh tokens. */
  readonly o: boolean;
}

export interface CodeClaims extends GrantClaims {
  /** The redirect_uri given at /authorize (absent when it was left out). */
  readonly u?: string;
  /** PKCE S256 code challenge. */
  readonly ch: string;
  /** The client's name, for the admin's list. */
  readonly cn: string;
}

export interface RefreshClaims extends GrantClaims {
  /** Refresh generation: only the current one rotates. */
  readonly n: number;
}

/** How long an authorization code lives. */
export const CODE_TTL_MS = 60_000;

/** `shared-secret` or `client:<id>`: how audit records and the admin name the credential. */
export function viaOf(by: ConsentedBy): string {
  return by.kind === 'shared-secret' ? 'shared-secret' : `client:${by.id}`;
}

/** The principal an access token stands for: the grant itself, with the consenting credential's role. */
export function grantPrincipal(claims: GrantClaims): Principal {
  return Object.freeze<Principal>({ kind: 'oauth', clientId: claims.g, role: claims.p.role, via: viaOf(claims.p) });
}

/** The scope set of a space-separated scope string. */
export function scopesOf(scope: string): string[] {
  return scope.split(' ').filter((s) => s.length > 0);
}

/** Only the grant's fields, whatever else `claims` holds. */
export function grantOnly(claims: GrantClaims): GrantClaims {
  return { g: claims.g, c: claims.c, r: claims.r, s: claims.s, p: claims.p, ...(claims.e ? { e: claims.e } : {}), o: claims.o };
}

export class GrantSeals {
  constructor(
    private readonly sealer: Sealer,
    readonly accessTtlMs: number,
    readonly refreshTtlMs: number,
  ) {}

  code(claims: CodeClaims): string {
    return this.sealer.seal('code', claims, CODE_TTL_MS);
  }

  openCode(text: string): Opened<CodeClaims> {
    return this.sealer.open<CodeClaims>('code', text);
  }

  access(claims: GrantClaims): string {
    return this.sealer.seal('access', grantOnly(claims), this.accessTtlMs);
  }

  openAccess(text: string): Opened<GrantClaims> {
    return this.sealer.open<GrantClaims>('access', text);
  }

  refresh(claims: GrantClaims, generation: number): string {
    return this.sealer.seal('refresh', { ...grantOnly(claims), n: generation }, this.refreshTtlMs);
  }

  openRefresh(text: string): Opened<RefreshClaims> {
    return this.sealer.open<RefreshClaims>('refresh', text);
  }
}
