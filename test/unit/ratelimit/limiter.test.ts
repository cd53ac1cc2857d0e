/**
 * Rate limiting with the in-memory store: the Limiter contract, tool limits, the auth
 * throttle (the HTTP check that charges requests is tested with the pipeline).
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { WardenError } from '../../../src/errors.js';
import { AuthThrottle, retryAfterSeconds } from '../../../src/ratelimit/httpLimits.js';
import { redactRedisUrl } from '../../../src/redis/connect.js';
import { createLimiterStore, validateRateRule, type Limiter, type LimiterStore, type RateDecision, type RateRule } from '../../../src/ratelimit/limiter.js';
import { ToolRateLimits, toolLimiterName } from '../../../src/ratelimit/toolLimits.js';

let store: LimiterStore;
let seq = 0;
/** A limiter with a name no other test uses. */
function fresh(rule: RateRule): Limiter {
  return store.create(`t${++seq}`, rule);
}

async function consumeN(limiter: Limiter, key: string, n: number): Promise<RateDecision[]> {
  const out: RateDecision[] = [];
  for (let i = 0; i < n; i++) out.push(await limiter.consume(key));
  return out;
}

beforeAll(async () => {
  store = await createLimiterStore({});
});

afterAll(async () => {
  await store.close();
});

describe('memory limiter store', () => {
  it('is not shared and closes idempotently', async () => {
    const own = await createLimiterStore({ keyPrefix: 'x' });
    expect(own.shared).toBe(false);
    await own.close();
    await own.close();
    expect(() => own.create('late', { points: 1, durationSeconds: 1 })).toThrow(/closed/);
  });

  it('allows `points` per window, then refuses with retryAfterMs within the window', async () => {
    const limiter = fresh({ points: 3, durationSeconds: 60 });
    const decisions = await consumeN(limiter, 'k', 4);
    expect(decisions.slice(0, 3)).toEqual([
      { allowed: true, remaining: 2 },
      { allowed: true, remaining: 1 },
      { allowed: true, remaining: 0 },
    ]);
    const refused = decisions[3];
    expect(refused?.allowed).toBe(false);
    if (refused?.allowed !== false) throw new Error('expected a refusal');
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('consumes several points at once and refuses what does not fit', async () => {
    const limiter = fresh({ points: 5, durationSeconds: 60 });
    expect(await limiter.consume('k', 4)).toEqual({ allowed: true, remaining: 1 });
    expect((await limiter.consume('k', 2)).allowed).toBe(false);
  });

  it('gives the budget back once the window has passed', async () => {
    jest.useFakeTimers();
    try {
      const limiter = fresh({ points: 1, durationSeconds: 2 });
      expect((await limiter.consume('k')).allowed).toBe(true);
      const refused = await limiter.consume('k');
      if (refused.allowed) throw new Error('expected a refusal');
      expect(refused.retryAfterMs).toBeLessThanOrEqual(2000);
      jest.advanceTimersByTime(refused.retryAfterMs - 1);
      expect((await limiter.consume('k')).allowed).toBe(false);
      jest.advanceTimersByTime(2001);
      expect(await limiter.consume('k')).toEqual({ allowed: true, remaining: 0 });
    } finally {
      jest.useRealTimers();
    }
  });

  it('peek does not consume and reports exhaustion', async () => {
    const limiter = fresh({ points: 2, durationSeconds: 60 });
    expect(await limiter.peek('k')).toEqual({ allowed: true, remaining: 2 });
    expect(await limiter.peek('k')).toEqual({ allowed: true, remaining: 2 });
    await limiter.consume('k');
    expect(await limiter.peek('k')).toEqual({ allowed: true, remaining: 1 });
    await limiter.consume('k');
    const peeked = await limiter.peek('k');
    expect(peeked.allowed).toBe(false);
    if (peeked.allowed) throw new Error('expected exhaustion');
    expect(peeked.retryAfterMs).toBeGreaterThan(0);
    expect(peeked.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('reward gives points back', async () => {
    const limiter = fresh({ points: 2, durationSeconds: 60 });
    await consumeN(limiter, 'k', 2);
    expect((await limiter.consume('k')).allowed).toBe(false); // the refused attempt counts too (3 used)
    await limiter.reward('k', 2);
    expect(await limiter.consume('k')).toEqual({ allowed: true, remaining: 0 });
    expect((await limiter.consume('k')).allowed).toBe(false);
  });

  it('keeps separate budgets per key and per limiter name', async () => {
    const a = store.create('same-rule-a', { points: 1, durationSeconds: 60 });
    const b = store.create('same-rule-b', { points: 1, durationSeconds: 60 });
    expect((await a.consume('k')).allowed).toBe(true);
    expect((await a.consume('k')).allowed).toBe(false);
    expect((await a.consume('other')).allowed).toBe(true);
    expect((await b.consume('k')).allowed).toBe(true);
  });

  it('returns the same limiter for the same name and rule, refuses a conflicting rule', () => {
    const first = store.create('dup', { points: 2, durationSeconds: 10 });
    expect(store.create('dup', { points: 2, durationSeconds: 10 })).toBe(first);
    expect(() => store.create('dup', { points: 3, durationSeconds: 10 })).toThrow(/different rule/);
  });

  it.each([
    [{ points: 0, durationSeconds: 1 }, /points/],
    [{ points: -1, durationSeconds: 1 }, /points/],
    [{ points: 1.5, durationSeconds: 1 }, /points/],
    [{ points: Number.NaN, durationSeconds: 1 }, /points/],
    [{ points: '5', durationSeconds: 1 }, /points/],
    [{ points: 1, durationSeconds: 0 }, /durationSeconds/],
    [{ points: 1, durationSeconds: 0.5 }, /durationSeconds/],
    [{ points: 1, durationSeconds: Infinity }, /durationSeconds/],
    [{ points: 1 }, /durationSeconds/],
  ])('rejects the rule %j with a TypeError naming the field', (rule, field) => {
    expect(() => validateRateRule(rule as unknown as RateRule)).toThrow(TypeError);
    expect(() => validateRateRule(rule as unknown as RateRule)).toThrow(field);
    expect(() => store.create(`bad${++seq}`, rule as unknown as RateRule)).toThrow(field);
  });

  it('rejects bad names, keys and point counts', async () => {
    const rule = { points: 1, durationSeconds: 1 };
    for (const name of ['', 'a:b', 'sp ace', 'x'.repeat(65)]) expect(() => store.create(name, rule)).toThrow(TypeError);
    const limiter = fresh(rule);
    await expect(limiter.consume('')).rejects.toThrow(TypeError);
    await expect(limiter.consume('k', 0)).rejects.toThrow(/points/);
    await expect(limiter.reward('k', 1.5)).rejects.toThrow(/points/);
  });

  it('rejects a redisUrl that is not a redis URL without echoing it', async () => {
    const attempt = createLimiterStore({ redisUrl: 'http://user:hunter2@example.com' });
    await expect(attempt).rejects.toThrow(TypeError);
    await expect(attempt).rejects.not.toThrow(/hunter2/);
  });

  it('redacts credentials from Redis URLs', () => {
    expect(redactRedisUrl('redis://:hunter2@127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactRedisUrl('rediss://user:pw@cache.internal:6380/2')).toBe('rediss://cache.internal:6380/2');
    expect(redactRedisUrl('not a url')).not.toContain('not a url');
  });
});

describe('ToolRateLimits', () => {
  it('keys budgets by scope and tool, and one limiter per distinct rule', async () => {
    const created: string[] = [];
    const spy: LimiterStore = {
      shared: false,
      keyPrefix: 'warden',
      close: async () => undefined,
      create: (name, rule) => (created.push(name), store.create(name, rule)),
    };
    const tools = new ToolRateLimits(spy);
    const rule = { points: 2, durationSeconds: 60 };
    expect((await tools.consume('role:user', 'echo', rule)).allowed).toBe(true);
    expect((await tools.consume('role:user', 'echo', rule)).allowed).toBe(true);
    expect((await tools.consume('role:user', 'echo', rule)).allowed).toBe(false);
    expect((await tools.consume('role:user', 'add', rule)).allowed).toBe(true);
    expect((await tools.consume('role:admin', 'echo', rule)).allowed).toBe(true);
    // Same rule, same limiter: created once.
    expect(created).toEqual([toolLimiterName(rule)]);
    // A different rule has its own budget for the same scope and tool.
    expect((await tools.consume('role:user', 'echo', { points: 5, durationSeconds: 60 })).allowed).toBe(true);
    expect(created).toEqual(['tool_2per60s', 'tool_5per60s']);
  });

  it('does not confuse a ":" in the scope with one in the tool name', async () => {
    const tools = new ToolRateLimits(store);
    const rule = { points: 1, durationSeconds: 61 };
    expect((await tools.consume('a:b', 'c', rule)).allowed).toBe(true);
    expect((await tools.consume('a', 'b:c', rule)).allowed).toBe(true);
  });

  it('validates the rule, scope and tool', async () => {
    const tools = new ToolRateLimits(store);
    await expect(tools.consume('s', 't', { points: 0, durationSeconds: 1 })).rejects.toThrow(/points/);
    await expect(tools.consume('', 't', { points: 1, durationSeconds: 1 })).rejects.toThrow(/scope/);
    await expect(tools.consume('s', '', { points: 1, durationSeconds: 1 })).rejects.toThrow(/tool/);
  });
});

describe('AuthThrottle', () => {
  it('lets an address through until its failures are used up, then throws 429 with retryAfter', async () => {
    const throttle = new AuthThrottle(fresh({ points: 3, durationSeconds: 300 }));
    for (let i = 0; i < 3; i++) {
      await expect(throttle.check('10.0.0.1')).resolves.toBeUndefined();
      await throttle.fail('10.0.0.1');
    }
    const error = await throttle.check('10.0.0.1').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WardenError);
    const warden = error as WardenError;
    expect(warden.code).toBe('rate_limited');
    expect(warden.status).toBe(429);
    expect(warden.retryAfter).toBeGreaterThanOrEqual(1);
    expect(warden.retryAfter).toBeLessThanOrEqual(300);
    expect(warden.data).toMatchObject({ limit: 'authFailuresPerAddress', max: 3 });
    // Further failures do not throw from fail(); other addresses are unaffected.
    await expect(throttle.fail('10.0.0.1')).resolves.toBeUndefined();
    await expect(throttle.check('10.0.0.2')).resolves.toBeUndefined();
  });

  it('check alone never uses up failures', async () => {
    const throttle = new AuthThrottle(fresh({ points: 1, durationSeconds: 60 }));
    for (let i = 0; i < 5; i++) await throttle.check('10.0.0.3');
    await throttle.fail('10.0.0.3');
    await expect(throttle.check('10.0.0.3')).rejects.toMatchObject({ code: 'rate_limited' });
  });
});

describe('retryAfterSeconds', () => {
  it.each([
    [1, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [59_500, 60],
    [0, 1],
  ])('%i ms -> %i s', (ms, s) => expect(retryAfterSeconds(ms)).toBe(s));
});
