#!/usr/bin/env node
// npm run bench: every target side by side in one run, on loopback, then a report on
// stdout and in BENCHMARKS.md. See bench/README.md for the phases and the knobs.
//
//   node bench/run.mjs [--cpu-prof] [--no-idle] [--no-capacity] [--no-write]
//   node bench/run.mjs --capacity-only     (only the memory-budget phase; updates its section)
//   BENCH_SCALE=0.2 BENCH_REPS=1 BENCH_TARGETS=direct,warden-sse node bench/run.mjs
import os from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { killAllNow, liveCount, RssSampler } from './lib/procs.mjs';
import { postAgent } from './lib/rawClients.mjs';
import { connectPhase, correctnessPhase, latencyAndThroughputPhase } from './lib/phases.mjs';
import { policyPhase } from './lib/policy.mjs';
import { aggregate, renderReport } from './lib/report.mjs';
import { idlePhases } from './lib/idle.mjs';
import { firstModernCallPhase } from './lib/firstCall.mjs';
import { capacityPhase } from './lib/capacity.mjs';
import { writeCapacity } from './lib/capacityReport.mjs';
import { profileThroughput } from './lib/cpuprofile.mjs';
import { TARGETS, Unsupported, startTarget } from './servers/targets.mjs';
import { ROOT, loadSettings } from './lib/util.mjs';

const argv = new Set(process.argv.slice(2));
const settings = loadSettings();
const MAX_RUN_MS = Number(process.env.BENCH_MAX_MS ?? 30 * 60_000);
const log = (...a) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}\n`);

function bail(code, why) {
  log(why);
  killAllNow();
  process.exit(code);
}
process.on('SIGINT', () => bail(130, 'SIGINT: killing every process tree the bench started'));
process.on('SIGTERM', () => bail(143, 'SIGTERM: killing every process tree the bench started'));
setTimeout(() => bail(1, `run exceeded BENCH_MAX_MS=${MAX_RUN_MS}; killing everything`), MAX_RUN_MS).unref();

// Node warnings raised in the bench process (e.g. by the SDK client) go into the report,
// once per kind, with what was running when the first one came.
let running = 'setup';
const warnings = new Map();
process.removeAllListeners('warning');
process.on('warning', (w) => {
  const key = `${w.name}: ${String(w.message).replace(/\d+/g, 'N')}`;
  const seen = warnings.get(key);
  if (seen) seen.count += 1;
  else {
    warnings.set(key, { name: w.name, message: String(w.message), during: running, count: 1 });
    log(`warning while running ${running}: ${w.name}: ${w.message}`);
  }
});

const version = (pkg) => {
  try {
    return JSON.parse(readFileSync(resolve(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
};

async function runTarget(target, rep, sampler, results) {
  const entry = results.targets[target.id];
  if (entry.status === 'n/a') return;
  log(`rep ${rep + 1}: ${target.label}: starting (load ${os.loadavg()[0].toFixed(2)})`);
  entry.load.push(os.loadavg()[0]);
  let inst;
  try {
    inst = await startTarget(target, { timeoutMs: settings.callTimeoutMs });
  } catch (error) {
    if (error instanceof Unsupported) {
      entry.status = 'n/a';
      entry.reason = `gateway rejected the entry at start: ${error.message}`;
      log(`  ${target.label}: n/a (${error.message})`);
      return;
    }
    entry.records.raw.push({ error: `rep ${rep + 1}: start failed: ${error.message.split('\n')[0]}` });
    log(`  ${target.label}: start failed: ${error.message}`);
    return;
  }
  const peaks = sampler.watch(inst.monitor);
  const clients = (settings.clients ?? ['raw', 'sdk']).slice();
  if (rep % 2 === 1) clients.reverse();
  try {
    for (const client of clients) {
      const record = { rep };
      running = `${target.label}, ${client} client, repetition ${rep + 1}`;
      try {
        if (rep === 0 && !inst.stateless) {
          log(`  ${client}: connect`);
          record.connect = await connectPhase(inst, client, settings);
        }
        log(`  ${client}: latency + throughput`);
        record.lat = await latencyAndThroughputPhase(inst, client, settings);
        log(
          `    p50 16 B ${summaryP50(record.lat.lat16)} ms, ${Math.round(record.lat.throughput.perSecond)} calls/s${record.lat.truncated ? ` (truncated: ${record.lat.truncated})` : ''}`,
        );
        if (rep === 0) {
          log(`  ${client}: correctness 50×20`);
          record.correctness = await correctnessPhase(inst, client, settings);
          const c = record.correctness;
          log(`    ok ${c.ok}/${c.calls}, mismatch ${c.mismatches}, stray ${c.strays}, errors ${c.errors}, calls ${Math.round(c.callsMs)} ms`);
        }
      } catch (error) {
        record.error = `rep ${rep + 1}: ${error.message.split('\n')[0]}`;
        log(`  ${client}: failed: ${error.message}`);
      }
      entry.records[client].push(record);
    }
  } finally {
    sampler.tick();
    sampler.unwatch(inst.monitor);
    entry.rss.own = Math.max(entry.rss.own, peaks.own);
    entry.rss.tree = Math.max(entry.rss.tree, peaks.tree);
    entry.rss.procs = Math.max(entry.rss.procs, peaks.procs);
    const { leftovers } = await inst.stop();
    entry.leftovers += leftovers;
    log(
      `  stopped (peak RSS gateway ${(peaks.own / 2 ** 20).toFixed(1)} MB, tree ${(peaks.tree / 2 ** 20).toFixed(1)} MB, ${peaks.procs} procs${leftovers ? `, ${leftovers} killed after grace` : ''})`,
    );
  }
}

const summaryP50 = (samples) => {
  const sorted = Float64Array.from(samples).sort();
  return sorted.length ? sorted[Math.floor(sorted.length / 2)].toFixed(3) : 'n/a';
};

/** BENCH_WAIT_LOAD=x: wait (at most BENCH_WAIT_LOAD_MS) for the 1-min load average to drop below x. */
async function waitForQuiet() {
  if (!settings.waitLoad) return;
  const deadline = Date.now() + settings.waitLoadMs;
  while (os.loadavg()[0] >= settings.waitLoad && Date.now() < deadline) {
    log(`waiting for load < ${settings.waitLoad} (now ${os.loadavg()[0].toFixed(2)})`);
    await new Promise((r) => setTimeout(r, 15_000));
  }
}

async function main() {
  await waitForQuiet();
  const t0 = Date.now();
  const targets = TARGETS.filter((t) => !settings.targets || settings.targets.includes(t.id));
  const results = {
    meta: {
      date: new Date().toISOString(),
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      env: Object.entries(process.env)
        .filter(([k]) => k.startsWith('BENCH_'))
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
      node: process.version,
      cpu: os.cpus()[0]?.model ?? '?',
      cores: os.cpus().length,
      memGb: Math.round(os.totalmem() / 2 ** 30),
      platform: `${os.type()} ${os.release()}`,
      loadBefore: os.loadavg(),
      settings,
      versions: {
        'mcp-warden': JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')).version,
        '@modelcontextprotocol/sdk': version('@modelcontextprotocol/sdk'),
        '@modelcontextprotocol/server-everything': version('@modelcontextprotocol/server-everything'),
        supergateway: version('supergateway'),
        'mcp-proxy': version('mcp-proxy'),
      },
    },
    targets: {},
  };
  log(
    `settings: scale ${settings.scale}, ${settings.reps} reps, targets ${targets.map((t) => t.id).join(',')}; load ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  for (const t of targets) {
    results.targets[t.id] = {
      id: t.id,
      label: t.label,
      family: t.family,
      transport: t.transport,
      status: 'ok',
      records: { raw: [], sdk: [] },
      rss: { own: 0, tree: 0, procs: 0 },
      leftovers: 0,
      load: [],
    };
  }
  const sampler = new RssSampler(settings.sampleMs);
  try {
    for (let rep = 0; rep < settings.reps; rep += 1) {
      const order = rep % 2 === 0 ? targets : [...targets].reverse();
      for (const target of order) await runTarget(target, rep, sampler, results);
    }
    const modern = targets.find((t) => t.id === 'warden-modern');
    if (modern && results.targets[modern.id].status === 'ok') {
      log(`first 2026-07-28 call of ${settings.firstCalls} new principals, warm spare ready`);
      running = 'first 2026-07-28 calls';
      results.firstCall = await firstModernCallPhase(modern, settings).catch((error) => ({ error: error.message.split('\n')[0] }));
      const fc = results.firstCall;
      log(
        fc.error
          ? `  failed: ${fc.error}`
          : `  p50 ${fc.summary?.p50?.toFixed(2)} ms, p90 ${fc.summary?.p90?.toFixed(2)} ms, ${fc.fromPool}/${fc.n} took a spare, ${fc.failures} failed; direct floor p50 ${fc.direct?.summary?.p50?.toFixed(2)} ms`,
      );
    }
    if (!argv.has('--no-idle')) {
      log('idle sessions');
      running = 'idle sessions';
      results.idle = await idlePhases(settings, sampler, log);
    }
    if (!argv.has('--no-capacity')) {
      log('capacity under a memory budget');
      running = 'capacity';
      results.capacity = await capacityPhase(settings.scale, log);
    }
    log('policy decision time');
    results.policy = await policyPhase(settings.policyEvals);
    log(`  p50 ${results.policy.allowed.p50Us.toFixed(3)} µs, mean ${results.policy.allowed.meanUs.toFixed(3)} µs`);
    if (argv.has('--cpu-prof')) {
      results.profiles = [];
      for (const transport of ['sse', 'mcp']) {
        log(`cpu profile: mcp-warden ${transport} throughput`);
        results.profiles.push(await profileThroughput(transport, settings));
      }
    }
  } finally {
    sampler.close();
  }
  for (const entry of Object.values(results.targets)) {
    entry.clients = {};
    for (const client of ['raw', 'sdk']) if (entry.records[client].length) entry.clients[client] = aggregate(entry.records[client]);
  }
  results.warnings = [...warnings.values()];
  results.meta.loadAfter = os.loadavg();
  results.meta.wallSeconds = (Date.now() - t0) / 1000;
  const report = renderReport(results);
  process.stdout.write(`${report}\n`);
  writeFileSync(
    resolve(ROOT, '.bench/results.json'),
    JSON.stringify(results, (k, v) => (k === 'records' ? undefined : v), 2),
  );
  if (!argv.has('--no-write')) {
    writeFileSync(resolve(ROOT, 'BENCHMARKS.md'), `${report}\n`);
    log('wrote BENCHMARKS.md and .bench/results.json');
  }
}

/** `--capacity-only`: the memory-budget phase alone; its section of BENCHMARKS.md is replaced. */
async function capacityOnly() {
  mkdirSync(resolve(ROOT, '.bench'), { recursive: true });
  log(
    `capacity only: scale ${settings.scale}; load ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  const capacity = await capacityPhase(settings.scale, log);
  process.stdout.write(`${writeCapacity(capacity, { write: !argv.has('--no-write') })}\n`);
}

(argv.has('--capacity-only') ? capacityOnly() : main())
  .then(() => {
    postAgent.destroy();
    const left = liveCount();
    if (left > 0) log(`${left} process trees still registered at the end; killing them`);
    killAllNow();
    process.exit(0);
  })
  .catch((error) => {
    log(`bench failed: ${error.stack ?? error}`);
    killAllNow();
    process.exit(1);
  });
