/**
 * Reading an external identity provider's access token claims into the gateway's terms, with
 * no I/O: the scopes (`scope` and `scp`, a space-separated string or an array), the role
 * (a configured claim, mapped or taken as is), and the principal (one per subject of the
 * issuer, with a bounded, printable id).
 */
import { createHash } from 'node:crypto';
import type { Principal } from '../auth/bearer.js';
import { ROLE_NAME } from '../config/oauthSettings.js';

export type Claims = Readonly<Record<string, unknown>>;

/** How a role is read from a token. */
export interface RoleRule {
  /** The claim (`groups`, `roles`, a namespaced `https://…/roles`, or a dotted path such as `realm_access.roles`). */
  readonly claim: string;
  /** Claim values to roles, the first that the token carries winning; undefined: the value is the role. */
  readonly map?: readonly (readonly [value: string, role: string])[];
}

/** A token's role, or why it has none (words for a 403, never a claim's value). */
export type RoleOutcome = { readonly ok: true; readonly role: string } | { readonly ok: false; readonly reason: string };

function words(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter((s) => s.length > 0);
  if (Array.isArray(value)) return value.filter((s): s is string => typeof s === 'string' && s.length > 0);
  return [];
}

/** The scopes a token carries: `scope` (RFC 9068, space-separated) and `scp` (Okta's array, Entra's string). */
export function scopesOfClaims(claims: Claims): string[] {
  return [...new Set([...words(claims.scope), ...words(claims.scp)])];
}

/** The claim `name`: a top-level claim of that exact name, else a dotted path into objects. */
export function claimAt(claims: Claims, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  let value: unknown = claims;
  for (const part of name.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** The role `rule` reads from `claims`. */
export function roleOf(claims: Claims, rule: RoleRule): RoleOutcome {
  const raw = claimAt(claims, rule.claim);
  const values = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw.filter((v): v is string => typeof v === 'string') : [];
  if (values.length === 0) return { ok: false, reason: `the access token has no "${rule.claim}" claim naming a role` };
  if (rule.map) {
    const held = new Set(values);
    const found = rule.map.find(([value]) => held.has(value));
    return found ? { ok: true, role: found[1] } : { ok: false, reason: `no value of the access token's "${rule.claim}" claim is mapped to a role` };
  }
  if (values.length > 1) return { ok: false, reason: `the access token's "${rule.claim}" claim has several values; --oauth-role-map says which one counts` };
  return ROLE_NAME.test(values[0]!)
    ? { ok: true, role: values[0]! }
    : { ok: false, reason: `the access token's "${rule.claim}" claim is not a role name (1-64 letters, digits or _.-)` };
}

const PRINTABLE = /^[\x21-\x7e]{1,128}$/;

/** Tags of the configured issuers (one or two per process), so a token costs no hash for them. */
const tags = new Map<string, string>();

/** A short, stable tag of an issuer. */
export function issuerTag(issuer: string): string {
  let tag = tags.get(issuer);
  if (tag === undefined) tags.set(issuer, (tag = createHash('sha256').update(issuer, 'utf8').digest('hex').slice(0, 8)));
  return tag;
}

/**
 * The principal of a token: `<sub>@<issuer tag>` (a subject that is not short printable ASCII
 * is hashed), so each person is their own principal and two issuers never share one; `via`
 * names the OAuth client the token was issued to (`idp:<client_id or azp>`).
 */
export function tokenPrincipal(issuer: string, sub: string, claims: Claims, role: string): Principal {
  const subject = PRINTABLE.test(sub) ? sub : `sha256:${createHash('sha256').update(sub, 'utf8').digest('hex').slice(0, 32)}`;
  const client = [claims.client_id, claims.azp].find((v): v is string => typeof v === 'string' && PRINTABLE.test(v));
  return Object.freeze<Principal>({ kind: 'oauth', clientId: `${subject}@${issuerTag(issuer)}`, role, via: client === undefined ? 'idp' : `idp:${client}` });
}
