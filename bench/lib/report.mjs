// Turns the collected results into markdown tables (stdout and BENCHMARKS.md), with
// ratios to the direct floor and to the peers, and the issue's targets marked met/not met.
import { summarize, mean } from './stats.mjs';
import { MODERN_METHOD, modernChecks, modernSection, perRepetition } from './reportModern.mjs';
import { capacitySection } from './capacityReport.mjs';

const NA = 'n/a';
const f = (v, d = 3) => (v === undefined || v === null || Number.isNaN(v) ? NA : Number(v).toFixed(d));
const mb = (bytes) => (bytes ? (bytes / 1024 / 1024).toFixed(1) : NA);
const int = (v) => (v === undefined || v === null || Number.isNaN(v) ? NA : Math.round(v).toLocaleString('en-US'));
const signed = (v, d = 3) => (v === undefined || Number.isNaN(v) ? NA : `${v >= 0 ? '+' : ''}${v.toFixed(d)}`);

export function table(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  return lines.join('\n');
}

/** Folds the per-repetition records of one target+client into one summary. */
export function aggregate(records) {
  const lat16 = records.flatMap((r) => r.lat?.lat16 ?? []);
  const lat64k = records.flatMap((r) => r.lat?.lat64k ?? []);
  const tput = records.map((r) => r.lat?.throughput?.perSecond).filter((v) => v !== undefined);
  const connect = records.find((r) => r.connect)?.connect;
  const correctness = records.find((r) => r.correctness)?.correctness;
  const errors = records.reduce((a, r) => a + (r.lat?.errors ?? 0) + (r.lat?.throughput?.errors ?? 0), 0);
  const strays = records.reduce((a, r) => a + (r.lat?.strays ?? 0), 0);
  const failures = records.map((r) => r.error).filter(Boolean);
  const truncated = records.map((r) => r.lat?.truncated).filter(Boolean);
  return {
    lat16: summarize(lat16),
    lat64k: summarize(lat64k),
    throughput: tput.length ? { mean: mean(tput), min: Math.min(...tput), max: Math.max(...tput), reps: tput } : undefined,
    connect,
    correctness,
    errors,
    strays,
    failures,
    truncated,
    perRep: perRepetition(records),
  };
}

const corrCell = (c) => (c ? `${c.ok}/${c.calls} ok, ${c.mismatches + c.strays + c.errors} bad` : NA);
const corrBad = (c) => (c ? c.mismatches + c.strays + c.errors : undefined);

function mainRows(results, client) {
  const direct = results.targets.direct?.clients?.[client];
  const rows = [];
  for (const t of Object.values(results.targets)) {
    const a = t.clients?.[client];
    if (!a || t.status !== 'ok') {
      rows.push([
        t.label,
        ...Array(13)
          .fill(NA)
          .map((x, i) => (i === 0 && t.reason ? `${x} (${t.reason})` : x)),
      ]);
      continue;
    }
    const isDirect = t.id === 'direct';
    rows.push([
      t.label,
      f(a.connect?.cold?.p50, 1),
      f(a.connect?.warm?.p50, 1),
      f(a.lat16?.p50),
      f(a.lat16?.p90),
      f(a.lat16?.p99),
      isDirect ? '—' : signed(a.lat16?.p50 - direct?.lat16?.p50),
      isDirect ? '—' : signed(a.lat16?.p99 - direct?.lat16?.p99),
      f(a.lat64k?.p50),
      f(a.lat64k?.p99),
      int(a.throughput?.mean),
      corrCell(a.correctness),
      f(a.correctness?.callsMs, 0),
      `${mb(t.rss?.own)} / ${mb(t.rss?.tree)}`,
    ]);
  }
  return rows;
}

const MAIN_HEADER = [
  'target',
  'connect cold p50 ms',
  'connect warm p50 ms',
  '16 B p50 ms',
  '16 B p90 ms',
  '16 B p99 ms',
  'added p50 ms',
  'added p99 ms',
  '64 KiB p50 ms',
  '64 KiB p99 ms',
  'calls/s (16 in flight)',
  '50×20 echo',
  '50×20 calls ms',
  'peak RSS MB gateway / tree',
];

function peerRows(results, client) {
  const rows = [];
  const t = results.targets;
  const pairs = [
    ['sse', 'warden-sse', ['sg-sse', 'proxy-sse', 'bare-sse']],
    ['mcp', 'warden-mcp', ['sg-mcp', 'proxy-mcp', 'bare-mcp']],
  ];
  for (const [, ours, peers] of pairs) {
    const a = t[ours]?.clients?.[client];
    const d = t.direct?.clients?.[client];
    if (!a) continue;
    const row = (label, b) => [
      `${t[ours].label} vs ${label}`,
      b?.lat16?.p50 ? `${(a.lat16.p50 / b.lat16.p50).toFixed(2)}×` : NA,
      b?.lat16?.p99 ? `${(a.lat16.p99 / b.lat16.p99).toFixed(2)}×` : NA,
      b?.lat64k?.p50 ? `${(a.lat64k.p50 / b.lat64k.p50).toFixed(2)}×` : NA,
      b?.throughput?.mean ? `${(a.throughput.mean / b.throughput.mean).toFixed(2)}×` : NA,
    ];
    rows.push(row('direct', d));
    for (const p of peers) if (t[p]) rows.push(row(t[p].label, t[p].status === 'ok' ? t[p].clients?.[client] : undefined));
  }
  return rows;
}

function correctnessRows(results) {
  const rows = [];
  for (const t of Object.values(results.targets)) {
    for (const client of ['raw', 'sdk']) {
      const c = t.clients?.[client]?.correctness;
      if (!c) continue;
      rows.push([t.label, client, c.calls, c.ok, c.mismatches, c.strays, c.errors, c.openFailures, f(c.setupMs, 0), f(c.callsMs, 0), c.firstOpenError ?? '']);
    }
  }
  return rows;
}

/** The issue's targets, each checked against the measured figure. */
export function targetChecks(results) {
  const t = results.targets;
  const raw = (id) => (t[id]?.status === 'ok' ? t[id].clients?.raw : undefined);
  const d = raw('direct');
  const checks = [];
  const add = (what, goal, value, met) => checks.push([what, goal, value, met === undefined ? NA : met ? 'met' : 'not met']);
  for (const [id, name] of [
    ['warden-sse', 'SSE'],
    ['warden-mcp', 'Streamable'],
  ]) {
    const a = raw(id);
    const added = a && d ? a.lat16.p50 - d.lat16.p50 : undefined;
    add(`added p50, raw 16 B, ${name}`, '≤ 0.15 ms', added === undefined ? NA : `${signed(added)} ms`, added === undefined ? undefined : added <= 0.15);
  }
  for (const [id, name] of [
    ['warden-sse', 'SSE'],
    ['warden-mcp', 'Streamable'],
  ]) {
    const a = raw(id);
    const added = a && d ? a.lat16.p99 - d.lat16.p99 : undefined;
    add(`added p99, raw 16 B, ${name}`, '≤ 1 ms', added === undefined ? NA : `${signed(added)} ms`, added === undefined ? undefined : added <= 1);
  }
  for (const [id, name, goal] of [
    ['warden-sse', 'SSE', 10_000],
    ['warden-mcp', 'Streamable', 6_000],
  ]) {
    const v = raw(id)?.throughput?.mean;
    add(
      `throughput, raw, 16 in flight, ${name}`,
      `≥ ${goal.toLocaleString('en-US')} calls/s`,
      v === undefined ? NA : `${int(v)} calls/s`,
      v === undefined ? undefined : v >= goal,
    );
  }
  for (const [id, name] of [
    ['warden-sse', 'SSE'],
    ['warden-mcp', 'Streamable'],
  ]) {
    const v = raw(id)?.connect?.warm?.p50;
    add(`warm connect (pool), raw, ${name}, median`, '≤ 10 ms', v === undefined ? NA : `${f(v, 1)} ms`, v === undefined ? undefined : v <= 10);
  }
  for (const id of ['warden-shared-sse', 'warden-shared-mcp']) {
    const a = raw(id);
    const c = a?.correctness;
    const ok = c ? c.callsMs <= 1000 && corrBad(c) === 0 : undefined;
    add(
      `multiplexed 50×20 (${t[id]?.label ?? id})`,
      '≤ 1 s, 0 bad',
      c ? `${f(c.callsMs, 0)} ms, ${corrBad(c)} bad` : `n/a${t[id]?.reason ? ` (${t[id].reason})` : ''}`,
      ok,
    );
  }
  const idleTargets = [
    ['warden-idle', '1,000 idle sessions, gateway RSS (isolated children, Streamable, raw)'],
    ['warden-shared-idle', '1,000 idle sessions, gateway RSS (multiplexed, Streamable, raw)'],
  ];
  for (const [id, label] of idleTargets) {
    const idle = results.idle?.find((r) => r.id === id);
    if (!idle) continue;
    const full = idle.opened >= 1000;
    const own = idle.after?.own;
    add(
      label,
      '≤ 150 MB',
      idle.error ? `n/a (${idle.error})` : `${mb(own)} MB at ${idle.opened} sessions`,
      idle.error || !full ? undefined : own <= 150 * 1024 * 1024,
    );
  }
  checks.push(...modernChecks(results));
  const p = results.policy?.allowed;
  add('policy decision p50 (allowed tools/call, argument rules)', '≤ 5 µs', p ? `${f(p.p50Us, 2)} µs` : NA, p ? p.p50Us <= 5 : undefined);
  return checks;
}

function idleRows(results) {
  return (results.idle ?? []).map((r) => [
    r.label,
    r.server,
    r.error ? `failed: ${r.error}` : `${r.opened}/${r.requested}`,
    r.cap ?? '',
    f(r.setupMs / 1000, 1),
    mb(r.before?.own),
    mb(r.after?.own),
    r.perSessionOwn === undefined ? NA : `${(r.perSessionOwn / 1024).toFixed(1)}`,
    mb(r.after?.tree),
    r.perSessionTree === undefined ? NA : `${(r.perSessionTree / 1024).toFixed(0)}`,
    r.children ?? NA,
  ]);
}

export function profileSection(profiles) {
  if (!profiles || profiles.length === 0) return '';
  const parts = ['## CPU profile of mcp-warden during the throughput phase', ''];
  for (const p of profiles) {
    parts.push(
      `### ${p.label} (\`${p.file}\`; ${p.windowed ? 'throughput window only' : 'whole profile'}: ${f(p.totalMs, 0)} ms sampled, ${f(p.idleMs, 0)} ms idle; throughput under the profiler ${int(p.throughput?.perSecond)} calls/s)`,
      '',
    );
    parts.push(
      table(
        ['#', 'self ms', '% of busy', 'function', 'url'],
        p.top.map((r, i) => [i + 1, f(r.selfMs, 1), f(r.pct, 1), `\`${r.functionName}\``, r.url ? `\`${r.url}\`` : '']),
      ),
    );
    parts.push('');
  }
  return parts.join('\n');
}

export function renderReport(results) {
  const m = results.meta;
  const out = [];
  out.push('# Benchmarks', '');
  out.push(`Run on ${m.date} with \`${m.command}\`${m.env ? ` (env: \`${m.env}\`)` : ''}; ${m.wallSeconds ? `${f(m.wallSeconds, 0)} s wall clock` : ''}.`);
  out.push('');
  out.push(
    `Machine: ${m.cpu} × ${m.cores} cores, ${m.memGb} GB RAM, Node ${m.node}, ${m.platform}. Load average (1/5/15 min) before: ${m.loadBefore.map((x) => x.toFixed(2)).join(' / ')}; after: ${m.loadAfter ? m.loadAfter.map((x) => x.toFixed(2)).join(' / ') : NA}.`,
  );
  out.push(
    `Versions: ${Object.entries(m.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
  );
  out.push(
    `Settings: BENCH_SCALE=${m.settings.scale}, ${m.settings.reps} repetitions (target order alternates: forward, then reversed), ${m.settings.warmup} warm-up calls, ${m.settings.calls16} × 16 B and ${m.settings.calls64k} × 64 KiB sequential calls per repetition (percentiles over all repetitions pooled), throughput ${m.settings.throughputMs} ms with ${m.settings.inFlight} in flight (mean of repetitions), connect: median of ${m.settings.connectSamples} (first repetition), correctness: ${m.settings.corrSessions} sessions × ${m.settings.corrCalls} calls (first repetition).`,
  );
  out.push('');
  out.push(
    `1-min load average when each target started (per repetition): ${Object.values(results.targets)
      .filter((t) => t.load?.length)
      .map((t) => `${t.label} ${t.load.map((x) => x.toFixed(1)).join('/')}`)
      .join('; ')}.`,
  );
  out.push('');
  out.push("## The issue's targets", '');
  out.push(table(['target', 'goal', 'measured', ''], targetChecks(results)));
  out.push('');
  for (const client of ['raw', 'sdk']) {
    out.push(`## ${client === 'raw' ? 'Raw client (node:http, keep-alive)' : 'Official SDK client (@modelcontextprotocol/sdk)'}`, '');
    out.push(table(MAIN_HEADER, mainRows(results, client)));
    out.push('');
  }
  out.push(
    '"added" = target − direct stdio, same client and percentile. "connect" = new session: initialize + notifications/initialized; cold for mcp-warden uses a whitelist entry with `pool.min: 0` (spawn included); warm takes a pooled spare (`--pool-min 2`). For supergateway SSE and mcp-proxy every session shares one child started with the gateway, so their connect never spawns. Peak RSS is sampled every 100 ms over the whole life of the target (all phases, both clients): the gateway process / the gateway and every descendant (children, shells).',
    '',
  );
  out.push('## Ratios to direct and to the peers (p50/p99 latency: lower is better; throughput: higher is better)', '');
  for (const client of ['raw', 'sdk']) {
    out.push(`### ${client} client`, '');
    out.push(table(['comparison', '16 B p50', '16 B p99', '64 KiB p50', 'calls/s'], peerRows(results, client)));
    out.push('');
  }
  out.push(modernSection(results));
  out.push('## Correctness: 50 concurrent sessions × 20 echo calls, unique payloads, byte-for-byte', '');
  out.push(
    '"mismatch": a reply with the wrong text (another session\'s payload); "stray": a reply no pending request of that session asked for (cross-talk or duplicate); "errors": failed calls, JSON-RPC errors, failed session opens (× 20 calls each).',
    '',
  );
  out.push(
    table(
      ['target', 'client', 'calls', 'ok', 'mismatch', 'stray', 'errors', 'open failures', 'setup ms', 'calls ms', 'first open error'],
      correctnessRows(results),
    ),
  );
  out.push('');
  if (results.targets['warden-modern'])
    out.push(
      '"mcp-warden 2026-07-28": the 50 callers present the same shared secret, so they are one principal and share one conversation (one child) by design; their request ids collide (each numbers from 1) and every reply must still reach its own POST. See the method notes.',
      '',
    );
  out.push('## Idle sessions (raw client, Streamable HTTP, initialize only, sessions kept open)', '');
  out.push(
    `"idle fixture" is \`bench/fixtures/idle-server.awk\` (a ~2 MB mawk process that answers initialize), used so that 1,000 isolated children fit on this machine: the figure measures the gateway, not the server. server-everything is ~60–70 MB per isolated child, so 1,000 of them (~65 GB) do not fit in ${m.memGb} GB; that row is capped and the cap is stated.`,
    '',
  );
  out.push(
    table(
      [
        'target',
        'server',
        'sessions open',
        'cap',
        'setup s',
        'gateway RSS before MB',
        'gateway RSS after MB',
        'gateway KB/session',
        'tree RSS after MB',
        'tree KB/session',
        'children',
      ],
      idleRows(results),
    ),
  );
  out.push('');
  if (results.capacity) out.push(capacitySection(results.capacity), '');
  const p = results.policy;
  if (p) {
    out.push('## Policy decision time', '');
    out.push(
      `\`parsePolicy\` (dist/policy/store.js) + \`evaluate\` (dist/policy/engine.js) on ${p.file}, ${int(p.evaluations)} evaluations per case in batches of 1000 timed with process.hrtime.bigint() (after 20,000 warm-up evaluations).`,
      '',
    );
    out.push(
      table(
        ['case', 'p50 µs', 'mean µs', 'p99 µs (of batch means)'],
        [
          [
            'allowed: role user, sms post_sms_3_messages with `to` and `body` (pattern, maxLength, notPattern, maxTotalBytes, additionalArgs)',
            f(p.allowed.p50Us, 3),
            f(p.allowed.meanUs, 3),
            f(p.allowed.p99Us, 3),
          ],
          ['denied: role user, unknown tool (default deny)', f(p.denied.p50Us, 3), f(p.denied.meanUs, 3), f(p.denied.p99Us, 3)],
        ],
      ),
    );
    out.push('');
  }
  const issues = [];
  for (const t of Object.values(results.targets)) {
    if (t.status !== 'ok') issues.push(`- ${t.label}: ${t.status}${t.reason ? ` — ${t.reason}` : ''}`);
    for (const [client, a] of Object.entries(t.clients ?? {})) {
      for (const e of a.failures ?? []) issues.push(`- ${t.label} (${client}): ${e}`);
      for (const tr of a.truncated ?? []) issues.push(`- ${t.label} (${client}): latency phase cut short by its time budget: ${tr}`);
      if (a.errors || a.strays) issues.push(`- ${t.label} (${client}): ${a.errors} errors, ${a.strays} strays in the latency/throughput phases`);
    }
    if (t.leftovers) issues.push(`- ${t.label}: ${t.leftovers} processes of its tree were still alive after SIGTERM + grace and were SIGKILLed`);
  }
  for (const w of results.warnings ?? [])
    issues.push(`- process warning in the bench client (${w.count}×, first while running ${w.during}): ${w.name}: ${w.message}`);
  if (issues.length) out.push('## Notes from the run', '', ...issues, '');
  out.push(profileSection(results.profiles));
  out.push('## Method and caveats', '');
  out.push(...METHOD);
  if (results.targets['warden-modern']) out.push(...MODERN_METHOD);
  return out.join('\n');
}

const METHOD = [
  '- Everything runs on loopback on one machine: the bench client, the gateway and the server(s) share the 2 cores, so figures include that contention; the load average above shows what else ran at the time.',
  '- Each target is started fresh for each repetition and stopped (SIGTERM to the gateway, then SIGKILL to any process of its tree still alive) after its phases; repetitions alternate the target order.',
  "- The raw client keeps one POST keep-alive agent; SSE replies arrive on the GET stream, Streamable replies are parsed from the POST's SSE or JSON body. The raw Streamable client opens no standalone GET stream.",
  '- mcp-warden runs with `--http-rate 0 --max-sessions-per-client 2000 --max-children 1100 --idle-timeout-ms 0 --pool-min 2` and bearer auth on every request; supergateway and mcp-proxy run with their defaults and no auth (neither has bearer auth on by default). supergateway has no host flag: it and mcp-proxy run under `bench/servers/loopback.mjs`, a preload that binds every listen to 127.0.0.1 and reports the port (`--port 0`).',
  '- "bare relay (reference)" is `bench/servers/bareRelay.mjs`: node:http with one child per session and lines relayed untouched (no auth, validation, policy, limits, logging or process hygiene). It is not a product; it shows what HTTP and the extra hops cost on this machine, so that mcp-warden can be read against the most any Node gateway could do here.',
  '- supergateway SSE spawns one child for all sessions and sends every child message to every session; mcp-proxy starts one child and multiplexes sessions over one SDK client; supergateway Streamable (`--stateful`) and mcp-warden (isolated) start one child per session. "mcp-warden multiplexed" is a whitelist entry with `"mode": "shared"` (gateway defaults otherwise); it is reported n/a when the gateway refuses that entry at start.',
  "- The CPU profile runs after everything else on a fresh gateway, with the profiler attached; its calls/s show the machine load at that moment as much as the profiler's cost, so compare its rows with each other, not with the main table.",
  '- Latency is client-observed wall time per call (process.hrtime.bigint). Percentiles are nearest-rank over all repetitions pooled.',
];
