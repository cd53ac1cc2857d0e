/**
 * The OAuth part of the settings: the built-in authorization server (WARDEN_OAUTH_KEY) or an
 * external identity provider (--oauth-issuer), never both; what each needs besides; and the
 * checks across settings that zod's per-field schema cannot make.
 */
import { z } from 'zod';
import { isLoopbackAddress } from '../http/hostGuard.js';

/** A role name, as the policy file and the clients file spell one. */
export const ROLE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

const positiveInt = z.coerce.number().int().positive();

/** true/false from a flag or an environment variable ('true', 'false', '1', '0'). */
export const flag = z.union([z.boolean(), z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')]);

/** An identity provider URL: absolute http(s), no credentials, no fragment; kept exactly as written. */
const idpUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a URL such as https://idp.example.com/' });
    return;
  }
  const problem =
    url.protocol !== 'https:' && url.protocol !== 'http:'
      ? 'must be https'
      : url.username !== '' || url.password !== ''
        ? 'must not carry a user name or password'
        : url.hash !== '' || value.includes('#')
          ? 'must not have a fragment'
          : undefined;
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

/** `claimValue=role,...`: the claim values in the order given (the first that matches wins). */
const roleMap = z.string().transform((text, ctx) => {
  const pairs: [string, string][] = [];
  for (const entry of text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)) {
    const at = entry.lastIndexOf('=');
    const value = at === -1 ? '' : entry.slice(0, at).trim();
    const role = at === -1 ? '' : entry.slice(at + 1).trim();
    if (value === '' || !ROLE_NAME.test(role)) {
      ctx.addIssue({ code: 'custom', message: `"${entry.slice(0, 80)}" is not claimValue=role (a role is 1-64 letters, digits or _.-)` });
      return z.NEVER;
    }
    pairs.push([value, role]);
  }
  if (pairs.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'must list at least one claimValue=role' });
    return z.NEVER;
  }
  return pairs;
});

/** A scope token, or empty (or `none`) for no scope check. */
const requiredScope = z
  .string()
  .regex(/^[\x21\x23-\x5b\x5d-\x7e]*$/, 'must be one scope (no spaces, quotes or backslashes), or empty for no check')
  .transform((s) => (s === 'none' ? '' : s));

export const oauthSettingsShape = {
  /** Turns the built-in OAuth authorization server on (environment only). */
  oauthKey: z.string().min(32, 'must be at least 32 characters').optional(),
  /** The key before a rotation: still opens what it sealed, never seals (environment only). */
  oauthKeyPrevious: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Lifetime of an OAuth access token, ms. @default 600000 */
  oauthTokenTtlMs: z.coerce.number().int().min(1_000).max(86_400_000).default(600_000),
  /** Lets client metadata documents live on loopback addresses (tests only). @default false */
  oauthAllowLoopbackMetadata: flag.default(false),
  /** Dynamic client registrations per source address per hour. @default 60 */
  oauthRegisterRate: positiveInt.default(60),
  /** How long a just-rotated refresh token still gets the same answer, ms (no flag). @default 30000 */
  oauthRefreshGraceMs: z.coerce.number().int().min(0).max(300_000).default(30_000),
  /** A grant not refreshed for this long ends, ms (no flag). @default 2592000000 (30 days) */
  oauthGrantTtlMs: positiveInt.default(30 * 86_400_000),

  /**
   * An external identity provider's issuer, exactly as its tokens' `iss` says it: the
   * gateway then accepts its JWT access tokens and runs no authorization server of its own.
   */
  oauthIssuer: idpUrl.optional(),
  /** The provider's JWKS; unset: the `jwks_uri` of its metadata, discovered at start. */
  oauthJwksUrl: idpUrl.optional(),
  /** Audiences accepted on every endpoint besides the endpoint's own URL (providers that cannot mint one per resource). */
  oauthAudience: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p.length > 0),
    )
    .optional(),
  /** The claim whose value(s) name the caller's role; unset: every token has --default-role. */
  oauthRoleClaim: z.string().min(1).max(200).optional(),
  /** Claim values to roles; unset: the claim's value is the role. */
  oauthRoleMap: roleMap.optional(),
  /** The scope a token must carry (in `scope` or `scp`); empty: no scope check. @default mcp */
  oauthRequiredScope: requiredScope.default('mcp'),
  /** Lets the issuer and its JWKS be plain http on a loopback host (tests only). @default false */
  oauthAllowLoopbackIssuer: flag.default(false),
  /** The shortest time between two JWKS fetches for an unknown key id, ms (no flag). @default 30000 */
  oauthJwksCooldownMs: z.coerce.number().int().min(0).max(3_600_000).default(30_000),
};

/** What the cross-settings checks read: the raw input and where each value came from. */
type Input = Record<string, unknown>;

const EXTERNAL_ONLY = ['oauthJwksUrl', 'oauthAudience', 'oauthRoleClaim', 'oauthRoleMap'] as const;

/**
 * The checks across OAuth settings, before the schema runs. `name(key)` is how the user
 * wrote the setting (`--oauth-issuer` or `WARDEN_OAUTH_ISSUER`).
 * @returns the problem, or undefined
 */
export function oauthInputProblem(input: Input, name: (key: string) => string, onFly: boolean): string | undefined {
  if (input.oauthKey !== undefined && input.oauthIssuer !== undefined) {
    return `WARDEN_OAUTH_KEY and ${name('oauthIssuer')} are both set: the built-in authorization server and an external identity provider exclude each other; unset one`;
  }
  if (input.oauthKey !== undefined && onFly && input.redisUrl === undefined) {
    // Fly starts two machines; refresh tokens and revocations kept in one machine's memory
    // would be unknown to the other.
    return (
      'WARDEN_OAUTH_KEY is set but REDIS_URL is not: on Fly.io every machine must see the same refresh tokens and revocations. ' +
      'Attach a Redis (fly redis create, then fly secrets set REDIS_URL=...), or unset WARDEN_OAUTH_KEY'
    );
  }
  if (input.oauthKeyPrevious !== undefined && input.oauthKey === undefined) {
    return 'WARDEN_OAUTH_KEY_PREVIOUS is set without WARDEN_OAUTH_KEY: the previous key only opens what it sealed; set the new key too';
  }
  for (const key of EXTERNAL_ONLY) {
    if (input[key] !== undefined && input.oauthIssuer === undefined)
      return `${name(key)} is set without --oauth-issuer (WARDEN_OAUTH_ISSUER): it configures an external identity provider`;
  }
  if (input.oauthRoleMap !== undefined && input.oauthRoleClaim === undefined) {
    return `${name('oauthRoleMap')} is set without --oauth-role-claim (WARDEN_OAUTH_ROLE_CLAIM): say which claim carries the values it maps`;
  }
  return undefined;
}

/** Whether `url` may be fetched: https, or http on a loopback host when `allowLoopbackHttp`. */
export function idpUrlProblem(url: string, allowLoopbackHttp: boolean): string | undefined {
  const parsed = new URL(url);
  if (parsed.protocol === 'https:') return undefined;
  const loopback = isLoopbackAddress(parsed.hostname);
  if (parsed.protocol === 'http:' && loopback && allowLoopbackHttp) return undefined;
  return loopback ? 'must be https (http on loopback only with --oauth-allow-loopback-issuer, for tests)' : 'must be https';
}
