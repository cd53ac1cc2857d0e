/**
 * Limits shared by two machines through a real Redis (started by the test): sessions per
 * client are counted across both (a closed session gives its slot back), the request budget
 * is one, and a request replayed to the machine holding its session is charged once. The
 * slots of a machine that stopped heart-beating (a crash) stop counting after their TTL; a
 * Redis outage counts per machine instead of refusing. Nothing is left running.
 */
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { RedisSessionSlots } from '../../src/fly/sessionSlots.js';
import { LimitReachedError } from '../../src/errors.js';
import { FlyRelay, liveMachines } from '../helpers/flyRelay.js';
import { EVERYTHING, initializeBody, MCP_ACCEPT, startGateway, type TestGateway } from '../helpers/gateway.js';
import { isAlive, waitFor, waitForNoDescendants } from '../helpers/procs.js';
import { describeWithRedis, startRedis, type TestRedis } from '../helpers/redis.js';

const A = 'machine-a';
const B = 'machine-b';
let redis: TestRedis;
const servers: TestRedis[] = [];
const gateways: TestGateway[] = [];
const relays: FlyRelay[] = [];
const clients: Redis[] = [];
const slotSets: RedisSessionSlots[] = [];

afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.close()));
  await Promise.all(gateways.splice(0).map((g) => g.close()));
  await Promise.all(slotSets.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await Promise.all(clients.filter((c) => c.status === 'ready').map((c) => c.quit()));
  await Promise.all(servers.map((s) => s.stop()));
  for (const server of servers) expect(isAlive(server.pid)).toBe(false);
  await waitForNoDescendants(process.pid);
});

/** Two machines sharing `redis`, each seeing both, behind a relay. */
async function pair(settings: Record<string, unknown>): Promise<{ a: TestGateway; b: TestGateway; relay: FlyRelay }> {
  const shared = { redisUrl: redis.url, flyAppName: 'warden-test', ...settings };
  const a = await startGateway(undefined, { ...shared, flyMachineId: A }, { machines: liveMachines([A, B]) });
  gateways.push(a);
  const b = await startGateway(undefined, { ...shared, flyMachineId: B }, { machines: liveMachines([A, B]) });
  gateways.push(b);
  const relay = await FlyRelay.start({ [A]: Number(new URL(a.base).port), [B]: Number(new URL(b.base).port) });
  relays.push(relay);
  return { a, b, relay };
}

async function initialize(gw: TestGateway): Promise<{ status: number; id: string | null; body: Record<string, any> }> {
  const res = await fetch(gw.url(EVERYTHING, 'mcp'), { method: 'POST', headers: gw.headers(MCP_ACCEPT), body: JSON.stringify(initializeBody()) });
  const text = await res.text();
  return {
    status: res.status,
    id: res.headers.get('mcp-session-id'),
    body: res.headers.get('content-type')?.startsWith('application/json') ? (JSON.parse(text) as Record<string, any>) : {},
  };
}

const end = (gw: TestGateway | string, id: string, headers: Record<string, string>) =>
  fetch(typeof gw === 'string' ? gw : gw.url(EVERYTHING, 'mcp'), { method: 'DELETE', headers: { ...headers, 'Mcp-Session-Id': id } });

describeWithRedis('two machines sharing a Redis', () => {
  beforeAll(async () => {
    redis = await startRedis();
    servers.push(redis);
  });

  it('count sessions per client across both machines; a closed session frees its slot', async () => {
    const { a, b } = await pair({ maxSessionsPerClient: 2, redisPrefix: 'sessions' });
    const first = await initialize(a);
    const second = await initialize(b);
    expect([first.status, second.status]).toEqual([200, 200]);
    const third = await initialize(a);
    expect(third.status).toBe(429);
    expect(third.body.error.data).toEqual({ code: 'rate_limited', limit: 'maxSessionsPerClient', max: 2 });
    expect(a.gateway.sessions.size + b.gateway.sessions.size).toBe(2);

    expect((await end(b, second.id!, b.headers())).status).toBe(200);
    await waitFor(async () => (await initialize(a)).status === 200, { message: 'the freed slot taken on the other machine' });
  });

  it("share one request budget; a request replayed to its session's machine is charged once", async () => {
    const { a, relay } = await pair({ httpRequestsPerMinute: 4, redisPrefix: 'requests' });
    const opened = await initialize(a); // 1
    expect(opened.status).toBe(200);
    relay.only(B);
    const list = () =>
      fetch(relay.url(EVERYTHING, 'mcp'), {
        method: 'POST',
        headers: a.headers({ ...MCP_ACCEPT, 'Mcp-Session-Id': opened.id! }),
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
      });
    for (let i = 0; i < 3; i += 1) expect((await list()).status).toBe(200); // 2, 3, 4: each reached B, was replayed to A
    expect(relay.replayed()).toHaveLength(3);
    const refused = await list();
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as Record<string, any>).error.data).toMatchObject({ limit: 'httpRequestsPerClient', max: 4 });
    relay.only(A);
    expect((await list()).status).toBe(429);
  });

  it('stop counting the slots of a machine that stopped heart-beating, one TTL later', async () => {
    const client = new Redis(redis.url);
    clients.push(client);
    const logger = { warn: () => undefined, info: () => undefined };
    const key = 'crash:sessions:client:one';
    // A slot of a machine that crashed: nobody will push its expiry forward again.
    await client.zadd(key, Date.now() + 400, 'machine-x:slot');
    const survivor = new RedisSessionSlots({ redis: client, keyPrefix: 'crash', instance: 'machine-y', logger, ttlMs: 300 });
    slotSets.push(survivor);
    await expect(survivor.take('client:one', 1)).rejects.toBeInstanceOf(LimitReachedError);
    const release = await waitFor(() => survivor.take('client:one', 1).catch(() => undefined), { message: 'the crashed slot expired' });

    // A live slot is kept alive by its heartbeat, well past one TTL.
    const score = Number(
      await client.zscore(
        key,
        [...(await client.zrange(key, 0, -1))].find((m) => m.startsWith('machine-y:'))!,
      ),
    );
    await waitFor(async () => Number((await client.zrange(key, 0, -1, 'WITHSCORES'))[1]) > score + 600, { message: 'two heartbeats later' });
    await expect(survivor.take('client:one', 1)).rejects.toBeInstanceOf(LimitReachedError);
    release();
    await waitFor(async () => (await client.zcard(key)) === 0, { message: 'the released slot gone' });
  });

  it('count per machine while Redis is down, with one warning, never refusing for it', async () => {
    const down = await startRedis();
    servers.push(down);
    const client = new Redis(down.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 500,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined);
    await client.connect();
    clients.push(client);
    const warnings: string[] = [];
    const slots = new RedisSessionSlots({
      redis: client,
      keyPrefix: 'down',
      instance: 'machine-z',
      logger: { warn: (m: string) => void warnings.push(m), info: () => undefined },
      ttlMs: 60_000,
    });
    slotSets.push(slots);
    await slots.take('client:two', 1);
    await down.stop();
    const releases = [await slots.take('client:two', 1), await slots.take('client:two', 1)];
    releases.forEach((release) => release());
    expect(warnings).toEqual(['Redis is unreachable: sessions per client are counted per machine until it is back']);
    await waitFor(() => client.status === 'end', { message: 'the client gave up on the stopped server' });
  });
});
