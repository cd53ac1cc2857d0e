/**
 * Two gateway instances sharing WARDEN_OAUTH_KEY, a public URL and a real redis-server are one
 * authorization server: each redeems the other's codes and refresh tokens and accepts its
 * access tokens; a revocation on one is seen by the other; two parallel refreshes with one
 * token (one per machine) get the same answer. And a key rotation: an instance with the new
 * key and WARDEN_OAUTH_KEY_PREVIOUS accepts what the old key sealed, and seals with the new.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { EVERYTHING, startGateway, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import { rawGrant, tokenRequest } from '../helpers/oauthClient.js';
import { waitForNoDescendants } from '../helpers/procs.js';
import { describeWithRedis, startRedis, type TestRedis } from '../helpers/redis.js';

const OLD_KEY = 'shared-oauth-key-old-0123456789abcdef-01234';
const NEW_KEY = 'shared-oauth-key-new-0123456789abcdef-01234';
const PUBLIC = 'https://gw.example';
const RESOURCE = `${PUBLIC}/${EVERYTHING}/mcp`;

/** Lists tools on `gw` with `token`: the count, or `refused: <reason>` for a 401. */
async function listWith(gw: TestGateway, token: string): Promise<number | string> {
  const client = new Client({ name: 'shared-test', version: '1' });
  try {
    await client.connect(new StreamableHTTPClientTransport(gw.url(EVERYTHING, 'mcp'), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    return (await client.listTools()).tools.length;
  } catch (error) {
    const text = String(error);
    return text.includes('"code":"unauthorized"') ? `refused: ${/"message":"([^"]+)"/.exec(text)?.[1]}` : text;
  } finally {
    await client.close();
  }
}

describeWithRedis('two instances with one key and one Redis', () => {
  let redis: TestRedis;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    redis = await startRedis();
    const settings = { oauthKey: OLD_KEY, redisUrl: redis.url, publicUrl: PUBLIC };
    a = await startGateway(undefined, settings);
    b = await startGateway(undefined, settings);
  });

  afterAll(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await redis?.stop();
    await waitForNoDescendants(process.pid);
  });

  it("redeem each other's codes and refresh tokens, accept each other's tokens, and see each other's revocations", async () => {
    // Consent on A, the code redeemed on B.
    const { clientId, tokens } = await rawGrant(a.base, RESOURCE, TEST_SECRET, { tokenBase: b.base });
    expect(await listWith(a, tokens.access_token)).toEqual(expect.any(Number));
    // Refreshed on A, used on B.
    const refreshed = await tokenRequest(a.base, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token!,
      client_id: clientId,
      resource: RESOURCE,
    });
    expect(refreshed.status).toBe(200);
    expect(await listWith(b, refreshed.body.access_token)).toEqual(expect.any(Number));
    // The grant listed on both; revoked on B, refused on A.
    const listed = (await (await fetch(`${a.base}/admin/oauth/grants`, { headers: a.adminHeaders() })).json()) as { grants: { grant: string }[] };
    expect(listed.grants).toHaveLength(1);
    const revoked = await fetch(`${b.base}/admin/oauth/revoke`, {
      method: 'POST',
      headers: { ...b.adminHeaders(), 'Content-Type': 'application/json' },
      body: JSON.stringify({ grant: listed.grants[0]!.grant }),
    });
    expect(await revoked.json()).toEqual({ revoked: [listed.grants[0]!.grant] });
    expect(await listWith(a, refreshed.body.access_token)).toBe('refused: the grant was revoked');
    expect((await tokenRequest(a.base, { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token, client_id: clientId })).body.error).toBe(
      'invalid_grant',
    );
  });

  it('give two parallel refreshes with one token, one on each machine, the same answer', async () => {
    const { clientId, tokens } = await rawGrant(a.base, RESOURCE, TEST_SECRET);
    const form = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: clientId, resource: RESOURCE };
    const [onA, onB] = await Promise.all([tokenRequest(a.base, form), tokenRequest(b.base, form)]);
    expect([onA.status, onB.status]).toEqual([200, 200]);
    expect(onA.body).toEqual(onB.body);
  });

  describe('a key rotation', () => {
    let c: TestGateway;
    beforeAll(async () => {
      c = await startGateway(undefined, { oauthKey: NEW_KEY, oauthKeyPrevious: OLD_KEY, redisUrl: redis.url, publicUrl: PUBLIC });
    });
    afterAll(async () => {
      await c?.close();
    });

    it('accepts tokens sealed with the previous key and seals new ones with the new key', async () => {
      const { clientId, tokens } = await rawGrant(a.base, RESOURCE, TEST_SECRET);
      expect(await listWith(c, tokens.access_token)).toEqual(expect.any(Number));
      const refreshed = await tokenRequest(c.base, {
        grant_type: 'refresh_token',
        refresh_token: tokens.refresh_token!,
        client_id: clientId,
        resource: RESOURCE,
      });
      expect(refreshed.status).toBe(200);
      expect(await listWith(c, refreshed.body.access_token)).toEqual(expect.any(Number));
      // A, which has only the old key, cannot open what the new key sealed.
      expect(await listWith(a, refreshed.body.access_token)).toBe('refused: invalid bearer token');
    });
  });
});
