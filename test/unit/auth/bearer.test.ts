/**
 * Bearer tokens: only a `Bearer` Authorization header counts, the shared secret is compared
 * in constant time, and refusals say what was expected. The check that uses them runs in
 * the request pipeline (test/unit/http/pipeline.test.ts).
 */
import { describe, expect, it } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import { bearerToken, sharedSecretVerifier, unauthorizedReason } from '../../../src/auth/bearer.js';

const SECRET = 'shared-secret-0123456789';

describe('bearerToken and sharedSecretVerifier', () => {
  const reqWith = (authorization: unknown) => ({ headers: { authorization } }) as unknown as IncomingMessage;

  it('extracts the token from a Bearer header only', () => {
    expect(bearerToken(reqWith('Bearer abc'))).toBe('abc');
    expect(bearerToken(reqWith('BEARER abc'))).toBe('abc');
    expect(bearerToken(reqWith('Bearer \tabc \t'))).toBe('abc');
    expect(bearerToken(reqWith('Bearer a b'))).toBeUndefined();
    expect(bearerToken(reqWith('Basic abc'))).toBeUndefined();
    expect(bearerToken(reqWith(undefined))).toBeUndefined();
  });

  it('sharedSecretVerifier uses the given role, default "default"', () => {
    expect(sharedSecretVerifier(SECRET)(SECRET)).toEqual({ kind: 'shared-secret', clientId: 'shared-secret', role: 'default' });
    expect(sharedSecretVerifier(SECRET, 'ops')(SECRET)).toEqual({ kind: 'shared-secret', clientId: 'shared-secret', role: 'ops' });
    expect(sharedSecretVerifier(SECRET)(`${SECRET}x`)).toBeUndefined();
  });

  it('unauthorizedReason says what to send', () => {
    expect(unauthorizedReason(reqWith(undefined), undefined, {})).toBe('missing bearer token: send Authorization: Bearer <token>');
    expect(unauthorizedReason(reqWith('Basic x'), undefined, {})).toBe('the Authorization header must be "Bearer <token>"');
    expect(unauthorizedReason(reqWith('Bearer x'), 'x', {})).toBe('invalid bearer token');
    expect(unauthorizedReason(reqWith(undefined), undefined, { access_token: 'x' })).toBe(
      'credentials in the query string are not accepted; send Authorization: Bearer <token>',
    );
  });
});
