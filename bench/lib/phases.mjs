// The measured phases for one started target and one client kind. Every await is bounded:
// client sessions time out each request themselves, and session setup/teardown is
// wrapped in withTimeout here.
import { randomBytes } from 'node:crypto';
import { mapLimit, sleep, withTimeout } from './util.mjs';
import { msSince, summarize } from './stats.mjs';

const OPEN_TIMEOUT_MS = 60_000;
const CLOSE_TIMEOUT_MS = 10_000;

const PAYLOAD_16 = 'abcdefghijklmnop';
const PAYLOAD_64K = 'x'.repeat(64 * 1024 - 16) + '0123456789abcdef';

async function openSession(inst, client, variant) {
  const s = inst.session(client, variant);
  try {
    await withTimeout(s.open(), OPEN_TIMEOUT_MS, `open ${client} session`);
  } catch (error) {
    await withTimeout(s.close(), CLOSE_TIMEOUT_MS, 'close after failed open').catch(() => {});
    throw error;
  }
  return s;
}

const closeSession = (s) => withTimeout(s.close(), CLOSE_TIMEOUT_MS, 'close session').catch(() => {});

/** Connect + initialize, median of `n`: 'cold' and, for mcp-warden, 'warm' from the pool. */
export async function connectPhase(inst, client, settings) {
  const out = {};
  const variants = inst.hasWarmPool ? ['cold', 'warm'] : ['cold'];
  for (const variant of variants) {
    const samples = [];
    let failures = 0;
    for (let i = 0; i < settings.connectSamples; i += 1) {
      if (variant === 'warm') await inst.waitWarm();
      const t0 = process.hrtime.bigint();
      try {
        const s = await openSession(inst, client, variant);
        samples.push(msSince(t0));
        await closeSession(s);
      } catch {
        failures += 1;
      }
      await sleep(200); // let the stopped child go before the next sample
    }
    out[variant] = { ...summarize(samples), failures };
  }
  return out;
}

/** Sequential echo latency with 16 B and 64 KiB messages, then throughput on the same session. */
export async function latencyAndThroughputPhase(inst, client, settings) {
  const s = await openSession(inst, client, 'warm');
  const result = { errors: 0 };
  try {
    // Each size gets at most `latencyBudgetMs`: on a loaded machine the run still ends in
    // time, with fewer samples (reported as truncated).
    const timed = async (message, count) => {
      const samples = [];
      const expected = `Echo: ${message}`;
      const deadline = Date.now() + settings.latencyBudgetMs;
      for (let i = 0; i < count; i += 1) {
        if (Date.now() > deadline) {
          const note = `${samples.length}/${count} calls of ${message.length} B within ${settings.latencyBudgetMs} ms`;
          result.truncated = result.truncated ? `${result.truncated}; ${note}` : note;
          break;
        }
        const t0 = process.hrtime.bigint();
        try {
          const text = await s.echo(message);
          samples.push(msSince(t0));
          if (text !== expected) result.errors += 1;
        } catch {
          result.errors += 1;
        }
      }
      return samples;
    };
    await timed(PAYLOAD_16, settings.warmup);
    result.lat16 = await timed(PAYLOAD_16, settings.calls16);
    await timed(PAYLOAD_64K, Math.max(10, Math.round(settings.warmup / 10)));
    result.lat64k = await timed(PAYLOAD_64K, settings.calls64k);
    result.throughput = await throughput(s, settings);
    result.errors += s.errors;
    result.strays = s.strays;
  } finally {
    await closeSession(s);
  }
  return result;
}

/** `inFlight` workers keep one call each outstanding for `throughputMs`; calls/s. */
export async function throughput(s, settings) {
  const expected = `Echo: ${PAYLOAD_16}`;
  let done = 0;
  let errors = 0;
  const t0 = process.hrtime.bigint();
  const deadline = Date.now() + settings.throughputMs;
  const worker = async () => {
    while (Date.now() < deadline) {
      try {
        const text = await s.echo(PAYLOAD_16);
        if (text === expected) done += 1;
        else errors += 1;
      } catch {
        errors += 1;
        await sleep(1);
      }
    }
  };
  await Promise.all(Array.from({ length: settings.inFlight }, worker));
  const elapsedMs = msSince(t0);
  return { calls: done, errors, elapsedMs, perSecond: (done / elapsedMs) * 1000 };
}

/** A payload no other call of the run uses, with multi-byte characters to catch bad framing. */
const uniquePayload = (session, call) => `s${session}-c${call}-${randomBytes(6).toString('hex')}-é€😀-${'z'.repeat((session * 7 + call) % 23)}`;

/**
 * `sessions` concurrent sessions, each making `calls` sequential echo calls with unique
 * payloads; every reply is compared byte for byte. Times setup and the calls separately.
 */
export async function correctnessPhase(inst, client, settings) {
  const n = settings.corrSessions;
  const t0 = process.hrtime.bigint();
  // Opened 8 at a time (mcp-warden spawns 4 at a time by default anyway): 50 cold Node
  // servers at once on 2 cores can exceed any sane connect timeout for every target.
  const opened = await mapLimit(Array.from({ length: n }), 8, () =>
    openSession(inst, client, 'warm').then(
      (s) => s,
      (e) => ({ failed: e }),
    ),
  );
  const setupMs = msSince(t0);
  const sessions = opened.filter((s) => !s.failed);
  const openFailures = n - sessions.length;
  let ok = 0;
  let mismatches = 0;
  let errors = openFailures * settings.corrCalls;
  const t1 = process.hrtime.bigint();
  await Promise.all(
    sessions.map(async (s, i) => {
      for (let c = 0; c < settings.corrCalls; c += 1) {
        const message = uniquePayload(i, c);
        try {
          const text = await s.echo(message);
          if (text === `Echo: ${message}`) ok += 1;
          else mismatches += 1;
        } catch {
          errors += 1;
        }
      }
    }),
  );
  const callsMs = msSince(t1);
  await sleep(100); // late duplicates still count as strays
  const strays = sessions.reduce((a, s) => a + s.strays, 0);
  errors += sessions.reduce((a, s) => a + s.errors, 0);
  await mapLimit(sessions, 16, closeSession);
  const firstFailure = opened.find((s) => s.failed)?.failed;
  return {
    sessions: n,
    calls: n * settings.corrCalls,
    ok,
    mismatches,
    strays,
    errors,
    openFailures,
    firstOpenError: firstFailure ? String(firstFailure.message).slice(0, 200) : undefined,
    setupMs,
    callsMs,
  };
}

/**
 * Opens up to `n` raw Streamable HTTP sessions (initialize only) and keeps them open;
 * samples the gateway's RSS before and after. Stops opening at the first `maxFailures`
 * failures or when `budgetMs` runs out, and reports how many it got.
 */
export async function idleSessionsPhase(inst, n, { budgetMs = 240_000, concurrency = 16, maxFailures = 20 } = {}) {
  await sleep(1000);
  const before = inst.monitor.sampleRss();
  const deadline = Date.now() + budgetMs;
  const sessions = [];
  let failures = 0;
  let firstError;
  const t0 = process.hrtime.bigint();
  await mapLimit(
    Array.from({ length: n }, (_, i) => i),
    concurrency,
    async () => {
      if (Date.now() > deadline || failures >= maxFailures) return;
      try {
        sessions.push(await openSession(inst, 'raw', 'warm'));
      } catch (error) {
        failures += 1;
        firstError ??= String(error.message).slice(0, 200);
      }
    },
  );
  const setupMs = msSince(t0);
  await sleep(2000);
  const after = inst.monitor.sampleRss();
  let children;
  if (inst.status)
    children = await inst.status().then(
      (st) => st.children,
      () => undefined,
    );
  const opened = sessions.length;
  // No DELETE per session: stopping the target ends them all (and is what is timed out).
  for (const s of sessions) s.closed = true;
  return {
    requested: n,
    opened,
    failures,
    firstError,
    setupMs,
    before,
    after,
    children: children ?? Math.max(0, after.procs - 1),
    perSessionOwn: opened > 0 ? (after.own - before.own) / opened : undefined,
    perSessionTree: opened > 0 ? (after.tree - before.tree) / opened : undefined,
  };
}
