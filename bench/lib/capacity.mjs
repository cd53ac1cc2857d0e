// Capacity: how many sessions one machine holds under a 1 GB memory budget
// (`--memory-budget-mb 1024`) with the real server-everything, when 5% of the sessions are
// active (each calling echo once a second): one child per session (isolated), children
// that sleep when idle ("idle": "hibernate"), and one shared child ("mode": "shared"). For
// hibernation also the largest active share at which every call is still answered, and the
// latency of the first call after a sleep, with and without a warm spare. Throughout, the
// gateway's tree is sampled from /proc (gateway + children never above the budget by more
// than one child's cost) and its log is read for children that died of a SIGKILL the
// gateway did not send (the kernel's OOM killer).
//
//   node bench/run.mjs --capacity-only     (BENCH_CAPACITY_* knobs below, BENCH_SCALE)
import os from 'node:os';
import { RssSampler } from './procs.mjs';
import { RawStreamableSession } from './rawClients.mjs';
import { summarize, msSince } from './stats.mjs';
import { mapLimit, sleep, waitFor, withTimeout } from './util.mjs';
import { SECRET, SERVERS, startWarden } from '../servers/targets.mjs';

const MiB = 1024 * 1024;
const KEY = 'everything';
const CALL_TIMEOUT_MS = 10_000;

const num = (name, fallback) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return value;
};

/** The knobs of this phase; counts follow BENCH_SCALE like the rest of the bench. */
export function capacitySettings(scale = 1) {
  const s = (n, floor) => Math.max(floor, Math.round(n * scale));
  return {
    budgetMb: num('BENCH_CAPACITY_BUDGET_MB', 1024),
    activeShare: num('BENCH_CAPACITY_ACTIVE', 0.05),
    hibernatingN: Math.round(num('BENCH_CAPACITY_N', s(200, 40))),
    isolatedN: Math.round(num('BENCH_CAPACITY_ISOLATED_N', s(40, 20))),
    sharedN: Math.round(num('BENCH_CAPACITY_SHARED_N', s(1000, 200))),
    activeMs: Math.round(num('BENCH_CAPACITY_ACTIVE_MS', s(20_000, 8_000))),
    stepMs: Math.round(num('BENCH_CAPACITY_STEP_MS', s(10_000, 6_000))),
    shares: [0.05, 0.06, 0.075, 0.1, 0.15, 0.2, 0.3],
    hibernateAfterMs: Math.round(num('BENCH_CAPACITY_HIBERNATE_MS', 3_000)),
    resumeN: Math.round(num('BENCH_CAPACITY_RESUME_N', s(15, 6))),
    openConcurrency: 4,
  };
}

const ENTRIES = {
  isolated: () => ({ [KEY]: { ...SERVERS.everything } }),
  hibernating: (cs) => ({ [KEY]: { ...SERVERS.everything, idle: 'hibernate', hibernateAfterMs: cs.hibernateAfterMs } }),
  shared: () => ({ [KEY]: { ...SERVERS.everything, mode: 'shared' } }),
};

/** A gateway for `entries` under the budget, with its log watched for kills it did not send. */
async function startCapacityGateway(entries, cs, poolMin, file) {
  const w = await startWarden({ entries, poolMin, file, extraArgs: ['--memory-budget-mb', String(cs.budgetMb)] });
  const watch = { kernelKills: 0, budgetLine: undefined, refusals: 0 };
  w.service.lineListeners.add((line) => {
    if (!line.startsWith('{')) return;
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      return;
    }
    if (entry.message === 'child exited' && entry.reason === 'exited' && entry.signal === 'SIGKILL') watch.kernelKills += 1;
    if (entry.message === 'memory budget') watch.budgetLine = entry;
    if (entry.message === 'new child refused: memory budget') watch.refusals += 1;
  });
  const url = `http://127.0.0.1:${w.port}/${encodeURIComponent(KEY)}/mcp`;
  return { ...w, watch, session: () => new RawStreamableSession(url, { authorization: `Bearer ${SECRET}` }, CALL_TIMEOUT_MS) };
}

/** Opens `n` sessions, `concurrency` at a time; resolves with the ones that opened. */
async function openMany(gw, n, concurrency) {
  const sessions = [];
  let failures = 0;
  let firstError;
  const t0 = process.hrtime.bigint();
  await mapLimit(
    Array.from({ length: n }, (_, i) => i),
    concurrency,
    async (i) => {
      const s = gw.session();
      try {
        await withTimeout(s.open(), 90_000, 'open');
        sessions[i] = s;
      } catch (error) {
        failures += 1;
        firstError ??= String(error.message).slice(0, 200);
      }
    },
  );
  return { sessions: sessions.filter(Boolean), failures, firstError, setupMs: msSince(t0) };
}

/** `active` sessions each call echo once a second for `ms`; every call is counted. */
async function runActive(active, ms) {
  const latencies = [];
  let failed = 0;
  let firstError;
  const deadline = Date.now() + ms;
  await Promise.all(
    active.map(async (s, i) => {
      await sleep((i * 1000) / active.length); // spread over the second
      while (Date.now() < deadline) {
        const next = Date.now() + 1000;
        const t0 = process.hrtime.bigint();
        try {
          const text = await s.echo(`active ${i}`);
          if (text !== `Echo: active ${i}`) throw new Error(`wrong answer ${JSON.stringify(text).slice(0, 80)}`);
          latencies.push(msSince(t0));
        } catch (error) {
          failed += 1;
          firstError ??= String(error.message).slice(0, 200);
        }
        await sleep(Math.max(0, next - Date.now()));
      }
    }),
  );
  return { calls: latencies.length + failed, answered: latencies.length, failed, firstError, latency: summarize(latencies) };
}

/** Picks `k` sessions spread evenly over `sessions` (the most recent for isolated ones, which survive). */
function pick(sessions, k, recent) {
  if (recent) return sessions.slice(-k);
  const step = sessions.length / k;
  return Array.from({ length: k }, (_, i) => sessions[Math.floor(i * step)]);
}

async function runMode(mode, cs, log) {
  const n = mode === 'isolated' ? cs.isolatedN : mode === 'shared' ? cs.sharedN : cs.hibernatingN;
  const row = { mode, requested: n };
  const gw = await startCapacityGateway(ENTRIES[mode](cs), cs, 1, `capacity-${mode}.json`);
  const sampler = new RssSampler(250);
  const peaks = sampler.watch(gw.service);
  try {
    const opened = await openMany(gw, n, cs.openConcurrency);
    Object.assign(row, { opened: opened.sessions.length, openFailures: opened.failures, firstOpenError: opened.firstError, setupMs: opened.setupMs });
    log(
      `    ${mode}: ${opened.sessions.length}/${n} opened in ${(opened.setupMs / 1000).toFixed(1)} s${opened.firstError ? `; first error: ${opened.firstError}` : ''}`,
    );
    const k = Math.max(1, Math.round(n * cs.activeShare));
    const activeRun = await runActive(pick(opened.sessions, Math.min(k, opened.sessions.length), mode === 'isolated'), cs.activeMs);
    Object.assign(row, { active: k, ...activeRun });
    const status = await gw.status();
    Object.assign(row, { openAtEnd: status.sessions, children: status.children, memory: status.memory, command: status.commands?.[KEY] });
    log(
      `    ${mode}: ${k} active, ${activeRun.answered}/${activeRun.calls} calls answered (p50 ${activeRun.latency?.p50?.toFixed(1)} ms, p99 ${activeRun.latency?.p99?.toFixed(1)} ms); ${status.sessions} sessions open, ${status.children} children`,
    );
    if (mode === 'hibernating') row.sweep = await shareSweep(opened.sessions, cs, log);
  } finally {
    sampler.tick();
    sampler.close();
    Object.assign(row, { peakTree: peaks.tree, peakOwn: peaks.own, budgetLine: gw.watch.budgetLine, refusals: gw.watch.refusals });
    const { leftovers } = await gw.service.stop(20_000);
    Object.assign(row, { kernelKills: gw.watch.kernelKills, leftovers });
  }
  return row;
}

/** Raises the active share step by step; the largest share at which every call was answered. */
async function shareSweep(sessions, cs, log) {
  const steps = [];
  for (const share of cs.shares) {
    const k = Math.max(1, Math.round(sessions.length * share));
    const run = await runActive(pick(sessions, k, false), cs.stepMs);
    steps.push({ share, active: k, ...run });
    log(`      share ${(share * 100).toFixed(1)}%: ${k} active, ${run.answered}/${run.calls} answered, p99 ${run.latency?.p99?.toFixed(0)} ms`);
    if (run.failed > 0) break;
  }
  return steps;
}

/** First call after a sleep: p50/p99, with (pool 1) and without (pool 0) a warm spare. */
async function resumeLatency(cs, log) {
  const out = {};
  for (const [variant, pool] of [
    ['warm spare', 1],
    ['cold start', 0],
  ]) {
    const entries = { [KEY]: { ...SERVERS.everything, idle: 'hibernate', hibernateAfterMs: 500, pool: { min: pool } } };
    const gw = await startCapacityGateway(entries, cs, pool, `capacity-resume-${pool}.json`);
    const samples = [];
    let failures = 0;
    try {
      const s = gw.session();
      await s.open();
      await s.echo('first');
      for (let i = 0; i < cs.resumeN; i += 1) {
        await waitFor(
          async () => {
            const st = (await gw.status()).commands?.[KEY];
            return st?.hibernated === 1 && (pool === 0 || st.warm >= 1);
          },
          30_000,
          'a hibernated session (and a warm spare)',
          100,
        );
        if (pool > 0) await sleep(1000); // the spare has finished starting
        const t0 = process.hrtime.bigint();
        try {
          await s.echo(`resume ${i}`);
          samples.push(msSince(t0));
        } catch {
          failures += 1;
        }
      }
    } finally {
      await gw.service.stop(20_000);
    }
    out[variant] = { ...summarize(samples), failures };
    log(`    resume (${variant}): p50 ${out[variant].p50?.toFixed(0)} ms, p99 ${out[variant].p99?.toFixed(0)} ms over ${samples.length}`);
  }
  return out;
}

export async function capacityPhase(scale, log) {
  const cs = capacitySettings(scale);
  const result = { settings: cs, modes: [], date: new Date().toISOString(), loadBefore: os.loadavg() };
  for (const mode of ['hibernating', 'shared', 'isolated']) {
    log(`  capacity: ${mode}`);
    try {
      result.modes.push(await runMode(mode, cs, log));
    } catch (error) {
      result.modes.push({ mode, error: String(error.message).split('\n')[0] });
      log(`    ${mode} failed: ${error.message}`);
    }
  }
  log('  capacity: resume latency');
  try {
    result.resume = await resumeLatency(cs, log);
  } catch (error) {
    result.resume = { error: String(error.message).split('\n')[0] };
  }
  result.loadAfter = os.loadavg();
  result.childBytes = result.modes.find((m) => m.command?.memory?.highWaterMb)?.command.memory.highWaterMb * MiB;
  return result;
}
