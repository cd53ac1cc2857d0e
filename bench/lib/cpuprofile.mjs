// CPU profiles of mcp-warden during the throughput phase: start a fresh gateway under
// `node --cpu-prof --cpu-prof-dir .bench/prof`, warm up one session, run the throughput
// phase, stop the gateway (it writes the profile on exit), and sum self time per
// callFrame.functionName + url.
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { ROOT, WORK_DIR, waitFor, withTimeout } from './util.mjs';
import { throughput } from './phases.mjs';
import { TARGETS, startTarget } from '../servers/targets.mjs';

export const PROF_DIR = resolve(WORK_DIR, 'prof');

/**
 * Self time per functionName+url, descending; `(idle)` reported separately. With
 * `window` ({ fromUs, toUs } on CLOCK_MONOTONIC, the clock of both the profile's
 * timestamps and process.hrtime), only samples inside it count: startup is left out.
 */
export function topSelfTime(profile, n = 10, window = undefined) {
  const byNode = new Map();
  for (const node of profile.nodes) byNode.set(node.id, node);
  const selfUs = new Map();
  const deltas = profile.timeDeltas ?? [];
  let at = profile.startTime;
  let inWindow = 0;
  for (let i = 0; i < profile.samples.length; i += 1) {
    at += deltas[i] ?? 0;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    inWindow += 1;
    const id = profile.samples[i];
    // the delta that follows a sample is the time spent in it (Chrome DevTools' convention)
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  }
  if (window && inWindow === 0) return topSelfTime(profile, n); // clocks disagree: whole profile
  const byFunction = new Map();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const cf = byNode.get(id)?.callFrame ?? {};
    const name = cf.functionName || '(anonymous)';
    totalUs += us;
    if (name === '(idle)') {
      idleUs += us;
      continue;
    }
    const url = cf.url ? shortUrl(cf.url) : '';
    const key = `${name}\u0000${url}`;
    const entry = byFunction.get(key) ?? { functionName: name, url, selfUs: 0 };
    entry.selfUs += us;
    byFunction.set(key, entry);
  }
  const busyUs = totalUs - idleUs;
  const top = [...byFunction.values()]
    .sort((a, b) => b.selfUs - a.selfUs)
    .slice(0, n)
    .map((e) => ({ functionName: e.functionName, url: e.url, selfMs: e.selfUs / 1000, pct: busyUs > 0 ? (100 * e.selfUs) / busyUs : 0 }));
  return { top, totalMs: totalUs / 1000, idleMs: idleUs / 1000, busyMs: busyUs / 1000, windowed: Boolean(window), samples: inWindow };
}

function shortUrl(url) {
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  return path.startsWith(ROOT) ? relative(ROOT, path) : path;
}

/** Profiles the throughput phase of mcp-warden over `transport` ('sse' | 'mcp'). */
export async function profileThroughput(transport, settings) {
  mkdirSync(PROF_DIR, { recursive: true });
  const started = Date.now();
  const target = TARGETS.find((t) => t.id === `warden-${transport}`);
  const inst = await startTarget(target, { cpuProf: PROF_DIR, timeoutMs: settings.callTimeoutMs });
  let result;
  let window;
  try {
    const s = inst.session('raw', 'warm');
    await withTimeout(s.open(), 60_000, 'open session for profiling');
    for (let i = 0; i < settings.warmup; i += 1) await s.echo('abcdefghijklmnop');
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    result = await throughput(s, { ...settings, throughputMs: Math.max(settings.throughputMs, 3000) });
    window = { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) };
    await withTimeout(s.close(), 10_000, 'close').catch(() => {});
  } finally {
    await inst.stop();
  }
  const file = await waitFor(
    () => {
      const files = readdirSync(PROF_DIR)
        .filter((n) => n.endsWith('.cpuprofile') && n.includes(`.${inst.service.pid}.`))
        .map((n) => resolve(PROF_DIR, n))
        .filter((p) => statSync(p).mtimeMs >= started - 1000);
      return files[0];
    },
    10_000,
    `.cpuprofile of pid ${inst.service.pid} in ${PROF_DIR}`,
    100,
  );
  const summary = topSelfTime(JSON.parse(readFileSync(file, 'utf8')), 10, window);
  return { label: target.label, file: relative(ROOT, file), throughput: result, ...summary };
}
