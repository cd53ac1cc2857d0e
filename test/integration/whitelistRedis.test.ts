/**
 * Several gateways sharing the whitelist through a real redis-server (started by the
 * test): the first one seeds Redis from its file and the others read Redis, not their own
 * files; an entry added through one gateway's admin API is served by both; a removal
 * through the other reaches the first; a bad document in Redis keeps each gateway's last
 * good whitelist, with an error log naming the entry.
 */
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { connectClient, fixtureEntry, startGateway, TEST_ADMIN_TOKEN, type TestGateway } from '../helpers/gateway.js';
import { descendantsOf, isAlive, waitFor } from '../helpers/procs.js';
import { describeWithRedis, startRedis, type TestRedis } from '../helpers/redis.js';
import type { WhitelistChange } from '../../src/whitelist/live.js';

let redis: TestRedis | undefined;
let run = 0;
const gateways: TestGateway[] = [];
const clients: Client[] = [];

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
  // Every server child stopped; only the test's redis-server is left.
  await waitFor(() => descendantsOf(process.pid).every((pid) => pid === redis?.pid), { message: 'no children but redis-server' });
});

afterAll(async () => {
  await redis?.stop();
  if (redis) expect(isAlive(redis.pid)).toBe(false);
});

/** A gateway of this test's deployment (one Redis prefix per test). */
async function gateway(commands: Record<string, unknown>, prefix: string): Promise<TestGateway> {
  const gw = await startGateway(commands, { redisUrl: redis!.url, redisPrefix: prefix, commandsPollMs: 20 });
  gateways.push(gw);
  return gw;
}

function nextChange(gw: TestGateway): Promise<WhitelistChange> {
  const live = gw.gateway.whitelist!;
  return new Promise((resolve) => {
    live.onChange = (change) => {
      live.onChange = undefined;
      resolve(change);
    };
  });
}

async function admin(gw: TestGateway, method: string, key: string, body?: unknown): Promise<number> {
  const res = await fetch(`${gw.base}/admin/commands/${encodeURIComponent(key)}`, {
    method,
    headers: { Authorization: `Bearer ${TEST_ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  await res.arrayBuffer();
  return res.status;
}

async function markVia(gw: TestGateway, key: string): Promise<string | undefined> {
  const { client } = await connectClient(gw, key, 'mcp');
  clients.push(client);
  const result = (await client.callTool({ name: 'env', arguments: {} })) as { content: Array<{ text: string }> };
  return (JSON.parse(result.content[0]!.text) as Record<string, string>).MARK;
}

describeWithRedis('the whitelist in Redis', () => {
  let prefix = '';
  beforeAll(async () => {
    redis = await startRedis();
  });
  beforeEach(() => {
    run += 1;
    prefix = `wl${process.pid}t${run}`;
  });

  it('the first gateway seeds Redis from its file; the second reads Redis, not its own file', async () => {
    const a = await gateway({ seeded: fixtureEntry('env-server.mjs', { env: { MARK: 'seed' } }) }, prefix);
    const b = await gateway({ ignored: fixtureEntry('env-server.mjs') }, prefix);
    expect(a.logs.some((l) => l.includes('whitelist kept in Redis, seeded from the file'))).toBe(true);
    expect(b.logs.some((l) => l.includes('whitelist kept in Redis; the file is not read'))).toBe(true);
    expect(b.gateway.registry.keys()).toEqual(['seeded']);
    expect(await markVia(b, 'seeded')).toBe('seed');
  });

  it('an entry added through one gateway is served by both; a removal through the other reaches the first', async () => {
    const a = await gateway({ first: fixtureEntry('env-server.mjs') }, prefix);
    const b = await gateway({ first: fixtureEntry('env-server.mjs') }, prefix);
    const seenByB = nextChange(b);
    expect(await admin(a, 'PUT', 'demo', fixtureEntry('env-server.mjs', { env: { MARK: 'shared' } }))).toBe(201);
    expect(await seenByB).toMatchObject({ added: ['demo'] });
    expect(await markVia(a, 'demo')).toBe('shared');
    expect(await markVia(b, 'demo')).toBe('shared');

    const seenByA = nextChange(a);
    expect(await admin(b, 'DELETE', 'demo')).toBe(200);
    expect(await seenByA).toMatchObject({ removed: ['demo'] });
    expect(a.gateway.registry.keys()).toEqual(['first']);
    const res = await fetch(a.url('demo', 'sse'), { headers: a.headers() });
    expect(res.status).toBe(404);
    await res.arrayBuffer();
  });

  it('concurrent edits through two gateways lose none of them', async () => {
    const a = await gateway({ first: fixtureEntry('env-server.mjs') }, prefix);
    const b = await gateway({ first: fixtureEntry('env-server.mjs') }, prefix);
    const keys = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6'];
    const statuses = await Promise.all(keys.map((key, i) => admin(i % 2 === 0 ? a : b, 'PUT', key, fixtureEntry('env-server.mjs'))));
    expect(statuses).toEqual(keys.map(() => 201));
    for (const gw of [a, b]) {
      await waitFor(() => gw.gateway.registry.size === 1 + keys.length, { message: 'every edit on both gateways' });
      expect(gw.gateway.registry.keys().sort()).toEqual(['first', ...keys]);
    }
  });

  it("a bad document in Redis keeps each gateway's last good whitelist and logs the entry", async () => {
    const a = await gateway({ first: fixtureEntry('env-server.mjs') }, prefix);
    const b = await gateway({ first: fixtureEntry('env-server.mjs') }, prefix);
    const client = new Redis(redis!.url);
    try {
      await client
        .multi()
        .set(`${prefix}:whitelist`, JSON.stringify({ first: {}, broken: { command: 'x', argz: [] } }))
        .incr(`${prefix}:whitelist:version`)
        .exec();
    } finally {
      await client.quit();
    }
    for (const gw of [a, b]) {
      const line = await waitFor(() => gw.logs.find((l) => l.includes('whitelist reload rejected') && l.includes('"entry":"broken"')), {
        message: 'the rejected reload',
      });
      expect(line).toContain(`redis key ${prefix}:whitelist: entry \\"broken\\": unknown field \\"argz\\"`);
      expect(gw.gateway.registry.keys()).toEqual(['first']);
    }
    // An edit through the API is refused while the stored document is broken, and says why.
    const res = await fetch(`${a.base}/admin/commands/x`, {
      method: 'PUT',
      headers: { Authorization: `Bearer ${TEST_ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ command: 'node' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('entry "broken": unknown field "argz"');
  });
});
