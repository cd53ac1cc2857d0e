/**
 * The tool policy, redaction, per-request logs and the audit trail for 2026-07-28 clients:
 * the same rules as for 2025 sessions, and the audit record names the era.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport, LOG_LEVEL_META_KEY } from '@modelcontextprotocol/client';
import { fixtureEntry, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const USER_TOKEN = 'modern-user-token-0123456789';
const NOBODY_TOKEN = 'modern-nobody-token-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'warden-modern-policy-'));
const policyFile = join(dir, 'policy.json');
const clientsFile = join(dir, 'clients.json');
const auditFile = join(dir, 'audit.jsonl');
writeFileSync(
  policyFile,
  JSON.stringify({
    name: 'modern',
    default: 'deny',
    roles: { user: { tools: { allow: ['post_sms_1_preview', 'post_sms_3_messages', 'chatty'] } }, admin: { default: 'allow' } },
  }),
);
writeFileSync(
  clientsFile,
  JSON.stringify({
    clients: [
      { id: 'user', role: 'user', token: USER_TOKEN },
      { id: 'nobody', role: 'nobody', token: NOBODY_TOKEN },
    ],
  }),
);

let gw: TestGateway;
const clients: V2Client[] = [];

beforeAll(async () => {
  gw = await startGateway({ sms: fixtureEntry('sms-tap-server.mjs'), leaky: fixtureEntry('leaky-server.mjs') }, { policyFile, clientsFile, auditFile });
});
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await gw.close();
  await waitForNoDescendants(process.pid);
});

async function connect(key: string, token: string): Promise<V2Client> {
  const client = new V2Client({ name: 'modern-policy', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new V2Transport(gw.url(key, 'mcp'), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  clients.push(client);
  return client;
}

describe('the policy in the 2026-07-28 era', () => {
  it('filters lists for the role and denies calls it may not make, before they reach the child', async () => {
    const user = await connect('sms', USER_TOKEN);
    expect((await user.listTools()).tools.map((t) => t.name).sort()).toEqual(['post_sms_1_preview', 'post_sms_3_messages']);
    await expect(user.callTool({ name: 'get_sms_8_account', arguments: {} })).rejects.toThrow(/denied by policy/);
    expect((await user.callTool({ name: 'post_sms_1_preview', arguments: { to: '+15551234567', body: 'hi' } })).content).toBeDefined();
    // The child's stdin tap saw the allowed call (sent later) and never the denied one.
    const tapped = () => gw.logs.filter((l) => l.includes('tap tools/call'));
    await waitFor(() => tapped().some((l) => l.includes('post_sms_1_preview')), { message: 'the allowed call at the child' });
    expect(tapped().some((l) => l.includes('get_sms_8_account'))).toBe(false);
  });

  it('shows a role that may use no tool no tools capability', async () => {
    const nobody = await connect('sms', NOBODY_TOKEN);
    expect((await nobody.discover()).capabilities.tools).toBeUndefined();
    expect((await nobody.discover()).cacheScope).toBe('private');
  });

  it('audits 2026-07-28 calls with their era', async () => {
    const user = await connect('sms', USER_TOKEN);
    await user.callTool({ name: 'post_sms_1_preview', arguments: { to: '+15551234567', body: 'audit me' } });
    const record = await waitFor(
      () =>
        readFileSync(auditFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((r) => r.event === 'tool_call' && r.tool === 'post_sms_1_preview' && r.latencyMs !== undefined),
      { message: 'the audit record' },
    );
    expect(record).toMatchObject({ era: 'modern', clientId: 'user', role: 'user', decision: 'allowed' });
  });
});

describe('per-request log level and redaction', () => {
  it('a log line reaches the request that asked for it at its level, redacted; no other', async () => {
    const user = await connect('leaky', USER_TOKEN);
    const logs: unknown[] = [];
    user.setNotificationHandler('notifications/message', (n) => void logs.push(n.params));
    await user.callTool({ name: 'chatty', arguments: {}, _meta: { [LOG_LEVEL_META_KEY]: 'info' } });
    expect(logs).toEqual([expect.objectContaining({ level: 'info', data: { token: '[REDACTED:github-token]' } })]);
    await user.callTool({ name: 'chatty', arguments: {} });
    await user.callTool({ name: 'chatty', arguments: {}, _meta: { [LOG_LEVEL_META_KEY]: 'error' } });
    expect(logs).toHaveLength(1);
  });
});
