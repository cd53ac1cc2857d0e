import { describe, expect, it } from '@jest/globals';
import { CircuitBreaker, DEFAULT_CIRCUIT, type CircuitOptions } from '../../../src/process/circuit.js';

/** A breaker on a clock the test moves by hand. */
function breaker(options: CircuitOptions = { baseCooldownMs: 1_000, maxCooldownMs: 8_000 }) {
  let now = 1_000_000;
  const circuit = new CircuitBreaker(options, () => now);
  return {
    circuit,
    advance(ms: number) {
      now += ms;
    },
  };
}

/** Opens the circuit with a failure, waits out the cooldown, takes the trial and fails it. */
function failTrial(b: ReturnType<typeof breaker>, cooldownMs: number): void {
  b.advance(cooldownMs);
  expect(b.circuit.state).toBe('half-open');
  expect(b.circuit.tryAcquire()).toBe(true);
  b.circuit.recordFailure();
}

describe('CircuitBreaker', () => {
  it('starts closed: every start is allowed, no retry delay', () => {
    const { circuit } = breaker();
    expect(circuit.state).toBe('closed');
    for (let i = 0; i < 5; i += 1) expect(circuit.tryAcquire()).toBe(true);
    expect(circuit.retryAfterMs()).toBe(0);
  });

  it('defaults: 5 s base cooldown, 5 min maximum, the real clock', () => {
    expect(DEFAULT_CIRCUIT).toEqual({ baseCooldownMs: 5_000, maxCooldownMs: 300_000 });
    const circuit = new CircuitBreaker();
    circuit.recordFailure();
    expect(circuit.state).toBe('open');
    const retry = circuit.retryAfterMs();
    expect(retry).toBeGreaterThan(4_000);
    expect(retry).toBeLessThanOrEqual(5_000);
  });

  it('a failure opens it: starts are refused and retryAfterMs counts down to the cooldown end', () => {
    const b = breaker();
    b.circuit.recordFailure();
    expect(b.circuit.state).toBe('open');
    expect(b.circuit.tryAcquire()).toBe(false);
    expect(b.circuit.retryAfterMs()).toBe(1_000);
    b.advance(400);
    expect(b.circuit.tryAcquire()).toBe(false);
    expect(b.circuit.retryAfterMs()).toBe(600);
    b.advance(599);
    expect(b.circuit.state).toBe('open');
    expect(b.circuit.retryAfterMs()).toBe(1);
  });

  it('half-opens exactly when the cooldown has passed, with no retry delay', () => {
    const b = breaker();
    b.circuit.recordFailure();
    b.advance(1_000);
    expect(b.circuit.state).toBe('half-open');
    expect(b.circuit.retryAfterMs()).toBe(0);
  });

  it('half-open allows one trial at a time', () => {
    const b = breaker();
    b.circuit.recordFailure();
    b.advance(1_000);
    expect(b.circuit.tryAcquire()).toBe(true);
    expect(b.circuit.tryAcquire()).toBe(false);
    expect(b.circuit.tryAcquire()).toBe(false);
    expect(b.circuit.state).toBe('half-open');
    b.advance(60_000); // however long the trial takes
    expect(b.circuit.tryAcquire()).toBe(false);
  });

  it('a successful trial closes it and resets the cooldown to the base', () => {
    const b = breaker();
    b.circuit.recordFailure();
    failTrial(b, 1_000); // cooldown now 2 s
    failTrial(b, 2_000); // cooldown now 4 s
    expect(b.circuit.retryAfterMs()).toBe(4_000);
    b.advance(4_000);
    expect(b.circuit.tryAcquire()).toBe(true);
    b.circuit.recordSuccess();
    expect(b.circuit.state).toBe('closed');
    expect(b.circuit.tryAcquire()).toBe(true);
    expect(b.circuit.tryAcquire()).toBe(true);
    // The next failure starts again from the base cooldown.
    b.circuit.recordFailure();
    expect(b.circuit.retryAfterMs()).toBe(1_000);
  });

  it('a failed trial reopens it with a doubled cooldown, up to the maximum', () => {
    const b = breaker({ baseCooldownMs: 1_000, maxCooldownMs: 5_000 });
    b.circuit.recordFailure();
    expect(b.circuit.retryAfterMs()).toBe(1_000);
    const seen: number[] = [];
    let cooldown = 1_000;
    for (let i = 0; i < 5; i += 1) {
      failTrial(b, cooldown);
      expect(b.circuit.state).toBe('open');
      expect(b.circuit.tryAcquire()).toBe(false);
      cooldown = b.circuit.retryAfterMs();
      seen.push(cooldown);
    }
    expect(seen).toEqual([2_000, 4_000, 5_000, 5_000, 5_000]);
  });

  it('the reopened cooldown counts from the failed trial, not from the first failure', () => {
    const b = breaker();
    b.circuit.recordFailure();
    b.advance(1_000);
    expect(b.circuit.tryAcquire()).toBe(true);
    b.advance(700); // the trial took a while before failing
    b.circuit.recordFailure();
    expect(b.circuit.retryAfterMs()).toBe(2_000);
    b.advance(1_999);
    expect(b.circuit.state).toBe('open');
    b.advance(1);
    expect(b.circuit.state).toBe('half-open');
  });

  it('a failure reported in half-open state without a trial (a child dying late) reopens it, doubled', () => {
    const b = breaker();
    b.circuit.recordFailure();
    b.advance(1_000);
    expect(b.circuit.state).toBe('half-open');
    b.circuit.recordFailure(); // e.g. supervisor.watch: a child that died before answering
    expect(b.circuit.state).toBe('open');
    expect(b.circuit.retryAfterMs()).toBe(2_000);
  });

  // BUG (src/process/circuit.ts): `state` moves 'open' to 'half-open' lazily, and
  // recordFailure() looks at the stored value. So the test above depends on having read
  // `state` first: without that read the same failure is ignored and the circuit is
  // half-open at once. Anything that reads the state (GET /status polls health()) changes
  // how the breaker reacts. Fix: recordFailure() should use the getter (`this.state`).
  it('reading `state` does not change how a later failure is counted', () => {
    const observed = breaker();
    const unobserved = breaker();
    for (const b of [observed, unobserved]) {
      b.circuit.recordFailure();
      b.advance(1_000);
    }
    void observed.circuit.state; // e.g. a /status poll
    observed.circuit.recordFailure();
    unobserved.circuit.recordFailure();
    expect(unobserved.circuit.state).toBe(observed.circuit.state);
    expect(unobserved.circuit.retryAfterMs()).toBe(observed.circuit.retryAfterMs());
  });

  it('further failures while open neither extend nor double the cooldown', () => {
    const b = breaker();
    b.circuit.recordFailure();
    b.advance(300);
    b.circuit.recordFailure();
    b.circuit.recordFailure();
    expect(b.circuit.retryAfterMs()).toBe(700);
    b.advance(700);
    expect(b.circuit.state).toBe('half-open');
  });

  it('after a failed trial, the next trial is allowed again once the new cooldown passes', () => {
    const b = breaker();
    b.circuit.recordFailure();
    failTrial(b, 1_000);
    expect(b.circuit.tryAcquire()).toBe(false);
    b.advance(2_000);
    expect(b.circuit.tryAcquire()).toBe(true); // the failed trial released the slot
    expect(b.circuit.tryAcquire()).toBe(false);
  });
});
