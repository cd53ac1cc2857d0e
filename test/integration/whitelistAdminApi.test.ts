/**
 * The whitelist's admin API on a real gateway: GET lists (env values hidden), PUT adds or
 * replaces and serves at once, DELETE removes; refusals are JSON errors naming the entry
 * and the problem, and change nothing. Only the admin credential opens it: the shared
 * secret and a client token get 403, no or a wrong token 401, and without an admin
 * credential configured nothing opens it.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { loadCommandsFile } from '../../src/config/commands.js';
import { connectClient, fixtureEntry, startGateway, TEST_ADMIN_TOKEN, type TestGateway } from '../helpers/gateway.js';
import { waitForNoDescendants } from '../helpers/procs.js';

const CLIENT_TOKEN = 'client-token-0123456789abcdef0123';
const FILE_ADMIN_TOKEN = 'file-admin-token-0123456789abcdef';

const gateways: TestGateway[] = [];
const clients: Client[] = [];

async function start(settings: Parameters<typeof startGateway>[1] = {}): Promise<TestGateway> {
  const gw = await startGateway({ first: fixtureEntry('env-server.mjs', { env: { SECRET_VALUE: 'do-not-show-7f3a' } }) }, { commandsPollMs: 20, ...settings });
  gateways.push(gw);
  return gw;
}

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

interface Answer {
  status: number;
  body: any;
}

async function call(
  gw: TestGateway,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const token = options.token === undefined ? TEST_ADMIN_TOKEN : options.token;
  const res = await fetch(`${gw.base}/admin/commands${path}`, {
    method,
    headers: {
      ...(token === '' ? {} : { Authorization: `Bearer ${token}` }),
      ...(options.body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  return { status: res.status, body: await res.json() };
}

function clientsFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-admin-api-'));
  const file = join(dir, 'clients.json');
  writeFileSync(
    file,
    JSON.stringify({
      clients: [
        { id: 'app', role: 'user', token: CLIENT_TOKEN },
        { id: 'ops', admin: true, token: FILE_ADMIN_TOKEN },
      ],
    }),
  );
  return file;
}

describe('the whitelist admin API', () => {
  it('lists the entries with their paths, never a fixed env value', async () => {
    const gw = await start();
    const { status, body } = await call(gw, 'GET', '');
    expect(status).toBe(200);
    expect(body.source).toBe('file');
    expect(body.commands).toEqual([
      { key: 'first', paths: { mcp: '/first/mcp', sse: '/first/sse' }, entry: expect.objectContaining({ env: { SECRET_VALUE: '(hidden)' } }) },
    ]);
    expect(JSON.stringify(body)).not.toContain('do-not-show-7f3a');
    const statusPage = (await (await fetch(`${gw.base}/status`, { headers: gw.adminHeaders() })).json()) as { commands: Record<string, { paths: unknown }> };
    expect(statusPage.commands.first?.paths).toEqual({ mcp: '/first/mcp', sse: '/first/sse' });
  });

  it('PUT adds an entry that serves at once, written to the file as the loader reads it', async () => {
    const gw = await start();
    const key = 'npx -y @scope/pkg';
    const segment = encodeURIComponent(key);
    const put = await call(gw, 'PUT', `/${segment}`, { body: fixtureEntry('env-server.mjs', { env: { MARK: 'put' } }) });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ key, paths: { mcp: `/${segment}/mcp` }, replaced: false, entry: { env: { MARK: '(hidden)' } } });

    const { client } = await connectClient(gw, key, 'mcp');
    clients.push(client);
    const result = (await client.callTool({ name: 'env', arguments: {} })) as { content: Array<{ text: string }> };
    expect(JSON.parse(result.content[0]!.text).MARK).toBe('put');

    const file = gw.gateway.whitelist!.source.file;
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^\{\n {2}"first": \{\n/);
    expect(text.endsWith('}\n')).toBe(true);
    expect((await loadCommandsFile(file)).map((s) => s.key)).toEqual(['first', key]);
    expect((await call(gw, 'GET', `/${segment}`)).body).toMatchObject({ key, entry: { command: process.execPath } });
  });

  it('If-None-Match: * refuses an existing key (409); a plain PUT replaces it (200)', async () => {
    const gw = await start();
    const refused = await call(gw, 'PUT', '/first', { body: fixtureEntry('env-server.mjs'), headers: { 'If-None-Match': '*' } });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toContain('entry "first" already exists');
    const replaced = await call(gw, 'PUT', '/first', { body: fixtureEntry('env-server.mjs', { description: 'new' }) });
    expect(replaced.status).toBe(200);
    expect(replaced.body.replaced).toBe(true);
    expect(gw.gateway.registry.get('first')?.description).toBe('new');
  });

  it('refuses an invalid entry with 400 naming it and the problem, and changes nothing', async () => {
    const gw = await start();
    const file = gw.gateway.whitelist!.source.file;
    const before = readFileSync(file, 'utf8');
    const bad = await call(gw, 'PUT', '/bad', { body: { command: 'node', allowedEnv: ['NODE_OPTIONS'] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.data).toMatchObject({ code: 'bad_request', entry: 'bad' });
    expect(bad.body.error.message).toContain('entry "bad": allowedEnv[0] "NODE_OPTIONS" names a variable no client may ever set');
    expect((await call(gw, 'PUT', '/x', { body: ['node'] })).status).toBe(400);
    expect((await call(gw, 'PUT', '/%E0%A4%A', { body: {} })).body.error.message).toContain('not valid percent-encoding');
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(gw.gateway.registry.keys()).toEqual(['first']);
  });

  it('DELETE removes an entry; a missing one is 404 with the nearest key; the last one stays', async () => {
    const gw = await start();
    expect((await call(gw, 'PUT', '/second', { body: fixtureEntry('env-server.mjs') })).status).toBe(201);
    const missing = await call(gw, 'DELETE', '/secnd');
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toContain('no entry "secnd"');
    expect(missing.body.error.message).toContain('did you mean "second"?');
    const removed = await call(gw, 'DELETE', '/second');
    expect(removed).toEqual({ status: 200, body: { key: 'second', removed: true, liveSessions: 0 } });
    expect(gw.gateway.registry.keys()).toEqual(['first']);
    const last = await call(gw, 'DELETE', '/first');
    expect(last.status).toBe(400);
    expect(last.body.error.message).toContain('"first" is the only one');
    expect((await call(gw, 'POST', '/first', { body: {} })).status).toBe(405);
  });

  it('refuses the shared secret and a client token (403), no or a wrong token (401); a clients-file admin passes', async () => {
    const gw = await start({ clientsFile: clientsFile() });
    for (const [method, path] of [
      ['GET', ''],
      ['PUT', '/evil'],
      ['DELETE', '/first'],
    ] as const) {
      const body = method === 'PUT' ? { command: 'sh', args: ['-c', 'id'] } : undefined;
      expect([method, (await call(gw, method, path, { token: gw.secret, body })).status]).toEqual([method, 403]);
      expect([method, (await call(gw, method, path, { token: CLIENT_TOKEN, body })).status]).toEqual([method, 403]);
      expect([method, (await call(gw, method, path, { token: '', body })).status]).toEqual([method, 401]);
      expect([method, (await call(gw, method, path, { token: 'not-a-token-at-all-0123456789', body })).status]).toEqual([method, 401]);
    }
    expect(gw.gateway.registry.keys()).toEqual(['first']);
    expect((await call(gw, 'GET', '', { token: FILE_ADMIN_TOKEN })).status).toBe(200);
  });

  it('is closed when no admin credential is configured', async () => {
    const gw = await start({ adminToken: undefined });
    expect((await call(gw, 'GET', '', { token: gw.secret })).status).toBe(403);
    expect((await call(gw, 'PUT', '/evil', { token: TEST_ADMIN_TOKEN, body: { command: 'sh' } })).status).toBe(401);
    expect(gw.gateway.registry.keys()).toEqual(['first']);
  });
});
