/**
 * Verifies an external identity provider's JWT access tokens with `jose`: the signature
 * against the provider's JWKS (fetched when first needed, cached, fetched again when a token
 * names a key id it does not hold, at most once per cooldown), an allowlist of asymmetric
 * algorithms, the issuer exactly, `exp` (required) and `nbf` with a small clock tolerance,
 * `sub` (required), the audience (the endpoint's own URL, either endpoint of the key, by the
 * same rule as the built-in tokens; or one of the configured audiences), then the scope and
 * the role. Each subject is its own principal.
 */
import { errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Logger } from '../logging/logger.js';
import { roleOf, scopesOfClaims, tokenPrincipal, type Claims, type RoleRule } from './claims.js';
import type { ResourceServer, ResourceTarget } from './resource.js';
import type { OAuthVerifier, VerifyOutcome } from './verifier.js';

/** Asymmetric algorithms only: never `none`, never an HMAC (a public key is no secret). */
export const DEFAULT_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
/** Seconds of clock difference tolerated on `exp` and `nbf`. */
export const CLOCK_TOLERANCE_SECONDS = 30;

export interface JwtVerifierOptions {
  /** Exactly the `iss` of the provider's tokens. */
  readonly issuer: string;
  /** The provider's keys (jose `createRemoteJWKSet`). */
  readonly keys: JWTVerifyGetKey;
  readonly resource: ResourceServer;
  /** Audiences accepted on every endpoint besides the endpoint's own URL. @default none */
  readonly audiences?: readonly string[];
  /** The scope a token must carry; empty: none checked. */
  readonly requiredScope: string;
  /** How the role is read; undefined: every token has `defaultRole`. */
  readonly roleRule?: RoleRule;
  readonly defaultRole: string;
  /** @default DEFAULT_ALGORITHMS */
  readonly algorithms?: readonly string[];
  readonly logger: Logger;
}

type Refusal = Extract<VerifyOutcome, { ok: false; error: 'invalid_token' }>;

const forged = (): Refusal => ({ ok: false, error: 'invalid_token', description: 'invalid bearer token', authentic: false });
const refused = (description: string): Refusal => ({ ok: false, error: 'invalid_token', description, authentic: true });

/** The refusal for a jose error, or undefined when the error is not the token's fault. */
function refusalOf(error: unknown): Refusal | undefined {
  if (error instanceof errors.JWTExpired) return refused('the access token expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return refused('the access token is not valid yet');
    if (error.claim === 'iss') return refused('the access token was issued by another issuer');
    return refused(`the access token's "${error.claim}" claim is missing or not accepted`);
  }
  // Not signed by the provider (or not a JWT at all): a guess, counted as a failed login.
  if (
    error instanceof errors.JOSEAlgNotAllowed ||
    error instanceof errors.JWSSignatureVerificationFailed ||
    error instanceof errors.JWKSNoMatchingKey ||
    error instanceof errors.JWKSMultipleMatchingKeys ||
    error instanceof errors.JWSInvalid ||
    error instanceof errors.JWTInvalid ||
    error instanceof errors.JOSENotSupported
  ) {
    return forged();
  }
  return undefined;
}

export class JwtVerifier implements OAuthVerifier {
  private readonly audiences: ReadonlySet<string>;
  private readonly algorithms: string[];

  constructor(private readonly options: JwtVerifierOptions) {
    this.audiences = new Set(options.audiences ?? []);
    this.algorithms = [...(options.algorithms ?? DEFAULT_ALGORITHMS)];
  }

  async verify(token: string, target: ResourceTarget): Promise<VerifyOutcome> {
    // Not a compact JWS: no key lookup, no fetch.
    if (!/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)) return forged();
    let claims: Claims;
    try {
      ({ payload: claims } = await jwtVerify(token, this.options.keys, {
        issuer: this.options.issuer,
        algorithms: this.algorithms,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (error) {
      const refusal = refusalOf(error);
      if (refusal) return refusal;
      this.options.logger.warn("the identity provider's keys could not be fetched", { error: error instanceof Error ? error.message : String(error) });
      return { ok: false, error: 'unavailable', description: "the identity provider's keys could not be fetched; try again" };
    }
    if (!this.forTarget(claims.aud, target)) return refused('the access token was issued for another resource');
    const scopes = scopesOfClaims(claims);
    const required = this.options.requiredScope;
    if (required !== '' && !scopes.includes(required))
      return { ok: false, error: 'insufficient_scope', description: `the access token lacks the "${required}" scope` };
    const role = this.options.roleRule ? roleOf(claims, this.options.roleRule) : { ok: true as const, role: this.options.defaultRole };
    if (!role.ok) return { ok: false, error: 'insufficient_scope', description: role.reason };
    return { ok: true, token: { principal: tokenPrincipal(this.options.issuer, claims.sub as string, claims, role.role), scopes } };
  }

  /** The token names this key's endpoint (either one) or a configured audience. */
  private forTarget(aud: unknown, target: ResourceTarget): boolean {
    const values = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
    return values.some((value) => this.audiences.has(value) || this.options.resource.parse(value)?.key === target.key);
  }
}
