/**
 * Sessions per client counted across every machine, when the machines share a Redis: each
 * open session holds a slot, a member of the client's sorted set whose score is the time it
 * expires. The machine holding it pushes that time forward every third of the TTL
 * (heartbeat), so the slots of a machine that crashed stop counting one TTL later; a session
 * that closes gives its slot back at once. Taking a slot is one script (prune expired, count,
 * add), so two machines cannot both take the last one. While Redis does not answer, sessions
 * are counted per machine only (one warning per outage), never refused for it.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LimitReachedError } from '../errors.js';

export interface SessionSlots {
  /**
   * Takes one of the `max` session slots of `clientKey` counted across every machine:
   * rejects with a 429 `rate_limited` LimitReachedError when none is free; resolves with the
   * release (idempotent) to call when the session ends.
   */
  take(clientKey: string, max: number): Promise<() => void>;
  /** Gives back every slot this machine holds and stops the heartbeat. Idempotent. */
  close(): Promise<void>;
}

export interface RedisSessionSlotsOptions {
  readonly redis: Redis;
  /** Prefix of the keys (the deployment's `--redis-prefix`). */
  readonly keyPrefix: string;
  /** Names this gateway instance in its slots (the machine id on Fly.io). */
  readonly instance: string;
  readonly logger: { warn(message: string, meta?: object): void; info(message: string, meta?: object): void };
  /** How long a slot counts without a heartbeat, ms. @default 60000 */
  readonly ttlMs?: number;
}

/** KEYS[1] the client's set; ARGV: now, expiry, max, member, key TTL (ms). 1: taken, 0: full. */
const TAKE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

export class RedisSessionSlots implements SessionSlots {
  /** Slots held by this instance: member -> the client's key. */
  private readonly held = new Map<string, string>();
  private readonly ttlMs: number;
  private readonly timer: NodeJS.Timeout;
  private degraded = false;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: RedisSessionSlotsOptions) {
    this.ttlMs = options.ttlMs ?? 60_000;
    if (!Number.isSafeInteger(this.ttlMs) || this.ttlMs < 3) throw new TypeError('ttlMs must be an integer of at least 3');
    this.timer = setInterval(() => void this.heartbeat(), Math.floor(this.ttlMs / 3));
    this.timer.unref();
  }

  async take(clientKey: string, max: number): Promise<() => void> {
    const key = `${this.options.keyPrefix}:sessions:${clientKey}`;
    const member = `${this.options.instance}:${randomUUID()}`;
    const now = Date.now();
    let taken: unknown;
    try {
      taken = await this.options.redis.eval(TAKE, 1, key, now, now + this.ttlMs, max, member, this.ttlMs * 2);
    } catch (error) {
      this.outage(error);
      return () => undefined;
    }
    this.reachable();
    if (taken !== 1) throw new LimitReachedError('maxSessionsPerClient', max, 5, 'rate_limited');
    this.held.set(member, key);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held.delete(member);
      this.options.redis.zrem(key, member).catch((error: unknown) => this.outage(error));
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.timer);
      const pipeline = this.options.redis.pipeline();
      for (const [member, key] of this.held) pipeline.zrem(key, member);
      this.held.clear();
      await pipeline.exec().catch(() => undefined);
    })();
    return this.closing;
  }

  /** Pushes the expiry of every slot held here forward. */
  private async heartbeat(): Promise<void> {
    if (this.held.size === 0 || this.closing) return;
    const expires = Date.now() + this.ttlMs;
    const pipeline = this.options.redis.pipeline();
    for (const [member, key] of this.held) pipeline.zadd(key, expires, member).pexpire(key, this.ttlMs * 2);
    try {
      const failed = (await pipeline.exec())?.find(([error]) => error)?.[0];
      if (failed) throw failed;
      this.reachable();
    } catch (error) {
      this.outage(error);
    }
  }

  private outage(error: unknown): void {
    if (this.degraded || this.closing) return;
    this.degraded = true;
    this.options.logger.warn('Redis is unreachable: sessions per client are counted per machine until it is back', {
      error: error instanceof Error ? error.message : String(error),
    });
  }

  private reachable(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.options.logger.info('Redis is reachable again: sessions per client are counted across machines again');
  }
}
