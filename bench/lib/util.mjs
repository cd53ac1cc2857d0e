// Small helpers shared by every part of the bench: bounded waits, settings, paths.
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = resolve(BENCH_DIR, '..');
export const WORK_DIR = resolve(ROOT, '.bench');
export const EVERYTHING = resolve(ROOT, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
export const IDLE_FIXTURE = resolve(BENCH_DIR, 'fixtures/idle-server.awk');
export const PROTOCOL_VERSION = '2025-06-18';
/** The stateless revision mcp-warden also serves on `/<key>/mcp`. */
export const MODERN_PROTOCOL_VERSION = '2026-07-28';

/** Thrown by {@link withTimeout}; carries the label of what took too long. */
export class TimeoutError extends Error {
  constructor(label, ms) {
    super(`timed out after ${ms} ms: ${label}`);
    this.name = 'TimeoutError';
  }
}

/** Races `promise` against a timer; the timer is always cleared. */
export function withTimeout(promise, ms, label) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(label, ms)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (sync or async) every `intervalMs` until truthy or `ms` elapse. */
export async function waitFor(check, ms, label, intervalMs = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() >= deadline) throw new TimeoutError(label, ms);
    await sleep(intervalMs);
  }
}

/** Runs `fn(item, index)` over `items` with at most `limit` at once. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const num = (name, fallback) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return value;
};

/**
 * Every count the bench uses, scaled by BENCH_SCALE (0.1 for a quick run). Counts never
 * drop below a floor that keeps percentiles meaningful.
 */
export function loadSettings() {
  const scale = num('BENCH_SCALE', 1);
  const s = (n, floor) => Math.max(floor, Math.round(n * scale));
  const list = (name) =>
    process.env[name]
      ? process.env[name]
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)
      : undefined;
  return {
    scale,
    reps: Math.round(num('BENCH_REPS', 3)),
    connectSamples: s(10, 3),
    warmup: s(200, 20),
    calls16: s(2000, 100),
    calls64k: s(300, 30),
    throughputMs: s(3000, 500),
    inFlight: 16,
    corrSessions: 50,
    corrCalls: 20,
    firstCalls: Math.round(num('BENCH_FIRST_CALLS', s(20, 10))),
    idleN: Math.round(num('BENCH_IDLE_N', 1000)),
    idleRealN: Math.round(num('BENCH_IDLE_REAL_N', s(100, 10))),
    idlePeerN: Math.round(num('BENCH_IDLE_PEER_N', 1000)),
    policyEvals: s(200_000, 20_000),
    targets: list('BENCH_TARGETS'),
    clients: list('BENCH_CLIENTS'),
    latencyBudgetMs: Math.round(num('BENCH_LATENCY_BUDGET_MS', 20_000)),
    waitLoad: process.env.BENCH_WAIT_LOAD ? num('BENCH_WAIT_LOAD', 1) : undefined,
    waitLoadMs: Math.round(num('BENCH_WAIT_LOAD_MS', 600_000)),
    callTimeoutMs: 30_000,
    sampleMs: 100,
  };
}

export const fmtMs = (v, digits = 3) => (v === undefined || v === null || Number.isNaN(v) ? 'n/a' : v.toFixed(digits));
