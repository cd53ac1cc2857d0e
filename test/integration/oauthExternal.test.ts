/**
 * An external identity provider instead of the built-in authorization server, against a test
 * provider on loopback (its discovery document, its JWKS, tokens signed with jose): discovery
 * by the specification's order, endpoint metadata naming the provider, no authorization
 * server routes; real clients (the v2 client pinned to 2026-07-28, the v1 client over
 * Streamable HTTP and SSE) with a provider's token; each kind of bad token refused with its
 * status and challenge; a configured audience; JWKS rotation.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SignJWT, type JWTPayload } from 'jose';
import { EVERYTHING, EVERYTHING_ENTRY, startGateway, type TestGateway } from '../helpers/gateway.js';
import { startIdp, type TestIdp } from '../helpers/idp.js';
import { waitForNoDescendants } from '../helpers/procs.js';

const OTHER = 'other-server';
let idp: TestIdp;
let gw: TestGateway;
const clients: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  idp = await startIdp();
  gw = await startGateway(
    { [EVERYTHING]: EVERYTHING_ENTRY, [OTHER]: EVERYTHING_ENTRY },
    { oauthIssuer: idp.issuer, oauthAllowLoopbackIssuer: true, oauthAudience: 'api://warden', oauthJwksCooldownMs: 0 },
  );
});
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await gw.close();
  await idp.close();
  await waitForNoDescendants(process.pid);
});

const resourceOf = (key: string, endpoint: 'mcp' | 'sse' = 'mcp') => `${gw.base}/${encodeURIComponent(key)}/${endpoint}`;
const prmOf = (key: string, endpoint: 'mcp' | 'sse' = 'mcp') => `${gw.base}/.well-known/oauth-protected-resource/${encodeURIComponent(key)}/${endpoint}`;
const now = () => Math.floor(Date.now() / 1000);
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A good token for `key`'s endpoint, with `claims` on top. */
const tokenFor = (claims: JWTPayload = {}, key = EVERYTHING) =>
  idp.sign({ sub: 'alice', aud: resourceOf(key), scope: 'openid mcp', azp: 'test-client', ...claims });

/** A POST of a ping to `key`'s endpoint with `token`: status and WWW-Authenticate. */
async function call(token: string | undefined, key = EVERYTHING): Promise<{ status: number; challenge: string | null }> {
  const res = await fetch(gw.url(key, 'mcp'), {
    method: 'POST',
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  await res.body?.cancel();
  return { status: res.status, challenge: res.headers.get('www-authenticate') };
}

/** The credentials check let the request through (a ping without a session is then refused for that). */
const passed = (answer: { status: number; challenge: string | null }) => answer.status !== 401 && answer.status !== 403 && answer.challenge === null;

async function v2Client(token: string, key = EVERYTHING): Promise<V2Client> {
  const client = new V2Client({ name: 'idp-test', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new V2Transport(gw.url(key, 'mcp'), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  clients.push(client);
  return client;
}

async function v1Client(token: string, kind: 'mcp' | 'sse'): Promise<Client> {
  const requestInit = { headers: { Authorization: `Bearer ${token}` } };
  const transport =
    kind === 'sse'
      ? new SSEClientTransport(gw.url(EVERYTHING, 'sse'), { requestInit })
      : new StreamableHTTPClientTransport(gw.url(EVERYTHING, 'mcp'), { requestInit });
  const client = new Client({ name: 'idp-test-v1', version: '1' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

describe('the provider named, and no authorization server of its own', () => {
  it("found the provider's metadata by the discovery order for an issuer with a path", () => {
    expect(idp.requests.slice(0, 3)).toEqual([
      '/.well-known/oauth-authorization-server/realms/test',
      '/.well-known/openid-configuration/realms/test',
      '/realms/test/.well-known/openid-configuration',
    ]);
  });

  it("names the provider in each endpoint's metadata", async () => {
    for (const endpoint of ['mcp', 'sse'] as const) {
      const prm = await (await fetch(prmOf(EVERYTHING, endpoint))).json();
      expect(prm).toEqual({
        resource: resourceOf(EVERYTHING, endpoint),
        authorization_servers: [idp.issuer],
        scopes_supported: ['mcp'],
        bearer_methods_supported: ['header'],
        resource_name: expect.any(String),
      });
    }
    expect((await fetch(`${gw.base}/.well-known/oauth-protected-resource`)).status).toBe(404);
  });

  it("serves none of the built-in server's routes", async () => {
    expect((await fetch(`${gw.base}/.well-known/oauth-authorization-server`)).status).toBe(404);
    expect((await fetch(`${gw.base}/authorize?client_id=x`)).status).toBe(404);
    for (const path of ['/token', '/register', '/revoke']) expect((await fetch(`${gw.base}${path}`, { method: 'POST' })).status).toBe(404);
  });

  it("answers a request without a token with the endpoint's challenge", async () => {
    expect(await call(undefined)).toEqual({ status: 401, challenge: `Bearer realm="mcp-warden", resource_metadata="${prmOf(EVERYTHING)}", scope="mcp"` });
  });
});

describe('a valid token', () => {
  it('opens the endpoint to the v2 client pinned to 2026-07-28', async () => {
    const token = await tokenFor();
    const client = await v2Client(token);
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    expect((await client.callTool({ name: 'echo', arguments: { message: 'from the idp' } })).content).toEqual([{ type: 'text', text: 'Echo: from the idp' }]);
    // The server behind the key never sees the token: its environment holds no trace of it.
    const env = JSON.stringify((await client.callTool({ name: 'get-env', arguments: {} })).content);
    expect(env).toContain('PATH');
    expect(env).not.toContain(token.split('.')[2]);
  });

  it('opens it to the v1 client, over Streamable HTTP and SSE (a token for either endpoint of the key)', async () => {
    const streamable = await v1Client(await tokenFor(), 'mcp');
    expect((await streamable.listTools()).tools.map((t) => t.name)).toContain('echo');
    const sse = await v1Client(await tokenFor({ aud: [resourceOf(EVERYTHING, 'sse'), 'https://unrelated.example/'] }), 'sse');
    expect((await sse.listTools()).tools.map((t) => t.name)).toContain('echo');
  });

  it('takes scopes from scp as well (an array, or a string)', async () => {
    expect(passed(await call(await tokenFor({ scope: undefined, scp: ['mcp', 'profile'] })))).toBe(true);
    expect(passed(await call(await tokenFor({ scope: undefined, scp: 'profile mcp' })))).toBe(true);
  });

  it('with the configured audience, opens every key', async () => {
    const token = await tokenFor({ aud: 'api://warden' });
    await v2Client(token, OTHER);
    expect(passed(await call(token))).toBe(true);
  });
});

describe('refused tokens', () => {
  type Case = [name: string, make: () => Promise<string>, status: number, error: string, description: RegExp | undefined];
  const cases: Case[] = [
    ['another issuer', () => tokenFor({ iss: 'http://127.0.0.1:1/realms/other' }), 401, 'invalid_token', /another issuer/],
    ["another key's endpoint", () => tokenFor({ aud: resourceOf(OTHER) }), 401, 'invalid_token', /another resource/],
    ['another gateway', () => tokenFor({ aud: `https://elsewhere.example/${EVERYTHING}/mcp` }), 401, 'invalid_token', /another resource/],
    ['no audience', () => tokenFor({ aud: undefined }), 401, 'invalid_token', /another resource/],
    ['expired', () => tokenFor({ iat: now() - 900, exp: now() - 120 }), 401, 'invalid_token', /expired/],
    ['without exp', () => tokenFor({ exp: undefined }), 401, 'invalid_token', /exp claim/],
    ['without sub', () => tokenFor({ sub: undefined }), 401, 'invalid_token', /sub claim/],
    ['not valid yet', () => tokenFor({ nbf: now() + 120 }), 401, 'invalid_token', /not valid yet/],
    [
      'alg none',
      async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: idp.issuer, sub: 'alice', aud: resourceOf(EVERYTHING), scope: 'mcp', exp: now() + 300 })}.`,
      401,
      'invalid_token',
      undefined,
    ],
    [
      'HS256 with the public key as its secret',
      async () =>
        new SignJWT({ iss: idp.issuer, sub: 'alice', aud: resourceOf(EVERYTHING), scope: 'mcp', exp: now() + 300 })
          .setProtectedHeader({ alg: 'HS256', kid: 'key-1' })
          .sign(new TextEncoder().encode(await idp.publicPem())),
      401,
      'invalid_token',
      undefined,
    ],
    [
      'signed by another key under the published kid',
      async () => idp.sign({ sub: 'alice', aud: resourceOf(EVERYTHING), scope: 'mcp' }, { key: await idp.newKey('key-1') }),
      401,
      'invalid_token',
      undefined,
    ],
    [
      'signed by an unpublished key',
      async () => idp.sign({ sub: 'alice', aud: resourceOf(EVERYTHING), scope: 'mcp' }, { key: await idp.newKey('stranger') }),
      401,
      'invalid_token',
      undefined,
    ],
    ['without the mcp scope', () => tokenFor({ scope: 'openid profile' }), 403, 'insufficient_scope', /lacks the mcp scope/],
    ['with no scope at all', () => tokenFor({ scope: undefined }), 403, 'insufficient_scope', /lacks the mcp scope/],
  ];

  it.each(cases)('%s', async (_name, make, status, error, description) => {
    const answer = await call(await make());
    expect(answer.status).toBe(status);
    expect(answer.challenge).toContain(`error="${error}"`);
    expect(answer.challenge).toContain(`resource_metadata="${prmOf(EVERYTHING)}"`);
    if (description) expect(answer.challenge).toMatch(new RegExp(`error_description="[^"]*${description.source}`));
  });

  it('never writes a token into the log', async () => {
    const token = await tokenFor({ iss: 'http://127.0.0.1:1/realms/other' });
    await call(token);
    expect(gw.logs.some((line) => line.includes(token.split('.')[2]!))).toBe(false);
  });
});

describe("the provider's keys", () => {
  it('are fetched again when a token names a key id not yet known (rotation)', async () => {
    const next = await idp.newKey('key-2', 'ES256');
    const token = await idp.sign({ sub: 'alice', aud: resourceOf(EVERYTHING), scope: 'mcp' }, { key: next });
    expect((await call(token)).status).toBe(401);
    idp.publish(next);
    const fetches = idp.jwksFetches();
    const client = await v2Client(token);
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    expect(idp.jwksFetches()).toBeGreaterThan(fetches);
  });
});
