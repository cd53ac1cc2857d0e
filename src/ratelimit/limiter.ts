/**
 * Named rate limiters over rate-limiter-flexible, in memory (one instance) or in Redis
 * (every gateway instance shares one budget).
 *
 * The library's contract: a limit that is hit rejects with a `RateLimiterRes`, anything
 * else rejects with an `Error`. Here the first becomes `{ allowed: false, retryAfterMs }`
 * and the second is rethrown, so callers never mistake a store failure for a refusal.
 *
 * Redis outages: every Redis limiter has an in-memory insurance limiter with the same rule.
 * While Redis is unreachable, limits hold per instance (N instances allow up to N times
 * the budget) instead of failing requests; one warning is logged per outage.
 */
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { connectWithin, redactRedisUrl } from '../redis/connect.js';

/** At most `points` per `durationSeconds`, per key. Both are positive integers. */
export interface RateRule {
  readonly points: number;
  readonly durationSeconds: number;
}

export type RateDecision = { readonly allowed: true; readonly remaining: number } | { readonly allowed: false; readonly retryAfterMs: number };

export interface Limiter {
  readonly rule: RateRule;
  /** Takes `points` (default 1) from `key`'s budget; refused when that would exceed the rule. */
  consume(key: string, points?: number): Promise<RateDecision>;
  /** Reads without consuming: `allowed: false` when the budget is exhausted. */
  peek(key: string): Promise<RateDecision>;
  /**
   * Gives `points` (default 1) back to `key`'s budget for the current window.
   * Giving back more than was consumed raises the budget of that window.
   */
  reward(key: string, points?: number): Promise<void>;
}

export interface LimiterStore {
  /**
   * The limiter called `name` (letters, digits, `_ . -`). Creating the same name twice
   * returns the same limiter; a different rule for an existing name is a TypeError.
   */
  create(name: string, rule: RateRule): Limiter;
  /** True when budgets are shared with other gateway instances (Redis). */
  readonly shared: boolean;
  /**
   * The Redis connection when there is one (other shared state, such as OAuth grants, uses
   * it too); closed by `close()`.
   */
  readonly redis?: Redis;
  /** The prefix of every key. */
  readonly keyPrefix: string;
  /** Idempotent. Quits the Redis client; limiters must not be used afterwards. */
  close(): Promise<void>;
}

export interface LimiterLogger {
  warn(message: string, meta?: object): void;
  info?(message: string, meta?: object): void;
}

export interface LimiterStoreOptions {
  /** `redis://` or `rediss://` URL. Without it, limits are kept in this process's memory. */
  readonly redisUrl?: string;
  /**
   * Prefix of every key, so several deployments can share one Redis.
   * @default 'warden'
   */
  readonly keyPrefix?: string;
  /** Receives the warning when Redis becomes unreachable (once per outage). */
  readonly logger?: LimiterLogger;
  /**
   * How long the first connection to Redis may take before the store fails to start.
   * @default 5000
   */
  readonly connectTimeoutMs?: number;
  /**
   * How long one Redis command may take before the in-memory insurance answers instead.
   * @default 1000
   */
  readonly commandTimeoutMs?: number;
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

function isPositiveInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

/** Checks a rule and returns a frozen copy; a bad field is a TypeError naming it. */
export function validateRateRule(rule: RateRule): RateRule {
  if (typeof rule !== 'object' || rule === null) throw new TypeError('rate rule must be an object');
  if (!isPositiveInt(rule.points)) throw new TypeError(`rate rule points must be a positive integer, got ${String(rule.points)}`);
  if (!isPositiveInt(rule.durationSeconds)) {
    throw new TypeError(`rate rule durationSeconds must be a positive integer, got ${String(rule.durationSeconds)}`);
  }
  return Object.freeze({ points: rule.points, durationSeconds: rule.durationSeconds });
}

function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('rate limit key must be a non-empty string');
}

function checkPoints(points: number): void {
  if (!isPositiveInt(points)) throw new TypeError(`points must be a positive integer, got ${String(points)}`);
}

/** Wraps one rate-limiter-flexible limiter in the Limiter contract. */
class FlexibleLimiter implements Limiter {
  constructor(
    readonly rule: RateRule,
    private readonly backend: RateLimiterAbstract,
  ) {}

  async consume(key: string, points = 1): Promise<RateDecision> {
    checkKey(key);
    checkPoints(points);
    try {
      const res = await this.backend.consume(key, points);
      return { allowed: true, remaining: res.remainingPoints };
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return this.refused(rejection);
      throw rejection;
    }
  }

  async peek(key: string): Promise<RateDecision> {
    checkKey(key);
    let res: RateLimiterRes | null;
    try {
      res = await this.backend.get(key);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return this.refused(rejection);
      throw rejection;
    }
    if (res === null) return { allowed: true, remaining: this.rule.points };
    if (res.consumedPoints >= this.rule.points) return this.refused(res);
    return { allowed: true, remaining: res.remainingPoints };
  }

  async reward(key: string, points = 1): Promise<void> {
    checkKey(key);
    checkPoints(points);
    await this.backend.reward(key, points);
  }

  /** `msBeforeNext` clamped to 1 ms .. the window (a key without expiry counts as a full window). */
  private refused(res: RateLimiterRes): RateDecision {
    const windowMs = this.rule.durationSeconds * 1000;
    const ms = res.msBeforeNext > 0 ? Math.ceil(res.msBeforeNext) : windowMs;
    return { allowed: false, retryAfterMs: Math.min(Math.max(1, ms), windowMs) };
  }
}

/** Keeps one limiter per name; the same name with another rule is a programming error. */
class Registry {
  private readonly limiters = new Map<string, Limiter>();
  closed = false;

  constructor(
    private readonly build: (prefix: string, rule: RateRule) => RateLimiterAbstract,
    private readonly keyPrefix: string,
  ) {}

  create(name: string, input: RateRule): Limiter {
    if (this.closed) throw new Error('limiter store is closed');
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new TypeError('limiter name must be 1-64 characters of letters, digits, _ . -');
    }
    const rule = validateRateRule(input);
    const existing = this.limiters.get(name);
    if (existing) {
      if (existing.rule.points !== rule.points || existing.rule.durationSeconds !== rule.durationSeconds) {
        throw new TypeError(`limiter ${name} already exists with a different rule`);
      }
      return existing;
    }
    const limiter = new FlexibleLimiter(rule, this.build(`${this.keyPrefix}:${name}`, rule));
    this.limiters.set(name, limiter);
    return limiter;
  }
}

/** An in-memory insurance limiter that reports each use (Redis did not answer). */
class InsuranceLimiter extends RateLimiterMemory {
  constructor(
    opts: ConstructorParameters<typeof RateLimiterMemory>[0],
    private readonly onUse: () => void,
  ) {
    super(opts);
  }
  override consume(...args: Parameters<RateLimiterMemory['consume']>): Promise<RateLimiterRes> {
    this.onUse();
    return super.consume(...args);
  }
  override get(...args: Parameters<RateLimiterMemory['get']>): Promise<RateLimiterRes | null> {
    this.onUse();
    return super.get(...args);
  }
  override reward(...args: Parameters<RateLimiterMemory['reward']>): Promise<RateLimiterRes> {
    this.onUse();
    return super.reward(...args);
  }
}

export async function createLimiterStore(options: LimiterStoreOptions = {}): Promise<LimiterStore> {
  const keyPrefix = options.keyPrefix ?? 'warden';
  if (typeof keyPrefix !== 'string' || keyPrefix.length === 0) throw new TypeError('keyPrefix must be a non-empty string');
  if (options.redisUrl === undefined) return memoryStore(keyPrefix);
  return redisStore(options.redisUrl, keyPrefix, options);
}

function memoryStore(keyPrefix: string): LimiterStore {
  const registry = new Registry((prefix, rule) => new RateLimiterMemory({ keyPrefix: prefix, points: rule.points, duration: rule.durationSeconds }), keyPrefix);
  return {
    shared: false,
    keyPrefix,
    create: (name, rule) => registry.create(name, rule),
    close: async () => {
      registry.closed = true;
    },
  };
}

async function redisStore(redisUrl: string, keyPrefix: string, options: LimiterStoreOptions): Promise<LimiterStore> {
  // Never echo the URL itself: it may carry a password.
  if (typeof redisUrl !== 'string' || !/^rediss?:\/\//.test(redisUrl)) {
    throw new TypeError('redisUrl must be a redis:// or rediss:// URL');
  }
  const where = redactRedisUrl(redisUrl);
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const commandTimeoutMs = options.commandTimeoutMs ?? 1000;
  if (!isPositiveInt(connectTimeoutMs)) throw new TypeError('connectTimeoutMs must be a positive integer');
  if (!isPositiveInt(commandTimeoutMs)) throw new TypeError('commandTimeoutMs must be a positive integer');
  const logger = options.logger;

  const client = new Redis(redisUrl, {
    lazyConnect: true,
    // Fail fast instead of queueing while disconnected: the insurance limiter answers.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: connectTimeoutMs,
    commandTimeout: commandTimeoutMs,
    // Bounds how long disconnect() may keep a timer alive on an already-closed socket.
    disconnectTimeout: 200,
  });

  let started = false;
  let closing = false;
  let degraded = false;
  let lastError: Error | undefined;
  const outage = (reason: string): void => {
    if (!started || closing || degraded) return;
    degraded = true;
    logger?.warn('Redis is unreachable: rate limits are per instance until it is back', { redis: where, reason });
  };
  // An 'error' listener is required: without one ioredis prints to the console.
  client.on('error', (error: Error) => {
    lastError = error;
    outage(error.message);
  });
  client.on('close', () => outage('connection closed'));
  client.on('ready', () => {
    if (!degraded) return;
    degraded = false;
    logger?.info?.('Redis is reachable again: rate limits are shared again', { redis: where });
  });

  await connectWithin(client, { where, timeoutMs: connectTimeoutMs, lastError: () => lastError });
  started = true;

  const registry = new Registry((prefix, rule) => {
    const limits = { keyPrefix: prefix, points: rule.points, duration: rule.durationSeconds };
    return new RateLimiterRedis({
      ...limits,
      storeClient: client,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new InsuranceLimiter(limits, () => outage('a Redis command failed')),
    });
  }, keyPrefix);

  let closed: Promise<void> | undefined;
  return {
    shared: true,
    redis: client,
    keyPrefix,
    create: (name, rule) => registry.create(name, rule),
    close: () => (closed ??= quit()),
  };

  async function quit(): Promise<void> {
    closing = true;
    registry.closed = true;
    const status = client.status;
    if (status === 'end') return;
    if (status === 'ready') {
      await client.quit().catch(() => client.disconnect());
    } else {
      client.disconnect();
      // While waiting to reconnect there is no socket: disconnect() only cancels the retry.
      if (status === 'reconnecting' || status === 'wait') return;
    }
    if (client.status !== 'end') await endOrTimeout(client, 1000);
  }
}

/** Waits for the client's 'end' event, at most `ms`. */
async function endOrTimeout(client: Redis, ms: number): Promise<void> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), ms);
  try {
    await once(client, 'end', { signal: abort.signal });
  } catch {
    // timed out: the socket is being destroyed by ioredis's own disconnect timer
  } finally {
    clearTimeout(timer);
  }
}
