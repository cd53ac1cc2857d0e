#!/usr/bin/env node
// CPU time per call of the process in front of the server: mcp-warden (SSE, Streamable
// HTTP, 2026-07-28) and the bare relay, with the raw client and 16 calls in flight. CPU
// time (utime + stime of the front process, from /proc) barely moves with what else the
// machine is doing, unlike latency and throughput, so it tells on a busy machine what a
// change to the message path costs.
//   npm run build && node bench/cpuPerCall.mjs [calls per target, default 20000] [rounds, default 3]
import { readFileSync } from 'node:fs';
import { killAllNow } from './lib/procs.mjs';
import { postAgent } from './lib/rawClients.mjs';
import { startTarget, TARGETS } from './servers/targets.mjs';

const CALLS = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const IN_FLIGHT = 16;
const TICKS_PER_SECOND = 100; // USER_HZ on Linux
const IDS = ['warden-sse', 'bare-sse', 'warden-mcp', 'bare-mcp', 'warden-modern'];

/** utime + stime of `pid` in seconds. */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

async function run(session, n) {
  let left = n;
  const worker = async () => {
    while (left > 0) {
      left -= 1;
      await session.echo('sixteen bytes...');
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

async function measure(target) {
  const inst = await startTarget(target, { poolMin: 1 });
  try {
    const session = inst.session('raw');
    await session.open();
    await run(session, 2_000); // warm up the JIT of both ends
    const pid = inst.service.pid;
    const before = cpuSeconds(pid);
    const started = process.hrtime.bigint();
    await run(session, CALLS);
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    const cpuUs = ((cpuSeconds(pid) - before) / CALLS) * 1e6;
    await session.close();
    return { cpuUs, callsPerSecond: (CALLS / wallMs) * 1000 };
  } finally {
    await inst.stop();
  }
}

const results = Object.fromEntries(IDS.map((id) => [id, []]));
try {
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const id of round % 2 === 0 ? IDS : [...IDS].reverse()) {
      results[id].push(await measure(TARGETS.find((t) => t.id === id)));
      process.stderr.write(`round ${round + 1} ${id}: ${results[id].at(-1).cpuUs.toFixed(1)} µs CPU per call\n`);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const cpu = Object.fromEntries(IDS.map((id) => [id, median(results[id].map((r) => r.cpuUs))]));
  process.stdout.write(`| target | CPU µs per call (median of ${ROUNDS}) | vs the bare relay of its transport |\n|---|---|---|\n`);
  for (const id of IDS) {
    const relay = id === 'warden-sse' ? cpu['bare-sse'] : id.startsWith('warden') ? cpu['bare-mcp'] : undefined;
    process.stdout.write(`| ${id} | ${cpu[id].toFixed(1)} | ${relay ? `${(cpu[id] / relay).toFixed(2)}×` : ''} |\n`);
  }
} finally {
  postAgent.destroy();
  killAllNow();
}
