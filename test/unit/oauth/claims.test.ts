/**
 * An identity provider's claims in the gateway's terms: scopes from `scope` and `scp` in
 * either shape, the role claim (top-level name first, then a dotted path), mapped in the
 * configured order or taken as is, and the refusals when there is no role; the principal
 * per subject and issuer, bounded and printable.
 */
import { describe, expect, it } from '@jest/globals';
import { claimAt, issuerTag, roleOf, scopesOfClaims, tokenPrincipal } from '../../../src/oauth/claims.js';

describe('scopes', () => {
  it.each<[Record<string, unknown>, string[]]>([
    [{ scope: 'openid mcp' }, ['openid', 'mcp']],
    [{ scp: ['mcp', 'profile'] }, ['mcp', 'profile']],
    [{ scp: 'mcp  profile' }, ['mcp', 'profile']],
    [{ scope: 'mcp', scp: ['mcp', 'x'] }, ['mcp', 'x']],
    [{ scope: 42, scp: [1, 'mcp'] }, ['mcp']],
    [{}, []],
  ])('%j -> %j', (claims, scopes) => {
    expect(scopesOfClaims(claims)).toEqual(scopes);
  });
});

describe('the role claim', () => {
  const map = [
    ['mcp-admins', 'admin'],
    ['mcp-users', 'user'],
  ] as const;

  it('reads a top-level claim of the exact name before a dotted path', () => {
    expect(claimAt({ 'https://example.com/roles': ['a'] }, 'https://example.com/roles')).toEqual(['a']);
    expect(claimAt({ realm_access: { roles: ['r'] } }, 'realm_access.roles')).toEqual(['r']);
    expect(claimAt({ 'a.b': 'top', a: { b: 'nested' } }, 'a.b')).toBe('top');
    expect(claimAt({ a: ['x'] }, 'a.0')).toBeUndefined();
    expect(claimAt({}, 'constructor')).toBeUndefined();
  });

  it('maps values in the configured order, whatever order the token lists them in', () => {
    expect(roleOf({ groups: ['mcp-users', 'mcp-admins'] }, { claim: 'groups', map })).toEqual({ ok: true, role: 'admin' });
    expect(roleOf({ groups: 'mcp-users' }, { claim: 'groups', map })).toEqual({ ok: true, role: 'user' });
  });

  it('gives no role when nothing maps, or the claim is absent or not strings', () => {
    for (const claims of [{ groups: ['staff'] }, {}, { groups: 7 }, { groups: [{ name: 'mcp-users' }] }]) {
      expect(roleOf(claims, { claim: 'groups', map }).ok).toBe(false);
    }
  });

  it('without a map, takes one value that is a role name as the role', () => {
    expect(roleOf({ role: 'reader' }, { claim: 'role' })).toEqual({ ok: true, role: 'reader' });
    expect(roleOf({ roles: ['reader'] }, { claim: 'roles' })).toEqual({ ok: true, role: 'reader' });
    expect(roleOf({ roles: ['reader', 'writer'] }, { claim: 'roles' })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/several values; --oauth-role-map/),
    });
    expect(roleOf({ role: 'not a role' }, { claim: 'role' })).toMatchObject({ ok: false, reason: expect.stringMatching(/not a role name/) });
  });

  it('never quotes a claim value in its reason', () => {
    const outcome = roleOf({ groups: ['secret-group-name'] }, { claim: 'groups', map });
    expect(outcome.ok).toBe(false);
    expect(JSON.stringify(outcome)).not.toContain('secret-group-name');
  });
});

describe('the principal', () => {
  const ISSUER = 'https://idp.example.com/';

  it('is one per subject and issuer, naming the OAuth client', () => {
    const alice = tokenPrincipal(ISSUER, 'auth0|alice', { azp: 'app-1' }, 'user');
    expect(alice).toEqual({ kind: 'oauth', clientId: `auth0|alice@${issuerTag(ISSUER)}`, role: 'user', via: 'idp:app-1' });
    expect(tokenPrincipal('https://other.example/', 'auth0|alice', {}, 'user').clientId).not.toBe(alice.clientId);
    expect(tokenPrincipal(ISSUER, 'bob', { client_id: 'c', azp: 'a' }, 'user').via).toBe('idp:c');
    expect(tokenPrincipal(ISSUER, 'bob', {}, 'user').via).toBe('idp');
  });

  it('hashes a subject that is long or not printable ASCII, and drops such a client id', () => {
    for (const sub of ['x'.repeat(500), 'ü-user', 'a b', 'line\nbreak']) {
      const principal = tokenPrincipal(ISSUER, sub, { azp: 'y'.repeat(300) }, 'user');
      expect(principal.clientId).toMatch(/^sha256:[0-9a-f]{32}@[0-9a-f]{8}$/);
      expect(principal.via).toBe('idp');
    }
    expect(tokenPrincipal(ISSUER, 'ü-user', {}, 'r').clientId).not.toBe(tokenPrincipal(ISSUER, 'ü-usér', {}, 'r').clientId);
  });
});
