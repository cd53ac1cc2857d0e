/**
 * Rate limits at the HTTP edge: requests per client, and failed authentications per
 * address (checked before the secret is compared, so guessing is throttled too).
 *
 * A refused request gets 429 `rate_limited` with `Retry-After` through sendError.
 * A limiter that fails for any other reason is not a refusal: Redis outages are already
 * absorbed by the store's in-memory insurance limiter, so what remains is a bug or a
 * misconfiguration and goes to the error handler as a 500 (never a silent pass, never a
 * fake 429).
 */
import { LimitReachedError } from '../errors.js';
import type { Limiter } from './limiter.js';

/** Whole seconds for `Retry-After`, at least 1. */
export function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000));
}

/** Takes one point from `key`'s request budget: the 429 to answer with, or undefined. */
export async function takeRequest(limiter: Limiter, key: string): Promise<LimitReachedError | undefined> {
  const decision = await limiter.consume(key);
  if (decision.allowed) return undefined;
  return new LimitReachedError('httpRequestsPerClient', limiter.rule.points, retryAfterSeconds(decision.retryAfterMs), 'rate_limited');
}

/**
 * Failed authentications per address. `check` runs before the secret is compared and
 * refuses an address with no failures left; `fail` records one failure. Successful
 * authentications cost nothing.
 */
export class AuthThrottle {
  constructor(private readonly limiter: Limiter) {}

  /** Throws a 429 `rate_limited` WardenError (with `retryAfter`) when `address` has no failures left. */
  async check(address: string): Promise<void> {
    const decision = await this.limiter.peek(address);
    if (decision.allowed) return;
    throw new LimitReachedError('authFailuresPerAddress', this.limiter.rule.points, retryAfterSeconds(decision.retryAfterMs), 'rate_limited');
  }

  /** Records one failed authentication from `address`. */
  async fail(address: string): Promise<void> {
    // A refusal here only means the address is already out of failures; check() answers it.
    await this.limiter.consume(address);
  }
}
