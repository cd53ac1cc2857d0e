/**
 * Limits shared through a real Redis by two real gateway instances: the per-client HTTP
 * request budget, a policy's tool-call budget and the failed-authentication budget are one
 * budget across instances, not one per instance. Redis is started by the test and stopped
 * at the end; nothing may be left running.
 * Waits on events or polls with deadlines; never sleeps for readiness.
 */
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { ERROR_TABLE } from '../../src/errors.js';
import { connectClient, fixtureEntry, startGateway, TEST_SECRET, type Kind, type TestGateway } from '../helpers/gateway.js';
import { describeDescendants, descendantsOf, isAlive, waitFor, waitForNoDescendants } from '../helpers/procs.js';
import { describeWithRedis, startRedis, type TestRedis } from '../helpers/redis.js';

const SMS = 'sms';
type Json = Record<string, any>;

let redis: TestRedis;
const gateways: TestGateway[] = [];
const opened: (() => Promise<void>)[] = [];

/** Two gateway instances sharing `redis` (and the default secret). */
async function twoInstances(settings: Parameters<typeof startGateway>[1] = {}, commands: Record<string, unknown> = { [SMS]: fixtureEntry('sms-server.mjs') }) {
  const a = await startGateway(commands, { redisUrl: redis.url, ...settings });
  gateways.push(a);
  const b = await startGateway(commands, { redisUrl: redis.url, ...settings });
  gateways.push(b);
  expect(a.base).not.toBe(b.base);
  return [a, b] as const;
}

async function status(gw: TestGateway, token: string = gw.secret) {
  const res = await fetch(`${gw.base}/status`, { headers: { Authorization: `Bearer ${token}` } });
  const text = await res.text();
  return { status: res.status, retryAfter: res.headers.get('retry-after'), text, json: JSON.parse(text) as Json };
}

async function open(gw: TestGateway, kind: Kind): Promise<Client> {
  const { client, transport } = await connectClient(gw, SMS, kind);
  opened.push(async () => {
    if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession().catch(() => undefined);
    await client.close();
  });
  return client;
}

async function rejection(call: Promise<unknown>): Promise<McpError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof McpError) return error;
    throw error;
  }
  throw new Error('expected an McpError');
}

describeWithRedis('limits shared through Redis by two gateway instances', () => {
  beforeAll(async () => {
    redis = await startRedis();
  });

  beforeEach(async () => {
    // Every test starts from empty budgets (the gateways' key prefix is fixed).
    const admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await admin.connect();
      await admin.flushall();
    } finally {
      await admin.quit().catch(() => admin.disconnect());
    }
  });

  afterEach(async () => {
    await Promise.allSettled(opened.splice(0).map((close) => close()));
    await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
    // redis-server is our child too while it runs: everything else must be gone.
    const others = () => descendantsOf(process.pid).filter((pid) => pid !== redis.pid);
    await waitFor(() => others().length === 0, { timeoutMs: 10_000, message: 'no descendants but redis-server' }).catch(() => {
      throw new Error(`descendants left besides redis-server (${redis.pid}):\n${describeDescendants(process.pid)}`);
    });
    expect(isAlive(redis.pid)).toBe(true);
  });

  afterAll(async () => {
    await redis?.stop();
    expect(isAlive(redis.pid)).toBe(false);
    await waitForNoDescendants(process.pid, { timeoutMs: 10_000, message: 'after stopping redis-server, this process' });
  });

  it('one HTTP request budget per client across instances: 6 on A + 4 on B, then 429 on either', async () => {
    const [a, b] = await twoInstances({ httpRequestsPerMinute: 10 });
    const allowed = [];
    for (let i = 0; i < 6; i += 1) allowed.push((await status(a)).status);
    for (let i = 0; i < 4; i += 1) allowed.push((await status(b)).status);
    expect(allowed).toEqual(Array(10).fill(200));

    for (const gw of [a, b]) {
      const refused = await status(gw);
      expect(refused.status).toBe(429);
      expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(refused.retryAfter)).toBeLessThanOrEqual(60);
      expect(refused.json.error).toMatchObject({
        code: ERROR_TABLE.rate_limited.rpc,
        data: { code: 'rate_limited', limit: 'httpRequestsPerClient', max: 10 },
      });
      expect(refused.text).not.toContain(TEST_SECRET);
    }
  });

  it('one tool-call budget across instances: 2 calls on A + 1 on B, then rate_limited on either', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-shared-'));
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ name: 'shared-tools', default: 'allow', rateLimits: { post_sms_1_preview: { calls: 3, perSeconds: 60 } } }));
    const [a, b] = await twoInstances({ policyFile });
    const onA = await open(a, 'mcp');
    const onB = await open(b, 'sse');
    const preview = (client: Client) => client.callTool({ name: 'post_sms_1_preview', arguments: { body: 'hi' } });

    expect((await preview(onA)).isError).toBeFalsy();
    expect((await preview(onA)).isError).toBeFalsy();
    expect((await preview(onB)).isError).toBeFalsy();
    for (const client of [onB, onA]) {
      const limited = await rejection(preview(client));
      expect(limited.code).toBe(ERROR_TABLE.rate_limited.rpc);
      expect(limited.data).toMatchObject({ code: 'rate_limited', name: 'post_sms_1_preview', rule: 'policy.rateLimits "post_sms_1_preview"' });
      expect((limited.data as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    }
    // Another tool has its own budget; both sessions stay open.
    expect((await onB.callTool({ name: 'post_sms_2_send', arguments: {} })).isError).toBeFalsy();
    expect(a.gateway.sessions.size + b.gateway.sessions.size).toBe(2);
  });

  it('failed logins on A throttle the address on B; the correct secret is still served on both', async () => {
    const [a, b] = await twoInstances({ authFailuresPerWindow: 3 });
    for (let i = 0; i < 3; i += 1) {
      const wrong = await status(a, `wrong-token-${i}-0123456789`);
      expect(wrong.status).toBe(401);
    }
    for (const gw of [b, a]) {
      expect((await status(gw, gw.secret)).status).toBe(200);
      const refused = await status(gw, 'wrong-token-again-0123456789');
      expect(refused.status).toBe(429);
      expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(refused.json.error).toMatchObject({
        code: ERROR_TABLE.rate_limited.rpc,
        data: { code: 'rate_limited', limit: 'authFailuresPerAddress', max: 3 },
      });
      expect(refused.text).not.toContain(TEST_SECRET);
    }
  });
});
