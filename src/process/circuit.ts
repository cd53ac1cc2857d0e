/**
 * A per-command circuit breaker for start failures. Closed: starts allowed. Open: every
 * start is refused until the cooldown passes. Half-open: one trial start; success closes
 * the circuit, failure opens it again with a doubled cooldown (up to a maximum).
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitOptions {
  /** Cooldown after the first failure that opens the circuit. @default 5000 */
  readonly baseCooldownMs: number;
  /** Longest cooldown. @default 300000 */
  readonly maxCooldownMs: number;
}

export const DEFAULT_CIRCUIT: CircuitOptions = { baseCooldownMs: 5_000, maxCooldownMs: 300_000 };

export class CircuitBreaker {
  private stateValue: CircuitState = 'closed';
  private openedAt = 0;
  private cooldownMs: number;
  private trialInFlight = false;

  constructor(
    private readonly options: CircuitOptions = DEFAULT_CIRCUIT,
    private readonly now: () => number = Date.now,
  ) {
    this.cooldownMs = options.baseCooldownMs;
  }

  get state(): CircuitState {
    if (this.stateValue === 'open' && this.now() - this.openedAt >= this.cooldownMs) this.stateValue = 'half-open';
    return this.stateValue;
  }

  /** Milliseconds until a start may be tried again (0 when allowed now). */
  retryAfterMs(): number {
    if (this.state !== 'open') return 0;
    return Math.max(0, this.openedAt + this.cooldownMs - this.now());
  }

  /** True when a start may proceed now; in half-open state only one trial at a time. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  recordSuccess(): void {
    this.trialInFlight = false;
    this.stateValue = 'closed';
    this.cooldownMs = this.options.baseCooldownMs;
  }

  recordFailure(): void {
    const state = this.state; // moves open -> half-open when the cooldown has passed
    const wasTrial = this.trialInFlight || state === 'half-open';
    this.trialInFlight = false;
    if (state === 'open') return;
    if (wasTrial) this.cooldownMs = Math.min(this.cooldownMs * 2, this.options.maxCooldownMs);
    this.stateValue = 'open';
    this.openedAt = this.now();
  }
}
