/**
 * OAuth clients: metadata documents are fetched only from public addresses (loopback refused
 * without the test switch, private addresses always, the connection never even tried), never
 * past 5 KB and never through a redirect; dynamic registration refuses bad redirect URIs;
 * confidential clients authenticate with Basic or in the body; /revoke ends a grant.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { EVERYTHING, startGateway, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import {
  authorizeUrl,
  consent,
  pkcePair,
  rawGrant,
  REDIRECT_URL,
  registerClient,
  selfSignedCert,
  startMetadataServer,
  tokenRequest,
  type MetadataServer,
} from '../helpers/oauthClient.js';
import { waitForNoDescendants } from '../helpers/procs.js';

const OAUTH_KEY = 'clients-oauth-key-0123456789abcdef-0123456';
let strict: TestGateway;
let loopback: TestGateway;
let docs: MetadataServer;

beforeAll(async () => {
  const tls = await selfSignedCert();
  docs = await startMetadataServer(tls);
  strict = await startGateway(undefined, { oauthKey: OAUTH_KEY }, { oauthMetadataCa: tls.cert });
  loopback = await startGateway(undefined, { oauthKey: OAUTH_KEY, oauthAllowLoopbackMetadata: true }, { oauthMetadataCa: tls.cert });
});

afterAll(async () => {
  await Promise.all([strict.close(), loopback.close()]);
  await docs.close();
  await waitForNoDescendants(process.pid);
});

function documentFor(clientId: string, extra: Record<string, unknown> = {}) {
  return { client_id: clientId, client_name: 'Doc Client', redirect_uris: [REDIRECT_URL], token_endpoint_auth_method: 'none', ...extra };
}

/** GET /authorize for `clientId`: status, the page's text, and whether it redirected. */
async function authorizePage(gw: TestGateway, clientId: string) {
  const res = await fetch(authorizeUrl(gw.base, { client_id: clientId, code_challenge: pkcePair().challenge, resource: `${gw.base}/${EVERYTHING}/mcp` }), {
    redirect: 'manual',
  });
  return { status: res.status, text: await res.text(), location: res.headers.get('location') };
}

describe('client metadata documents', () => {
  it('are refused on a loopback address without --oauth-allow-loopback-metadata, before any connection', async () => {
    const path = '/loopback.json';
    docs.serve(path, documentFor(docs.url(path)));
    const { status, text, location } = await authorizePage(strict, docs.url(path));
    expect(status).toBe(400);
    expect(location).toBeNull();
    expect(text).toContain('resolves to a loopback address');
    expect(docs.hits(path)).toBe(0);
  });

  it('are refused on a private address whatever the settings', async () => {
    for (const gw of [strict, loopback]) {
      const { status, text } = await authorizePage(gw, 'https://10.20.30.40/client.json');
      expect(status).toBe(400);
      expect(text).toContain('a private address');
    }
    expect((await authorizePage(loopback, 'https://[fdaa::3]/client.json')).text).toContain('Fly.io private address');
    expect((await authorizePage(loopback, 'https://169.254.169.254/latest/meta-data')).text).toContain('link-local');
  });

  it('are accepted on loopback with the switch, and shown with their host', async () => {
    const path = '/ok.json';
    docs.serve(path, documentFor(docs.url(path)));
    const { status, text } = await authorizePage(loopback, docs.url(path));
    expect(status).toBe(200);
    expect(text).toContain('Doc Client');
    expect(text).toContain(new URL(docs.url(path)).host);
  });

  it('are refused over 5 KB', async () => {
    const path = '/big.json';
    docs.serve(path, documentFor(docs.url(path), { padding: 'x'.repeat(6_000) }));
    const { status, text } = await authorizePage(loopback, docs.url(path));
    expect(status).toBe(400);
    expect(text).toContain('larger than 5120 bytes');
  });

  it('are refused behind a redirect, which is not followed', async () => {
    const target = '/target.json';
    docs.serve(target, documentFor(docs.url('/moved.json')));
    docs.serve('/moved.json', '', { Location: docs.url(target) }, 302);
    const res = await authorizePage(loopback, docs.url('/moved.json'));
    expect(res.status).toBe(400);
    expect(res.text).toContain('redirect (HTTP 302), which is not followed');
    expect(docs.hits(target)).toBe(0);
  });

  it('are refused when their client_id is not their URL, or they claim a secret', async () => {
    docs.serve('/mismatch.json', documentFor('https://elsewhere.example/client.json'));
    expect((await authorizePage(loopback, docs.url('/mismatch.json'))).text).toContain('another client_id');
    docs.serve('/secret.json', documentFor(docs.url('/secret.json'), { client_secret: 'shh' }));
    expect((await authorizePage(loopback, docs.url('/secret.json'))).text).toContain('must not contain a client_secret');
  });
});

describe('dynamic client registration', () => {
  it.each([
    [['http://app.example/callback'], 'invalid_redirect_uri'],
    [['javascript:alert(1)'], 'invalid_redirect_uri'],
    [['https://app.example/cb#frag'], 'invalid_redirect_uri'],
    [[], 'invalid_redirect_uri'],
  ])('refuses redirect_uris %j', async (uris, error) => {
    const res = await fetch(`${strict.base}/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ redirect_uris: uris }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe(error);
  });

  it('echoes redirect_uris and gives a confidential client a secret that works with Basic and in the body', async () => {
    for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
      const registered = await registerClient(strict.base, { token_endpoint_auth_method: method });
      expect(registered.redirect_uris).toEqual([REDIRECT_URL]);
      expect(registered.client_secret).toEqual(expect.any(String));
      const { verifier, challenge } = pkcePair();
      const resource = `${strict.base}/${EVERYTHING}/mcp`;
      const code = (
        await consent(authorizeUrl(strict.base, { client_id: registered.client_id, code_challenge: challenge, resource }), { credential: TEST_SECRET })
      ).get('code')!;
      const form = { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT_URL, resource };
      // A wrong secret first: 401 invalid_client.
      const wrong = await fetch(`${strict.base}/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...form, client_id: registered.client_id, client_secret: 'wrong' }),
      });
      expect(wrong.status).toBe(401);
      const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded' };
      const body = new URLSearchParams(form);
      if (method === 'client_secret_basic')
        headers.Authorization = `Basic ${Buffer.from(`${registered.client_id}:${registered.client_secret}`).toString('base64')}`;
      else {
        body.set('client_id', registered.client_id);
        body.set('client_secret', registered.client_secret);
      }
      const ok = await fetch(`${strict.base}/token`, { method: 'POST', headers, body });
      expect([method, ok.status]).toEqual([method, 200]);
    }
  });
});

describe('/revoke', () => {
  it('ends the grant of a refresh token (200 whatever it was), only for the client it was issued to', async () => {
    const resource = `${strict.base}/${EVERYTHING}/mcp`;
    const { clientId, tokens } = await rawGrant(strict.base, resource, TEST_SECRET);
    const other = (await registerClient(strict.base)).client_id as string;
    const revoke = (client: string, token: string) =>
      fetch(`${strict.base}/revoke`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token, client_id: client }),
      });
    expect((await revoke(other, tokens.refresh_token!)).status).toBe(200);
    expect((await tokenRequest(strict.base, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: clientId })).status).toBe(200);
    const { tokens: second } = await rawGrant(strict.base, resource, TEST_SECRET, { clientId });
    expect((await revoke(clientId, second.refresh_token!)).status).toBe(200);
    expect((await revoke(clientId, 'never-issued')).status).toBe(200);
    expect((await tokenRequest(strict.base, { grant_type: 'refresh_token', refresh_token: second.refresh_token!, client_id: clientId })).body.error).toBe(
      'invalid_grant',
    );
  });
});
