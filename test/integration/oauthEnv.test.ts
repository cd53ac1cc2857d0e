/**
 * Env values a person enters at consent: sealed into the grant, they reach the child as if
 * sent in ENV_* headers (2025 sessions and 2026-07-28 conversations alike), through the same
 * validation (a name also sent as a header is refused), and never appear in a log line or the
 * audit trail.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { fixtureEntry, startGateway, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import { authorizeUrl, pkcePair, postForm, rawGrant, readForm, registerClient } from '../helpers/oauthClient.js';
import { waitForNoDescendants } from '../helpers/procs.js';

const OAUTH_KEY = 'env-oauth-key-0123456789abcdef-0123456789ab';
const KEY = 'env';
const SECRET_VALUE = 'sk-live-per-user-value-7f3a9c';
let gw: TestGateway;
let auditFile: string;

beforeAll(async () => {
  auditFile = join(mkdtempSync(join(tmpdir(), 'warden-audit-')), 'audit.jsonl');
  gw = await startGateway({ [KEY]: fixtureEntry('env-server.mjs', { allowedEnv: ['API_TOKEN', 'REGION', 'EXTRA_*'] }) }, { oauthKey: OAUTH_KEY, auditFile });
});

afterAll(async () => {
  await gw.close();
  await waitForNoDescendants(process.pid);
});

const resource = () => `${gw.base}/${KEY}/mcp`;

function envOf(result: unknown): Record<string, string> {
  return JSON.parse((result as { content: { text: string }[] }).content[0]!.text) as Record<string, string>;
}

describe('env values entered at consent', () => {
  it('are asked for by exact name only, and reach the child in both eras', async () => {
    const clientId = (await registerClient(gw.base)).client_id as string;
    const url = authorizeUrl(gw.base, { client_id: clientId, code_challenge: pkcePair().challenge, resource: resource() });
    const afterLogin = await postForm(url, await readForm(await fetch(url)), { decision: 'approve', credential: TEST_SECRET });
    expect(afterLogin.status).toBe(200);
    const html = await afterLogin.text();
    expect(html).toContain('name="env_API_TOKEN"');
    expect(html).toContain('name="env_REGION"');
    expect(html).not.toContain('EXTRA_');

    const { tokens } = await rawGrant(gw.base, resource(), TEST_SECRET, { clientId, env: { env_API_TOKEN: SECRET_VALUE, env_REGION: '' } });
    const headers = { Authorization: `Bearer ${tokens.access_token}` };

    const legacy = new Client({ name: 'env-test', version: '1' });
    await legacy.connect(new StreamableHTTPClientTransport(gw.url(KEY, 'mcp'), { requestInit: { headers } }));
    const seen = envOf(await legacy.callTool({ name: 'env', arguments: {} }));
    expect(seen.API_TOKEN).toBe(SECRET_VALUE);
    expect(seen.REGION).toBeUndefined();
    await legacy.close();

    const modern = new V2Client({ name: 'env-test', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await modern.connect(new V2Transport(gw.url(KEY, 'mcp'), { requestInit: { headers } }));
    expect(envOf(await modern.callTool({ name: 'env', arguments: {} })).API_TOKEN).toBe(SECRET_VALUE);
    await modern.close();

    // The same name as a header too: refused like any duplicate.
    const both = await fetch(gw.url(KEY, 'mcp'), {
      method: 'POST',
      headers: { ...headers, ENV_API_TOKEN: 'other', 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    });
    expect(both.status).toBe(400);
    expect(((await both.json()) as { error: { data: { reason: string } } }).error.data.reason).toMatch(/duplicate|more than once/);

    await gw.close();
    expect(gw.logs.join('\n')).not.toContain(SECRET_VALUE);
    expect(readFileSync(auditFile, 'utf8')).not.toContain(SECRET_VALUE);
    const consentLine = readFileSync(auditFile, 'utf8')
      .split('\n')
      .find((line) => line.includes('"oauth_consent"'));
    expect(JSON.parse(consentLine!)).toMatchObject({ via: 'shared-secret', command: KEY, variables: ['API_TOKEN'] });
    const opened = readFileSync(auditFile, 'utf8')
      .split('\n')
      .find((line) => line.includes('"session_open"'));
    expect(JSON.parse(opened!)).toMatchObject({ via: 'shared-secret', clientId: expect.stringMatching(/^g_/) });
  });

  it('are checked like ENV_* headers', async () => {
    const other = await startGateway({ [KEY]: fixtureEntry('env-server.mjs', { allowedEnv: ['API_TOKEN'] }) }, { oauthKey: OAUTH_KEY });
    try {
      const clientId = (await registerClient(other.base)).client_id as string;
      const url = authorizeUrl(other.base, { client_id: clientId, code_challenge: pkcePair().challenge, resource: `${other.base}/${KEY}/mcp` });
      const envPage = await postForm(url, await readForm(await fetch(url)), { decision: 'approve', credential: TEST_SECRET });
      const refused = await postForm(url, await readForm(envPage), { decision: 'approve', env_API_TOKEN: 'line\nbreak' });
      expect(refused.status).toBe(400);
      expect(refused.headers.get('location')).toBeNull();
      expect(await refused.text()).toContain('API_TOKEN is not accepted');
    } finally {
      await other.close();
    }
  });
});
