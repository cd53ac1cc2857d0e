/**
 * requireBearer on a real express app (random port): only the Authorization header
 * counts, failures are throttled before any comparison, and the token is never echoed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Request } from 'express';
import { bearerToken, digest, requireBearer, sharedSecretVerifier } from '../../../src/auth/bearer.js';
import { multiTokenVerifier } from '../../../src/auth/clients.js';
import { ERROR_TABLE, WardenError } from '../../../src/errors.js';

const SECRET = 'shared-secret-0123456789';
const CLIENT_TOKEN = 'client-token-abcdefghijkl';

let server: Server;
let base: string;
const failures: { address: string; reason: string }[] = [];
const throttled = new Set<string>();
const failedAddresses: string[] = [];

beforeAll(async () => {
  const app = express();
  app.use(
    requireBearer({
      verify: multiTokenVerifier(SECRET, 'admin', [{ digest: digest(CLIENT_TOKEN), principal: { kind: 'client', clientId: 'app', role: 'user' } }]),
      addressOf: (req: Request) => String(req.headers['x-test-address'] ?? 'peer'),
      throttle: {
        check: async (address) => {
          if (throttled.has(address)) throw new WardenError('rate_limited', 'too many failed authentications', { retryAfter: 30 });
        },
        fail: async (address) => {
          failedAddresses.push(address);
        },
      },
      onFailure: (req, reason) => failures.push({ address: String(req.headers['x-test-address'] ?? 'peer'), reason }),
    }),
  );
  app.get('/who', (req, res) => {
    res.json(req.principal);
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, { headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: JSON.parse(text) as Record<string, unknown> };
}

describe('requireBearer', () => {
  it('sets the principal for the shared secret and for a client token', async () => {
    expect((await get('/who', { authorization: `Bearer ${SECRET}` })).json).toEqual({ kind: 'shared-secret', clientId: 'shared-secret', role: 'admin' });
    expect((await get('/who', { authorization: `bearer   ${CLIENT_TOKEN}  ` })).json).toEqual({ kind: 'client', clientId: 'app', role: 'user' });
  });

  it('answers 401 with WWW-Authenticate and the JSON-RPC body, never echoing the token', async () => {
    const wrong = 'wrong-token-value-xyz';
    const res = await get('/who', { authorization: `Bearer ${wrong}`, 'x-test-address': 'a1' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="mcp-warden"');
    expect(res.json).toEqual({ jsonrpc: '2.0', id: null, error: { code: ERROR_TABLE.unauthorized.rpc, message: 'invalid bearer token', data: { code: 'unauthorized' } } });
    expect(res.text).not.toContain(wrong);
    expect(failures.at(-1)).toEqual({ address: 'a1', reason: 'invalid bearer token' });
    expect(failedAddresses.at(-1)).toBe('a1');
  });

  it('a missing header says so', async () => {
    const res = await get('/who');
    expect(res.status).toBe(401);
    expect((res.json['error'] as { message: string }).message).toBe('missing bearer token: send Authorization: Bearer <token>');
  });

  it('refuses a token in the query string, even the right one', async () => {
    for (const key of ['token', 'access_token', 'API_KEY', 'Authorization']) {
      const res = await get(`/who?${key}=${encodeURIComponent(SECRET)}`);
      expect(res.status).toBe(401);
      expect((res.json['error'] as { message: string }).message).toBe('credentials in the query string are not accepted; send Authorization: Bearer <token>');
      expect(res.text).not.toContain(SECRET);
    }
  });

  it('other schemes and malformed headers are refused, saying what was expected', async () => {
    for (const authorization of [`Basic ${SECRET}`, `Bearer`, `Bearer ${SECRET} extra`, `Token ${SECRET}`, `Bearer${SECRET}`]) {
      const res = await get('/who', { authorization });
      expect(res.status).toBe(401);
      expect((res.json['error'] as { message: string }).message).toBe('the Authorization header must be "Bearer <token>"');
    }
  });

  it('a throttled address is refused for a wrong token, never for the right one', async () => {
    throttled.add('blocked');
    const res = await get('/who', { authorization: 'Bearer wrong-token-value', 'x-test-address': 'blocked' });
    expect(res.status).toBe(ERROR_TABLE.rate_limited.status);
    expect(res.headers.get('retry-after')).toBe('30');
    expect((await get('/who', { authorization: `Bearer ${SECRET}`, 'x-test-address': 'blocked' })).status).toBe(200);
    expect((await get('/who', { authorization: 'Bearer wrong-token-value', 'x-test-address': 'free' })).status).toBe(401);
  });
});

describe('bearerToken and sharedSecretVerifier', () => {
  const reqWith = (authorization: unknown) => ({ headers: { authorization } }) as unknown as Request;

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
});
