// The 2026-07-28 era in the report: its per-call cost as a ratio to the 2025 Streamable
// path of the same run (per repetition, and the median of the repetitions), the first call
// of a new principal with a warm spare ready, and the targets for both.
import { summarize } from './stats.mjs';

const NA = 'n/a';
const f = (v, d = 3) => (v === undefined || v === null || Number.isNaN(v) ? NA : Number(v).toFixed(d));
const x = (v) => (v === undefined || Number.isNaN(v) ? NA : `${v.toFixed(2)}×`);
const int = (v) => (v === undefined || Number.isNaN(v) ? NA : Math.round(v).toLocaleString('en-US'));

/** Goals: 2026-07-28 within 10 % of the 2025 Streamable path; its first call under 15 ms. */
export const MODERN_GOALS = Object.freeze({ addedRatio: 1.1, throughputRatio: 0.9, firstCallMs: 15 });

/** Per repetition of one target and client: 16 B p50 and calls/s. */
export function perRepetition(records) {
  return records.filter((r) => r.lat).map((r) => ({ rep: r.rep, p50: summarize(r.lat.lat16)?.p50, throughput: r.lat.throughput?.perSecond }));
}

/** The true median (mean of the middle two for an even count) of the defined values. */
function median(values) {
  const v = values.filter((a) => a !== undefined && !Number.isNaN(a)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * Per repetition: warden-modern against warden-mcp (and direct, when it ran) for `client`.
 * "added" ratio = (modern p50 − direct p50) / (Streamable p50 − direct p50); without direct
 * (or when the Streamable's added p50 is not positive) the whole client-observed p50 ratio
 * stands in for it.
 */
export function modernComparison(results, client) {
  const t = results.targets;
  const runs = (id) => (t[id]?.status === 'ok' ? (t[id].clients?.[client]?.perRep ?? []) : []);
  const modern = runs('warden-modern');
  const legacy = runs('warden-mcp');
  const direct = runs('direct');
  if (modern.length === 0 || legacy.length === 0) return undefined;
  const rows = [];
  for (const m of modern) {
    const l = legacy.find((r) => r.rep === m.rep);
    if (!l) continue;
    const d = direct.find((r) => r.rep === m.rep);
    const legacyAdded = d ? l.p50 - d.p50 : undefined;
    rows.push({
      rep: m.rep,
      modern: m,
      legacy: l,
      direct: d,
      addedRatio: legacyAdded > 0 ? (m.p50 - d.p50) / legacyAdded : undefined,
      p50Ratio: m.p50 / l.p50,
      throughputRatio: m.throughput / l.throughput,
    });
  }
  if (rows.length === 0) return undefined;
  const addedRatio = median(rows.map((r) => r.addedRatio));
  const withDirect = rows.every((r) => r.addedRatio !== undefined);
  return {
    rows,
    // the check's latency figure: the added-p50 ratio when every run has it, else the p50 ratio
    latencyBasis: withDirect ? 'added p50' : 'p50 (no direct stdio in this run)',
    latencyRatio: withDirect ? addedRatio : median(rows.map((r) => r.p50Ratio)),
    latencyRatios: rows.map((r) => (withDirect ? r.addedRatio : r.p50Ratio)),
    p50Ratio: median(rows.map((r) => r.p50Ratio)),
    throughputRatio: median(rows.map((r) => r.throughputRatio)),
    throughputRatios: rows.map((r) => r.throughputRatio),
  };
}

/** The rows of the issue's targets table for the 2026-07-28 era. */
export function modernChecks(results) {
  const checks = [];
  const verdict = (met) => (met === undefined ? NA : met ? 'met' : 'not met');
  const c = modernComparison(results, 'raw');
  if (c) {
    const n = c.rows.length;
    checks.push([
      `2026-07-28 per-call overhead vs 2025 Streamable, raw 16 B, ${c.latencyBasis}, median of ${n} run${n === 1 ? '' : 's'}`,
      `≤ ${MODERN_GOALS.addedRatio.toFixed(2)}×`,
      `${x(c.latencyRatio)} (runs: ${c.latencyRatios.map(x).join(', ')})`,
      verdict(c.latencyRatio === undefined ? undefined : c.latencyRatio <= MODERN_GOALS.addedRatio),
    ]);
    checks.push([
      `2026-07-28 throughput vs 2025 Streamable, raw, 16 in flight, median of ${n} run${n === 1 ? '' : 's'}`,
      `≥ ${MODERN_GOALS.throughputRatio.toFixed(2)}×`,
      `${x(c.throughputRatio)} (runs: ${c.throughputRatios.map(x).join(', ')})`,
      verdict(c.throughputRatio === undefined ? undefined : c.throughputRatio >= MODERN_GOALS.throughputRatio),
    ]);
  }
  const fc = results.firstCall;
  if (fc) {
    const s = fc.summary;
    const complete = !fc.error && fc.failures === 0 && s;
    checks.push([
      `first 2026-07-28 call of a new principal, warm spare ready, raw, p50 over ${fc.n} principals`,
      `< ${MODERN_GOALS.firstCallMs} ms`,
      fc.error
        ? `n/a (${fc.error})`
        : `${f(s?.p50, 2)} ms (p90 ${f(s?.p90, 2)} ms; the server alone, direct: p50 ${f(fc.direct?.summary?.p50, 2)} ms${fc.failures ? `; ${fc.failures} failed` : ''})`,
      verdict(complete ? s.p50 < MODERN_GOALS.firstCallMs : undefined),
    ]);
  }
  return checks;
}

const table = (header, rows) => [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

/** The section on the 2026-07-28 era (empty when warden-modern did not run). */
export function modernSection(results) {
  const out = [];
  const comparisons = ['raw', 'sdk'].map((client) => [client, modernComparison(results, client)]).filter(([, c]) => c);
  if (comparisons.length) {
    out.push('## 2026-07-28 against the 2025 Streamable path (same gateway, same run)', '');
    out.push(
      'Per repetition: 16 B sequential p50 and calls/s with 16 in flight of "mcp-warden 2026-07-28" and "mcp-warden Streamable" (and direct stdio when it ran), measured in the same repetition; then the median over the repetitions. "added ratio" = (2026-07-28 p50 − direct p50) / (Streamable p50 − direct p50): the gateway\'s own per-call cost in each era. Goal: added ratio ≤ 1.10, calls/s ratio ≥ 0.90.',
      '',
    );
    for (const [client, c] of comparisons) {
      out.push(`### ${client} client`, '');
      const rows = c.rows.map((r) => [
        `run ${r.rep + 1}`,
        f(r.modern.p50),
        f(r.legacy.p50),
        f(r.direct?.p50),
        x(r.addedRatio),
        x(r.p50Ratio),
        int(r.modern.throughput),
        int(r.legacy.throughput),
        x(r.throughputRatio),
      ]);
      rows.push([`**median of ${c.rows.length}**`, '', '', '', x(median(c.rows.map((r) => r.addedRatio))), x(c.p50Ratio), '', '', x(c.throughputRatio)]);
      out.push(
        table(
          [
            '',
            '2026-07-28 p50 ms',
            'Streamable p50 ms',
            'direct p50 ms',
            'added ratio',
            'p50 ratio',
            '2026-07-28 calls/s',
            'Streamable calls/s',
            'calls/s ratio',
          ],
          rows,
        ),
      );
      out.push('');
    }
  }
  const fc = results.firstCall;
  if (fc) {
    out.push('## First 2026-07-28 call of a new principal, warm spare ready', '');
    out.push(
      `A fresh gateway (\`--pool-min 2\`) with a clients file of ${fc.n} tokens, each its own principal with no conversation yet. After ${fc.warmupCalls} warm-up calls on the shared secret's own conversation (so the gateway's 2026-07-28 path has run once), per token: wait until the pool holds 2 warm spares and the last one taken was 1 s ago (GET /status), then time one \`tools/call\` echo from sending the POST to the end of its answer. The gateway takes a spare, does the 2025 handshake with it (initialize, notifications/initialized, logging/setLevel) and forwards the call. "took a spare": the spare count had dropped right after the call. The floor is the same sequence straight on stdio, ${fc.n} times: a fresh child of the same server, started and pinged (as the pool warms a spare), left alone 1 s, then timed from initialize to the reply of its first tools/call: what the server itself takes for its first handshake and first call.`,
      '',
    );
    const row = (label, r, extra) => [
      label,
      r?.summary?.n ?? 0,
      f(r?.summary?.p50, 2),
      f(r?.summary?.p90, 2),
      f(r?.summary?.p99, 2),
      f(r?.summary?.min, 2),
      f(r?.summary?.max, 2),
      ...extra,
      r?.failures ?? NA,
      r?.firstError ?? '',
    ];
    const rows = fc.error
      ? [['mcp-warden 2026-07-28, new principal', 0, NA, NA, NA, NA, NA, NA, NA, NA, fc.error]]
      : [row('mcp-warden 2026-07-28, new principal', fc, [`${fc.fromPool}/${fc.n}`])];
    if (fc.direct) rows.push(row('direct stdio, fresh child (the floor)', fc.direct, ['—']));
    out.push(table(['', 'samples', 'p50 ms', 'p90 ms', 'p99 ms', 'min ms', 'max ms', 'took a spare', 'failed', 'first error'], rows));
    out.push('');
  }
  return out.join('\n');
}

/** Method notes for the 2026-07-28 target. */
export const MODERN_METHOD = [
  '- "mcp-warden 2026-07-28" is the same gateway and whitelist entry as "mcp-warden Streamable", spoken to in protocol revision 2026-07-28 on the same `/<key>/mcp` URL: no session and no initialize; every request is one POST carrying `params._meta` (protocol version, empty client capabilities) and the `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers, answered as JSON or as an event stream; the raw client checks that the answer carries the id its POST sent (anything else counts as a stray). The SDK client is the v2 client (`@modelcontextprotocol/client`) pinned to 2026-07-28. It has no connect phase (there is no session to open; the first call of a new principal is measured on its own).',
  '- The gateway keeps one conversation (one child) per principal and key. In the correctness phase the 50 callers of "mcp-warden 2026-07-28" all present the shared secret, so they are one principal and share one conversation and one child, by design: each caller numbers its requests from 1, so their ids collide at the gateway, which gives every request its own id towards the child and must route every reply back to its own POST. Its "setup" is therefore near 0 and its "calls ms" is 1,000 calls on one child, not on 50.',
];
