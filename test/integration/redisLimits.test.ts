/**
 * Rate limits in a real Redis (started by the test): two stores act as two gateway
 * instances sharing one budget; a wrong URL fails at start without leaking the password;
 * a Redis outage degrades to per-instance limits with one warning; nothing is left running.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import { createLimiterStore, type LimiterStore, type LimiterLogger, type RateDecision } from '../../src/ratelimit/limiter.js';
import { ToolRateLimits } from '../../src/ratelimit/toolLimits.js';
import { isAlive } from '../helpers/procs.js';
import { describeWithRedis, freePort, startRedis, type TestRedis } from '../helpers/redis.js';

/** Collects warnings instead of printing them. */
function recordingLogger(): LimiterLogger & { warnings: { message: string; meta?: object }[]; infos: string[] } {
  const warnings: { message: string; meta?: object }[] = [];
  const infos: string[] = [];
  return {
    warnings,
    infos,
    warn: (message, meta) => void warnings.push({ message, meta }),
    info: (message) => void infos.push(message),
  };
}

const refused = (decision: RateDecision): boolean => !decision.allowed;

const servers: TestRedis[] = [];
const stores: LimiterStore[] = [];
let redis: TestRedis;
/** A key prefix per run, so reruns against the same server could not collide. */
const prefix = `test${process.pid}`;

async function store(url: string, logger?: LimiterLogger): Promise<LimiterStore> {
  const created = await createLimiterStore({ redisUrl: url, keyPrefix: prefix, logger });
  stores.push(created);
  return created;
}

async function redisServer(): Promise<TestRedis> {
  const started = await startRedis();
  servers.push(started);
  return started;
}

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await Promise.all(servers.map((s) => s.stop()));
  for (const server of servers) expect(isAlive(server.pid)).toBe(false);
});

describeWithRedis('Redis limiter store', () => {
  beforeAll(async () => {
    redis = await redisServer();
  });

  it('shares one budget between two gateway instances', async () => {
    const a = await store(redis.url);
    const b = await store(redis.url);
    expect(a.shared).toBe(true);
    const rule = { points: 5, durationSeconds: 60 };
    const onA = a.create('http', rule);
    const onB = b.create('http', rule);

    const decisions = [
      await onA.consume('client:1'),
      await onA.consume('client:1'),
      await onA.consume('client:1'),
      await onB.consume('client:1'),
      await onB.consume('client:1'),
    ];
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, true, true]);
    expect(decisions[4]).toEqual({ allowed: true, remaining: 0 });

    for (const limiter of [onA, onB]) {
      const sixth = await limiter.consume('client:1');
      expect(sixth.allowed).toBe(false);
      if (sixth.allowed) throw new Error('expected a refusal');
      expect(sixth.retryAfterMs).toBeGreaterThan(0);
      expect(sixth.retryAfterMs).toBeLessThanOrEqual(60_000);
    }
    // Both instances see the exhaustion without consuming; another key is untouched.
    expect(refused(await onB.peek('client:1'))).toBe(true);
    expect(await onA.peek('client:2')).toEqual({ allowed: true, remaining: 5 });
  });

  it('keeps different limiter names apart and rewards across instances', async () => {
    const a = await store(redis.url);
    const b = await store(redis.url);
    const rule = { points: 1, durationSeconds: 60 };
    const auth = a.create('auth', rule);
    const other = a.create('other', rule);
    expect((await auth.consume('10.0.0.1')).allowed).toBe(true);
    expect((await other.consume('10.0.0.1')).allowed).toBe(true);
    expect(refused(await auth.consume('10.0.0.1'))).toBe(true);

    // A reward on instance B frees the budget seen by instance A (2 used, 2 given back).
    await b.create('auth', rule).reward('10.0.0.1', 2);
    expect(await auth.consume('10.0.0.1')).toEqual({ allowed: true, remaining: 0 });
  });

  it('shares tool-call budgets by scope and tool', async () => {
    const a = new ToolRateLimits(await store(redis.url));
    const b = new ToolRateLimits(await store(redis.url));
    const rule = { points: 2, durationSeconds: 60 };
    expect((await a.consume('role:user', 'echo', rule)).allowed).toBe(true);
    expect((await b.consume('role:user', 'echo', rule)).allowed).toBe(true);
    expect(refused(await a.consume('role:user', 'echo', rule))).toBe(true);
    expect((await b.consume('role:user', 'add', rule)).allowed).toBe(true);
  });

  it('fails at start with a clear message when the password is wrong', async () => {
    // The test server has no password: AUTH fails, and the message must not carry it.
    const url = redis.url.replace('redis://', 'redis://someone:hunter2@');
    const error = await createLimiterStore({ redisUrl: url }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/^cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+: /);
    expect((error as Error).message).not.toContain('hunter2');
  });

  it('keeps answering from the insurance limiter when Redis goes away, with one warning', async () => {
    const own = await redisServer(); // its own server: stopping it must not affect other tests
    const logger = recordingLogger();
    const gateway = await store(own.url, logger);
    const limiter = gateway.create('outage', { points: 2, durationSeconds: 60 });
    expect((await limiter.consume('k')).allowed).toBe(true);
    expect(logger.warnings).toEqual([]);

    await own.stop();
    expect(isAlive(own.pid)).toBe(false);

    // Per-instance limits now: a fresh in-memory budget of 2, then refusals.
    const during = [await limiter.consume('k'), await limiter.consume('k'), await limiter.consume('k'), await limiter.consume('k')];
    expect(during.map((d) => d.allowed)).toEqual([true, true, false, false]);
    expect(refused(await limiter.peek('k'))).toBe(true);
    await expect(limiter.reward('k')).resolves.toBeUndefined();

    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]?.message).toMatch(/Redis is unreachable/);
    expect(JSON.stringify(logger.warnings[0]?.meta)).toContain(own.url);

    // close() while Redis is down settles, and again.
    await gateway.close();
    await gateway.close();
    expect(() => gateway.create('late', { points: 1, durationSeconds: 1 })).toThrow(/closed/);
  });

  it('close() quits cleanly and is idempotent', async () => {
    const gateway = await store(redis.url);
    await gateway.create('q', { points: 1, durationSeconds: 1 }).consume('k');
    await Promise.all([gateway.close(), gateway.close()]);
    await gateway.close();
  });
});

// Needs no redis-server: runs everywhere.
describe('Redis limiter store without a server', () => {
  it('fails fast at start on an unreachable Redis without revealing the password', async () => {
    const port = await freePort(); // nothing listens there
    for (const url of ['redis://:hunter2@127.0.0.1:1', `redis://admin:hunter2@127.0.0.1:${port}`]) {
      const started = performance.now();
      const error = await createLimiterStore({ redisUrl: url }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(performance.now() - started).toBeLessThan(3000);
      expect(error).toBeInstanceOf(Error);
      const message = (error as Error).message;
      expect(message).toMatch(/cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
      expect(message).not.toContain('hunter2');
      expect(message).not.toContain('admin');
      expect(String((error as Error).stack)).not.toContain('hunter2');
    }
  });
});
