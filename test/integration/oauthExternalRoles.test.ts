/**
 * An external identity provider's role claim reaching the tool policy: `groups` mapped to
 * roles, each role seeing its own tools (2026-07-28 and 2025 clients), a token with no mapped
 * group refused with 403, a person whose groups changed getting the new role's view (never the
 * conversation or session opened under the old one), and audit records naming each person.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { JWTPayload } from 'jose';
import { EVERYTHING, MCP_ACCEPT, startGateway, type TestGateway } from '../helpers/gateway.js';
import { startIdp, type TestIdp } from '../helpers/idp.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-idp-roles-'));
const policyFile = join(dir, 'policy.json');
const auditFile = join(dir, 'audit.jsonl');
writeFileSync(policyFile, JSON.stringify({ name: 'idp', default: 'deny', roles: { user: { tools: { allow: ['echo'] } }, admin: { default: 'allow' } } }));

let idp: TestIdp;
let gw: TestGateway;
const clients: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  idp = await startIdp();
  gw = await startGateway(undefined, {
    oauthIssuer: idp.issuer,
    oauthAllowLoopbackIssuer: true,
    oauthRoleClaim: 'groups',
    oauthRoleMap: 'mcp-admins=admin, mcp-users=user',
    policyFile,
    auditFile,
  });
});
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await gw.close();
  await idp.close();
  await waitForNoDescendants(process.pid);
});

const tokenFor = (claims: JWTPayload) => idp.sign({ sub: 'alice', aud: gw.url(EVERYTHING, 'mcp').href, scope: 'mcp', azp: 'test-client', ...claims });
const toolNames = async (client: { listTools(): Promise<{ tools: { name: string }[] }> }) => (await client.listTools()).tools.map((t) => t.name).sort();

async function v2Client(token: string): Promise<V2Client> {
  const client = new V2Client({ name: 'idp-roles', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new V2Transport(gw.url(EVERYTHING, 'mcp'), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  clients.push(client);
  return client;
}

async function v1Client(token: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(gw.url(EVERYTHING, 'mcp'), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  const client = new Client({ name: 'idp-roles-v1', version: '1' });
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

function auditRecords(): Record<string, unknown>[] {
  return readFileSync(auditFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('the role claim', () => {
  it('maps a group to a role the policy knows: a user sees and calls only its tools', async () => {
    const user = await v2Client(await tokenFor({ groups: ['staff', 'mcp-users'] }));
    expect(await toolNames(user)).toEqual(['echo']);
    await expect(user.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } })).rejects.toThrow(/denied by policy/);
    const { client } = await v1Client(await tokenFor({ sub: 'bob', groups: 'mcp-users' }));
    expect(await toolNames(client)).toEqual(['echo']);
  });

  it('takes the first role of the map that the token carries', async () => {
    const admin = await v2Client(await tokenFor({ sub: 'erin', groups: ['mcp-users', 'mcp-admins'] }));
    expect((await toolNames(admin)).length).toBeGreaterThan(1);
  });

  it('refuses a token with no mapped group: 403 insufficient_scope', async () => {
    for (const claims of [{ groups: ['staff'] }, { groups: undefined }, { groups: 42 }]) {
      const res = await fetch(gw.url(EVERYTHING, 'mcp'), {
        method: 'POST',
        headers: { ...MCP_ACCEPT, Authorization: `Bearer ${await tokenFor(claims)}` },
        body: '{}',
      });
      await res.body?.cancel();
      expect(res.status).toBe(403);
      expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
      expect(res.headers.get('www-authenticate')).toContain('resource_metadata=');
    }
  });

  it('gives a person whose groups changed the new role, not the conversation opened under the old one', async () => {
    const before = await v2Client(await tokenFor({ groups: ['mcp-users'] }));
    expect(await toolNames(before)).toEqual(['echo']);
    const after = await v2Client(await tokenFor({ groups: ['mcp-admins'] }));
    expect((await toolNames(after)).length).toBeGreaterThan(1);
    const demoted = await v2Client(await tokenFor({ groups: ['mcp-users'] }));
    expect(await toolNames(demoted)).toEqual(['echo']);
  });

  it('does not let a 2025 session opened under one role be used with a token of another', async () => {
    const { transport } = await v1Client(await tokenFor({ groups: ['mcp-users'] }));
    const send = async (groups: string[]) => {
      const res = await fetch(gw.url(EVERYTHING, 'mcp'), {
        method: 'POST',
        headers: {
          ...MCP_ACCEPT,
          'Mcp-Session-Id': transport.sessionId!,
          'MCP-Protocol-Version': '2025-06-18',
          Authorization: `Bearer ${await tokenFor({ groups })}`,
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
      });
      await res.body?.cancel();
      return res.status;
    };
    expect(await send(['mcp-users'])).toBe(200);
    expect(await send(['mcp-admins'])).toBe(404);
  });
});

describe('each subject is its own principal', () => {
  it('names the person (subject @ issuer tag) and the OAuth client in the audit trail', async () => {
    const tag = createHash('sha256').update(idp.issuer).digest('hex').slice(0, 8);
    // A 2026-07-28 conversation opens with the first request after discovery.
    await toolNames(await v2Client(await tokenFor({ sub: 'carol', groups: ['mcp-users'] })));
    await v1Client(await tokenFor({ sub: 'dave', groups: ['mcp-admins'], azp: undefined, client_id: 'other-client' }));
    const opened = await waitFor(
      () => {
        const records = auditRecords().filter((r) => r.event === 'session_open');
        const carol = records.find((r) => r.clientId === `carol@${tag}`);
        const dave = records.find((r) => r.clientId === `dave@${tag}`);
        return carol && dave ? { carol, dave } : undefined;
      },
      { message: 'the session_open records' },
    );
    expect(opened.carol).toMatchObject({ role: 'user', via: 'idp:test-client', era: 'modern' });
    expect(opened.dave).toMatchObject({ role: 'admin', via: 'idp:other-client', era: 'legacy' });
    expect(readFileSync(auditFile, 'utf8')).not.toMatch(/eyJ/);
  });
});
