/**
 * OAuth end to end with the v2 SDK client's own OAuth support against the built-in
 * authorization server, over Streamable HTTP, in the default (legacy) negotiation and pinned
 * to 2026-07-28: discovery from the 401, registration by metadata document (served over
 * https on loopback) and by DCR, consent with the shared secret, a tool call, a refresh once
 * the access token expired, and revocation through the admin API.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { Client } from '@modelcontextprotocol/client';
import { EVERYTHING, startGateway, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import {
  connectWithOAuth,
  HeadlessOAuthProvider,
  selfSignedCert,
  startMetadataServer,
  REDIRECT_URL,
  type MetadataServer,
  type NegotiationMode,
} from '../helpers/oauthClient.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const OAUTH_KEY = 'test-oauth-key-0123456789abcdef-0123456789';
let gw: TestGateway;
let docs: MetadataServer;
const clients: Client[] = [];

beforeAll(async () => {
  const tls = await selfSignedCert();
  docs = await startMetadataServer(tls);
  gw = await startGateway(undefined, { oauthKey: OAUTH_KEY, oauthTokenTtlMs: 2_000, oauthAllowLoopbackMetadata: true }, { oauthMetadataCa: tls.cert });
});

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await gw.close();
  await docs.close();
  await waitForNoDescendants(process.pid);
});

/** A request with `token` on the endpoint: its status. */
async function statusWith(token: string): Promise<number> {
  const res = await fetch(gw.url(EVERYTHING, 'mcp'), {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  await res.body?.cancel();
  return res.status;
}

describe.each<[string, NegotiationMode]>([
  ['default (legacy) negotiation', 'legacy'],
  ['pinned to 2026-07-28', { pin: '2026-07-28' }],
])('the v2 client, %s', (_name, mode) => {
  it('registers by DCR, gets consent, calls a tool, refreshes after expiry, and is refused once revoked', async () => {
    const provider = new HeadlessOAuthProvider();
    const client = await connectWithOAuth(gw.url(EVERYTHING, 'mcp'), provider, { credential: TEST_SECRET }, mode);
    clients.push(client);
    const result = await client.callTool({ name: 'echo', arguments: { message: 'through oauth' } });
    expect(result.content).toEqual([{ type: 'text', text: 'Echo: through oauth' }]);

    // Expiry: poll until the gateway refuses the token, then the client refreshes by itself.
    const first = provider.accessToken!;
    await waitFor(async () => (await statusWith(first)) === 401, { timeoutMs: 10_000, intervalMs: 100, message: 'the access token to expire' });
    const again = await client.callTool({ name: 'echo', arguments: { message: 'after refresh' } });
    expect(again.content).toEqual([{ type: 'text', text: 'Echo: after refresh' }]);
    expect(provider.accessToken).not.toBe(first);

    // Revocation by the admin: the next request is refused.
    const list = (await (await fetch(`${gw.base}/admin/oauth/grants`, { headers: gw.adminHeaders() })).json()) as {
      grants: { grant: string; via: string; role: string }[];
    };
    expect(list.grants.length).toBeGreaterThan(0);
    expect(JSON.stringify(list)).not.toContain(provider.accessToken!);
    for (const g of list.grants) expect(g.via).toBe('shared-secret');
    const revoked = await fetch(`${gw.base}/admin/oauth/revoke`, {
      method: 'POST',
      headers: { ...gw.adminHeaders(), 'Content-Type': 'application/json' },
      body: JSON.stringify({ client: provider.clientInformation()!.client_id }),
    });
    expect(revoked.status).toBe(200);
    expect(await statusWith(provider.accessToken!)).toBe(401);
  });
});

describe('registration by client metadata document', () => {
  it('fetches the document over https and uses it as the client', async () => {
    const path = '/client.json';
    const clientId = docs.url(path);
    docs.serve(path, {
      client_id: clientId,
      client_name: 'Doc Client',
      redirect_uris: [REDIRECT_URL],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    const provider = new HeadlessOAuthProvider(clientId);
    const client = await connectWithOAuth(gw.url(EVERYTHING, 'mcp'), provider, { credential: TEST_SECRET }, { pin: '2026-07-28' });
    clients.push(client);
    expect(provider.clientInformation()?.client_id).toBe(clientId);
    const result = await client.callTool({ name: 'echo', arguments: { message: 'cimd' } });
    expect(result.content).toEqual([{ type: 'text', text: 'Echo: cimd' }]);
    expect(docs.hits(path)).toBeGreaterThan(0);
  });
});

describe('an OAuth grant and administration', () => {
  it('opens no admin route: adding a command with an access token is refused and changes nothing', async () => {
    const provider = new HeadlessOAuthProvider();
    const client = await connectWithOAuth(gw.url(EVERYTHING, 'mcp'), provider, { credential: TEST_SECRET });
    clients.push(client);
    const token = (await provider.tokens())?.access_token;
    expect(token).toEqual(expect.any(String));
    const before = gw.gateway.registry.keys();
    for (const [method, path, body] of [
      ['PUT', '/admin/commands/evil', JSON.stringify({ command: 'sh', args: ['-c', 'id'] })],
      ['GET', '/admin/commands', undefined],
      ['GET', '/admin/oauth/grants', undefined],
      ['GET', '/metrics', undefined],
    ] as const) {
      const res = await fetch(`${gw.base}${path}`, { method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body });
      expect({ path, status: res.status }).toEqual({ path, status: 401 });
      await res.body?.cancel();
    }
    expect(gw.gateway.registry.keys()).toEqual(before);
  });
});
