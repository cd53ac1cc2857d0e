// The capacity section of BENCHMARKS.md (bench/lib/capacity.mjs measures it): sessions held
// under the budget in each mode, the targets met or not, the active-share sweep and the
// resume latency. `spliceCapacity` puts the section into an existing report, so that
// `--capacity-only` updates it without running everything else.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT } from './util.mjs';

function table(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}

const NA = 'n/a';
const f = (v, d = 0) => (v === undefined || v === null || Number.isNaN(v) ? NA : Number(v).toFixed(d));
const mb = (bytes) => (bytes ? (bytes / 1024 / 1024).toFixed(0) : NA);
export const CAPACITY_BEGIN = '<!-- capacity: begin -->';
export const CAPACITY_END = '<!-- capacity: end -->';

function modeRow(m) {
  if (m.error) return [m.mode, `failed: ${m.error}`, ...Array(9).fill(NA)];
  return [
    m.mode,
    `${m.opened}/${m.requested}`,
    String(m.openAtEnd ?? NA),
    String(m.active ?? NA),
    `${m.answered}/${m.calls}`,
    `${f(m.latency?.p50, 1)} / ${f(m.latency?.p99, 1)}`,
    String(m.children ?? NA),
    `${mb(m.peakTree)} (gateway ${mb(m.peakOwn)})`,
    f(m.command?.memory?.highWaterMb, 1),
    String(m.kernelKills ?? NA),
    f(m.setupMs / 1000, 1),
  ];
}

function checks(c) {
  const out = [];
  const add = (what, goal, value, met) => out.push([what, goal, value, met === undefined ? NA : met ? 'met' : 'not met']);
  const byMode = Object.fromEntries(c.modes.map((m) => [m.mode, m]));
  const h = byMode.hibernating;
  const allAnswered = (m) => m && !m.error && m.failed === 0 && m.calls > 0;
  add(
    `open sessions with hibernation, ${f(c.settings.activeShare * 100, 0)}% active`,
    '≥ 200, every active call answered',
    h && !h.error ? `${h.openAtEnd} open, ${h.answered}/${h.calls} answered` : NA,
    h && !h.error ? h.openAtEnd >= 200 && allAnswered(h) : undefined,
  );
  const s = byMode.shared;
  add(
    `open sessions in shared mode, ${f(c.settings.activeShare * 100, 0)}% active`,
    '≥ 1,000, every active call answered',
    s && !s.error ? `${s.openAtEnd} open, ${s.answered}/${s.calls} answered` : NA,
    s && !s.error ? s.openAtEnd >= 1000 && allAnswered(s) : undefined,
  );
  const kills = c.modes.reduce((n, m) => n + (m.kernelKills ?? 0), 0);
  add(
    'children killed by a SIGKILL the gateway did not send (the OOM killer)',
    '0',
    String(kills),
    c.modes.every((m) => m.kernelKills !== undefined) ? kills === 0 : undefined,
  );
  const child = c.childBytes;
  const budget = c.settings.budgetMb * 1024 * 1024;
  const peak = Math.max(...c.modes.map((m) => m.peakTree ?? 0));
  add(
    'gateway + children, peak of /proc samples every 250 ms',
    `≤ budget + one child (${mb(budget)} + ${mb(child)} MB)`,
    `${mb(peak)} MB`,
    child ? peak <= budget + child : undefined,
  );
  return out;
}

export function capacitySection(c) {
  if (!c) return '';
  const cs = c.settings;
  const out = [CAPACITY_BEGIN, `## Capacity under a ${cs.budgetMb} MB memory budget (server-everything)`, ''];
  if (c.date)
    out.push(
      `Run on ${c.date}; 1-min load average ${f(c.loadBefore?.[0], 2)} before, ${f(c.loadAfter?.[0], 2)} after (2 cores shared with other work: latencies are noisy).`,
      '',
    );
  out.push(
    `\`bench/lib/capacity.mjs\` (\`node bench/run.mjs --capacity-only\`): a gateway with \`--memory-budget-mb ${cs.budgetMb}\` and its defaults otherwise (160 MB reserve, memory sampled every 5 s, 1 warm spare), one whitelist entry running server-everything; raw Streamable HTTP clients open sessions ${cs.openConcurrency} at a time and never close them; then ${f(cs.activeShare * 100, 0)}% of the requested sessions are active, each calling \`echo\` once a second for ${f(cs.activeMs / 1000, 0)} s (a call fails on an error or after ${10} s). Modes: **hibernating** (\`"idle": "hibernate"\`, \`hibernateAfterMs\` ${cs.hibernateAfterMs} for the run; the default is 60000), **shared** (\`"mode": "shared"\`), **isolated** (a child per session; fewer sessions requested: they cannot all stay open).`,
    '',
  );
  out.push(table(['target', 'goal', 'measured', ''], checks(c)));
  out.push('');
  out.push(
    table(
      [
        'mode',
        'opened',
        'open at the end',
        'active',
        'calls answered',
        'call p50 / p99 ms',
        'children at the end',
        'peak MB, gateway + children',
        'child high-water MB',
        'kernel kills',
        'open s',
      ],
      c.modes.map(modeRow),
    ),
  );
  out.push('');
  out.push(
    '"open at the end": sessions the gateway still held after the active phase (the others were closed to make room for newer ones, longest idle first). "children": live children then, warm spare included. Peak MB: the sum of VmRSS over the gateway and its descendants, sampled every 250 ms by the bench for the whole run of the mode.',
    '',
  );
  const sweep = c.modes.find((m) => m.mode === 'hibernating')?.sweep;
  if (sweep?.length) {
    const ok = sweep.filter((s) => s.failed === 0 && s.calls > 0).map((s) => s.share);
    out.push(`### Active share with hibernation (${c.modes.find((m) => m.mode === 'hibernating').opened} sessions, ${f(cs.stepMs / 1000, 0)} s per step)`, '');
    out.push(`Largest active share at which every call was answered: **${ok.length ? `${f(Math.max(...ok) * 100, 1)}%` : 'none of the steps'}**.`, '');
    out.push(
      table(
        ['active share', 'active sessions', 'calls answered', 'p50 ms', 'p99 ms', 'first error'],
        sweep.map((s) => [`${f(s.share * 100, 1)}%`, s.active, `${s.answered}/${s.calls}`, f(s.latency?.p50, 1), f(s.latency?.p99, 1), s.firstError ?? '']),
      ),
    );
    out.push('');
  }
  if (c.resume && !c.resume.error) {
    out.push('### First call after hibernation', '');
    out.push(
      table(
        ['child', 'p50 ms', 'p99 ms', 'samples', 'failures'],
        Object.entries(c.resume).map(([k, v]) => [k, f(v.p50, 1), f(v.p99, 1), v.n ?? 0, v.failures]),
      ),
    );
    out.push('');
    out.push(
      'One session sleeps (`hibernateAfterMs` 500), then one `echo` is timed: a child taken from the warm pool (after the spare had 1 s to start) or started cold, plus the replayed initialize. A call to a live child takes about a millisecond (the main table).',
      '',
    );
  } else if (c.resume?.error) out.push(`Resume latency failed: ${c.resume.error}`, '');
  out.push(CAPACITY_END);
  return out.join('\n');
}

/** `report` with its capacity section replaced by `section` (or `section` appended). */
export function spliceCapacity(report, section) {
  const begin = report.indexOf(CAPACITY_BEGIN);
  const end = report.indexOf(CAPACITY_END);
  if (begin === -1 || end === -1) return `${report.trimEnd()}\n\n${section}\n`;
  return `${report.slice(0, begin)}${section}${report.slice(end + CAPACITY_END.length)}`;
}

/** Writes the capacity results (.bench/capacity.json) and puts the section into BENCHMARKS.md. */
export function writeCapacity(capacity, { write }) {
  const section = capacitySection(capacity);
  writeFileSync(resolve(ROOT, '.bench/capacity.json'), JSON.stringify(capacity, null, 2));
  if (write) {
    const file = resolve(ROOT, 'BENCHMARKS.md');
    let report = '';
    try {
      report = readFileSync(file, 'utf8');
    } catch {
      report = '# Benchmarks\n';
    }
    writeFileSync(file, spliceCapacity(report, section));
  }
  return section;
}
