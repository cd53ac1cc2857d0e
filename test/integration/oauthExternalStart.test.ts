/**
 * An external identity provider that cannot be used: one that does not answer stops the
 * start (discovery happens before anything is opened), with a message naming the issuer,
 * where it looked and what to set; metadata naming another issuer stops it too; keys that
 * cannot be fetched while running answer 503 with Retry-After, never a 401 that would send a
 * client to sign in again; the static credentials keep working meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer } from 'node:net';
import { EVERYTHING, MCP_ACCEPT, connectClient, initializeBody, startGateway } from '../helpers/gateway.js';
import { startIdp, type TestIdp } from '../helpers/idp.js';
import { waitForNoDescendants } from '../helpers/procs.js';

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let idp: TestIdp;
beforeAll(async () => {
  idp = await startIdp();
});
afterAll(async () => {
  await idp.close();
  await waitForNoDescendants(process.pid);
});

describe('at start', () => {
  it('fails when the provider does not answer, naming the issuer and what to set', async () => {
    const issuer = `http://127.0.0.1:${await closedPort()}/`;
    const start = startGateway(undefined, { oauthIssuer: issuer, oauthAllowLoopbackIssuer: true });
    await expect(start).rejects.toThrow(
      new RegExp(
        `metadata for ${issuer.replace(/[./]/g, '\\$&')} could not be fetched: .*could not connect \\(ECONNREFUSED\\).*Check --oauth-issuer, or set --oauth-jwks-url`,
      ),
    );
  });

  it('fails when the metadata names another issuer (a trailing slash counts)', async () => {
    await expect(startGateway(undefined, { oauthIssuer: `${idp.issuer}/`, oauthAllowLoopbackIssuer: true })).rejects.toThrow(
      /names the issuer .* not .*mind the trailing slash/,
    );
  });

  it('fails on an http provider without the test switch, and with the built-in server as well', async () => {
    await expect(startGateway(undefined, { oauthIssuer: idp.issuer })).rejects.toThrow(
      /--oauth-issuer \(WARDEN_OAUTH_ISSUER\) must be https \(http on loopback only with --oauth-allow-loopback-issuer/,
    );
    await expect(startGateway(undefined, { oauthIssuer: idp.issuer, oauthAllowLoopbackIssuer: true, oauthKey: 'k'.repeat(32) })).rejects.toThrow(
      /^WARDEN_OAUTH_KEY and --oauth-issuer \(WARDEN_OAUTH_ISSUER\) are both set/,
    );
  });
});

describe('keys that cannot be fetched, from a provider whose issuer is a bare origin', () => {
  it('answer 503 with Retry-After; the shared secret still works', async () => {
    // An issuer that is a bare origin; with --oauth-jwks-url nothing is fetched at start: the first token fetches the keys.
    const issuer = `http://127.0.0.1:${await closedPort()}`;
    const gw = await startGateway(undefined, { oauthIssuer: issuer, oauthJwksUrl: `${issuer}/keys`, oauthAllowLoopbackIssuer: true });
    try {
      // The gateway's own public origin is an allowed Origin; the provider's is not.
      for (const [origin, status] of [
        [gw.base, 401],
        [issuer, 403],
      ] as const) {
        const res = await fetch(gw.url(EVERYTHING, 'mcp'), { method: 'POST', headers: { ...MCP_ACCEPT, Origin: origin }, body: '{}' });
        await res.body?.cancel();
        expect([origin, res.status]).toEqual([origin, status]);
      }
      const token = await idp.sign({ iss: issuer, sub: 'alice', aud: gw.url(EVERYTHING, 'mcp').href, scope: 'mcp' });
      const res = await fetch(gw.url(EVERYTHING, 'mcp'), {
        method: 'POST',
        headers: { ...MCP_ACCEPT, Authorization: `Bearer ${token}` },
        body: JSON.stringify(initializeBody()),
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/identity provider's keys could not be fetched/);
      expect(gw.logs.some((line) => line.includes('could not be fetched'))).toBe(true);
      const { client } = await connectClient(gw, EVERYTHING, 'mcp');
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
      await client.close();
    } finally {
      await gw.close();
    }
  });
});
