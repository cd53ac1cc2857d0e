/**
 * JwtVerifier without a network: keys from a local JWKS (or a key source that fails), the
 * audience rule (either endpoint of the key, a configured audience, never another key), the
 * required scope turned off, the default role without a role claim, and a key source that
 * cannot answer reported as unavailable, not as a bad token.
 */
import { describe, expect, it } from '@jest/globals';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { createLogger } from '../../../src/logging/logger.js';
import { JwtVerifier } from '../../../src/oauth/jwtVerifier.js';
import { ResourceServer } from '../../../src/oauth/resource.js';

const ISSUER = 'https://idp.example.com/';
const resource = new ResourceServer('https://gw.example');
const target = { key: 'k', segment: 'k', endpoint: 'mcp' as const };
const { privateKey, publicKey } = await generateKeyPair('ES256');
const keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'a', alg: 'ES256' }] });
const logger = createLogger('error');

const sign = (claims: JWTPayload) =>
  new SignJWT({ iss: ISSUER, sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'a' })
    .sign(privateKey);

const verifier = (options: Partial<ConstructorParameters<typeof JwtVerifier>[0]> = {}) =>
  new JwtVerifier({ issuer: ISSUER, keys, resource, requiredScope: 'mcp', defaultRole: 'default', logger, ...options });

describe('JwtVerifier', () => {
  it('accepts either endpoint of the key, a configured audience, and nothing for another key', async () => {
    const v = verifier({ audiences: ['api://warden'] });
    for (const aud of ['https://gw.example/k/mcp', 'HTTPS://GW.EXAMPLE/k/sse/', ['x', 'api://warden']])
      expect((await v.verify(await sign({ aud, scope: 'mcp' }), target)).ok).toBe(true);
    for (const aud of ['https://gw.example/other/mcp', 'api://other', 'https://gw.example/k/mcp?x=1']) {
      expect(await v.verify(await sign({ aud, scope: 'mcp' }), target)).toMatchObject({ ok: false, error: 'invalid_token', authentic: true });
    }
  });

  it('checks no scope when the required scope is empty, and gives the default role without a role claim', async () => {
    const outcome = await verifier({ requiredScope: '' }).verify(await sign({ aud: 'https://gw.example/k/mcp' }), target);
    expect(outcome).toMatchObject({ ok: true, token: { principal: { kind: 'oauth', role: 'default', via: 'idp' }, scopes: [] } });
  });

  it('answers unavailable when the keys cannot be fetched', async () => {
    const failing: JWTVerifyGetKey = async () => {
      throw new TypeError('fetch failed');
    };
    expect(await verifier({ keys: failing }).verify(await sign({ aud: 'https://gw.example/k/mcp', scope: 'mcp' }), target)).toMatchObject({
      ok: false,
      error: 'unavailable',
    });
  });

  it('refuses what is no compact JWS without looking for a key', async () => {
    let asked = 0;
    const counting: JWTVerifyGetKey = async (header, token) => {
      asked += 1;
      return keys(header, token);
    };
    for (const token of ['secret-looking-string', 'a.b', 'a.b.c.d', 'a b.c.d'])
      expect(await verifier({ keys: counting }).verify(token, target)).toMatchObject({ ok: false, authentic: false });
    expect(asked).toBe(0);
  });
});
