/**
 * What the authorization server and the resource server refuse, each asserted on the wire:
 * the 401 challenge, a wrong or admin credential at consent (and the failed-login throttle),
 * missing and `plain` PKCE, an unregistered redirect URI (a page, never a redirect), a reused
 * code (its tokens revoked), a wrong verifier, a token for another key, an expired token, a
 * token without the `mcp` scope (403), a refresh token reused after the grace window (the
 * grant revoked), and refusals on OAuth routes written in the OAuth format.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { EVERYTHING, EVERYTHING_ENTRY, connectClient, startGateway, TEST_ADMIN_TOKEN, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import { authorizeUrl, pkcePair, postForm, rawGrant, readForm, registerClient, REDIRECT_URL, tokenRequest } from '../helpers/oauthClient.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const OAUTH_KEY = 'failures-oauth-key-0123456789abcdef-012345';
const OTHER = 'other-server';
let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway(
    { [EVERYTHING]: EVERYTHING_ENTRY, [OTHER]: EVERYTHING_ENTRY },
    { oauthKey: OAUTH_KEY, oauthTokenTtlMs: 3_000, oauthRefreshGraceMs: 0 },
  );
});

afterAll(async () => {
  await gw.close();
  await waitForNoDescendants(process.pid);
});

const resourceOf = (key: string, endpoint: 'mcp' | 'sse' = 'mcp') => `${gw.base}/${encodeURIComponent(key)}/${endpoint}`;
const prmOf = (key: string, endpoint: 'mcp' | 'sse' = 'mcp') => `${gw.base}/.well-known/oauth-protected-resource/${encodeURIComponent(key)}/${endpoint}`;

/** A POST of a ping to `key`'s endpoint with `token`: status and WWW-Authenticate. */
async function call(key: string, token?: string, endpoint: 'mcp' | 'sse' = 'mcp'): Promise<{ status: number; challenge: string | null }> {
  const res = await fetch(gw.url(key, endpoint), {
    method: endpoint === 'mcp' ? 'POST' : 'GET',
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    ...(endpoint === 'mcp' ? { body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) } : {}),
  });
  await res.body?.cancel();
  return { status: res.status, challenge: res.headers.get('www-authenticate') };
}

/** GET /authorize; for a redirect, its query. */
async function authorize(params: Record<string, string | undefined>): Promise<{ status: number; location: URLSearchParams | undefined; text: string }> {
  const res = await fetch(authorizeUrl(gw.base, params), { redirect: 'manual' });
  const location = res.headers.get('location');
  return { status: res.status, location: location ? new URL(location).searchParams : undefined, text: await res.text() };
}

describe('the resource server', () => {
  it("answers a request without credentials with a challenge naming the endpoint's metadata and scope", async () => {
    expect(await call(EVERYTHING)).toEqual({ status: 401, challenge: `Bearer realm="mcp-warden", resource_metadata="${prmOf(EVERYTHING)}", scope="mcp"` });
    const sse = await call(EVERYTHING, undefined, 'sse');
    expect(sse.challenge).toContain(`resource_metadata="${prmOf(EVERYTHING, 'sse')}"`);
  });

  it('says invalid_token for a token it does not know', async () => {
    const { status, challenge } = await call(EVERYTHING, 'not-a-real-token');
    expect(status).toBe(401);
    expect(challenge).toContain('error="invalid_token"');
    expect(challenge).toContain(`resource_metadata="${prmOf(EVERYTHING)}"`);
  });

  it('serves the metadata documents, and 404 at the root', async () => {
    const prm = await (await fetch(prmOf(EVERYTHING))).json();
    expect(prm).toEqual({
      resource: resourceOf(EVERYTHING),
      authorization_servers: [gw.base],
      scopes_supported: ['mcp'],
      bearer_methods_supported: ['header'],
      resource_name: expect.any(String),
    });
    const as = (await (await fetch(`${gw.base}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(as).toMatchObject({
      issuer: gw.base,
      code_challenge_methods_supported: ['S256'],
      client_id_metadata_document_supported: true,
      authorization_response_iss_parameter_supported: true,
    });
    expect((await fetch(`${gw.base}/.well-known/oauth-protected-resource`)).status).toBe(404);
  });

  it('keeps the shared secret working on the same endpoint', async () => {
    const { client } = await connectClient(gw, EVERYTHING, 'mcp');
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await client.close();
  });

  it('refuses a token issued for one key on another', async () => {
    const { tokens } = await rawGrant(gw.base, resourceOf(EVERYTHING), TEST_SECRET);
    expect((await call(EVERYTHING, tokens.access_token)).status).not.toBe(401);
    const foreign = await call(OTHER, tokens.access_token);
    expect(foreign.status).toBe(401);
    expect(foreign.challenge).toContain('error="invalid_token"');
    expect(foreign.challenge).toContain(`resource_metadata="${prmOf(OTHER)}"`);
  });

  it('refuses an expired token with invalid_token and where to get a new one', async () => {
    const { tokens } = await rawGrant(gw.base, resourceOf(EVERYTHING), TEST_SECRET);
    const expired = await waitFor(
      async () => {
        const answer = await call(EVERYTHING, tokens.access_token);
        return answer.status === 401 ? answer : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200, message: 'the token to expire' },
    );
    expect(expired.challenge).toContain('error="invalid_token"');
    expect(expired.challenge).toContain('error_description="the access token expired"');
    expect(expired.challenge).toContain(`resource_metadata="${prmOf(EVERYTHING)}"`);
  });

  it('answers 403 insufficient_scope to a token without the mcp scope', async () => {
    const clientId = (await registerClient(gw.base)).client_id as string;
    const { verifier, challenge } = pkcePair();
    const page = await fetch(
      authorizeUrl(gw.base, { client_id: clientId, code_challenge: challenge, resource: resourceOf(EVERYTHING), scope: 'offline_access' }),
    );
    const answer = await postForm(new URL(gw.base), await readForm(page), { decision: 'approve', credential: TEST_SECRET });
    const code = new URL(answer.headers.get('location')!).searchParams.get('code')!;
    const token = await tokenRequest(gw.base, {
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URL,
      client_id: clientId,
    });
    expect(token.body.scope).toBe('offline_access');
    const refused = await call(EVERYTHING, token.body.access_token);
    expect(refused.status).toBe(403);
    expect(refused.challenge).toContain('error="insufficient_scope"');
    expect(refused.challenge).toContain('scope="mcp"');
    expect(refused.challenge).toContain(`resource_metadata="${prmOf(EVERYTHING)}"`);
  });
});

describe('the authorization endpoint', () => {
  let clientId: string;
  beforeAll(async () => {
    clientId = (await registerClient(gw.base)).client_id as string;
  });

  it('refuses a request without PKCE, by redirect with state and iss', async () => {
    const { status, location } = await authorize({
      client_id: clientId,
      code_challenge: undefined,
      code_challenge_method: undefined,
      resource: resourceOf(EVERYTHING),
    });
    expect(status).toBe(302);
    expect(location?.get('error')).toBe('invalid_request');
    expect(location?.get('error_description')).toMatch(/PKCE/);
    expect(location?.get('state')).toBe('st-1');
    expect(location?.get('iss')).toBe(gw.base);
  });

  it('refuses plain PKCE', async () => {
    const { location } = await authorize({
      client_id: clientId,
      code_challenge: pkcePair().verifier,
      code_challenge_method: 'plain',
      resource: resourceOf(EVERYTHING),
    });
    expect(location?.get('error')).toBe('invalid_request');
    expect(location?.get('error_description')).toMatch(/S256/);
  });

  it('shows a page, never a redirect, for a redirect URI the client did not register', async () => {
    const { status, location, text } = await authorize({
      client_id: clientId,
      code_challenge: pkcePair().challenge,
      resource: resourceOf(EVERYTHING),
      redirect_uri: 'https://evil.example/callback',
    });
    expect(status).toBe(400);
    expect(location).toBeUndefined();
    expect(text).toContain('redirect_uri is not one the client registered');
  });

  it('refuses a resource that is not one of its endpoints', async () => {
    const { location } = await authorize({ client_id: clientId, code_challenge: pkcePair().challenge, resource: 'https://elsewhere.example/mcp' });
    expect(location?.get('error')).toBe('invalid_target');
  });

  it('shows the page unframed, with who asks and where the person goes back to', async () => {
    const res = await fetch(authorizeUrl(gw.base, { client_id: clientId, code_challenge: pkcePair().challenge, resource: resourceOf(EVERYTHING) }));
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const html = await res.text();
    expect(html).toContain('raw-test');
    expect(html).toContain('http://127.0.0.1:1');
    expect(html).toContain(EVERYTHING);
    expect(html).toContain('<label for="credential">');
  });

  it('refuses a wrong credential and an admin token on the page itself', async () => {
    const url = authorizeUrl(gw.base, { client_id: clientId, code_challenge: pkcePair().challenge, resource: resourceOf(EVERYTHING) });
    const form = await readForm(await fetch(url));
    const wrong = await postForm(url, form, { decision: 'approve', credential: 'wrong-credential-0123456789' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('location')).toBeNull();
    expect(await wrong.text()).toContain('That credential is not valid.');
    const admin = await postForm(url, form, { decision: 'approve', credential: TEST_ADMIN_TOKEN });
    expect(admin.status).toBe(403);
    expect(admin.headers.get('location')).toBeNull();
  });

  it('refuses a form that was altered', async () => {
    const url = authorizeUrl(gw.base, { client_id: clientId, code_challenge: pkcePair().challenge, resource: resourceOf(EVERYTHING) });
    const form = await readForm(await fetch(url));
    form.fields.set('csrf', 'x' + form.fields.get('csrf'));
    const answer = await postForm(url, form, { decision: 'approve', credential: TEST_SECRET });
    expect(answer.status).toBe(400);
    expect(answer.headers.get('location')).toBeNull();
  });
});

describe('the token endpoint', () => {
  it('refuses a code used twice, and revokes what its first use got', async () => {
    const grant = await rawGrant(gw.base, resourceOf(EVERYTHING), TEST_SECRET);
    const again = await tokenRequest(gw.base, {
      grant_type: 'authorization_code',
      code: grant.code,
      code_verifier: grant.verifier,
      redirect_uri: REDIRECT_URL,
      client_id: grant.clientId,
    });
    expect(again).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: expect.stringMatching(/already used/) } });
    expect((await call(EVERYTHING, grant.tokens.access_token)).status).toBe(401);
  });

  it('refuses a wrong code verifier', async () => {
    const clientId = (await registerClient(gw.base)).client_id as string;
    const { challenge } = pkcePair();
    const page = await fetch(authorizeUrl(gw.base, { client_id: clientId, code_challenge: challenge, resource: resourceOf(EVERYTHING) }));
    const answer = await postForm(new URL(gw.base), await readForm(page), { decision: 'approve', credential: TEST_SECRET });
    const code = new URL(answer.headers.get('location')!).searchParams.get('code')!;
    const token = await tokenRequest(gw.base, {
      grant_type: 'authorization_code',
      code,
      code_verifier: pkcePair().verifier,
      redirect_uri: REDIRECT_URL,
      client_id: clientId,
    });
    expect(token).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'code_verifier does not match the code_challenge' } });
  });

  it('revokes the whole grant when a refresh token is used again after the grace window', async () => {
    const { clientId, tokens } = await rawGrant(gw.base, resourceOf(EVERYTHING), TEST_SECRET);
    const refresh = (token: string) =>
      tokenRequest(gw.base, { grant_type: 'refresh_token', refresh_token: token, client_id: clientId, resource: resourceOf(EVERYTHING) });
    const rotated = await refresh(tokens.refresh_token!);
    expect(rotated.status).toBe(200);
    expect(rotated.body.refresh_token).not.toBe(tokens.refresh_token);
    // The grace window of this gateway is 0 ms: wait until it has passed.
    const started = Date.now();
    await waitFor(() => Date.now() > started + 5, { message: 'a few ms' });
    const reused = await refresh(tokens.refresh_token!);
    expect(reused).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: expect.stringMatching(/grant is revoked/) } });
    expect((await refresh(rotated.body.refresh_token)).body.error).toBe('invalid_grant');
    expect((await call(EVERYTHING, rotated.body.access_token)).status).toBe(401);
  });

  it('answers an unknown client with invalid_client (401), so clients register again', async () => {
    const token = await tokenRequest(gw.base, { grant_type: 'authorization_code', code: 'x', code_verifier: pkcePair().verifier, client_id: 'wdc.forged' });
    expect(token.status).toBe(401);
    expect(token.body.error).toBe('invalid_client');
  });
});

describe('refusals of the pipeline on OAuth routes', () => {
  it('are written in the OAuth format (a page on /authorize)', async () => {
    const token = await fetch(`${gw.base}/token`, {
      method: 'POST',
      headers: { Origin: 'https://evil.example', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=x',
    });
    expect(token.status).toBe(403);
    expect(await token.json()).toEqual({ error: 'access_denied', error_description: expect.stringMatching(/Origin/) });
    const page = await fetch(`${gw.base}/authorize`, {
      method: 'POST',
      headers: { Origin: 'https://evil.example', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    expect(page.status).toBe(403);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
  });
});

describe('the failed-login throttle at consent', () => {
  it('answers 429 once an address used up its failures', async () => {
    const small = await startGateway(undefined, { oauthKey: OAUTH_KEY, authFailuresPerWindow: 2 });
    try {
      const clientId = (await registerClient(small.base)).client_id as string;
      const url = authorizeUrl(small.base, { client_id: clientId, code_challenge: pkcePair().challenge, resource: `${small.base}/${EVERYTHING}/mcp` });
      const form = await readForm(await fetch(url));
      const statuses: number[] = [];
      for (let i = 0; i < 3; i += 1) statuses.push((await postForm(url, form, { decision: 'approve', credential: `wrong-${i}-0123456789abcdef` })).status);
      expect(statuses).toEqual([401, 401, 429]);
      // Even the right credential waits now: the address is throttled before it is checked.
      expect((await postForm(url, form, { decision: 'approve', credential: TEST_SECRET })).status).toBe(429);
    } finally {
      await small.close();
    }
  });
});
