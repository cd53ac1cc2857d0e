// 1,000 concurrent idle sessions: mcp-warden over Streamable HTTP with the tiny idle
// fixture (so the children fit in memory and the figure is the gateway's own cost), a
// capped number with the real server-everything, 1,000 multiplexed sessions on one shared
// server-everything child, and the peers' Streamable transports with the idle fixture.
import { readFileSync } from 'node:fs';
import { idleSessionsPhase } from './phases.mjs';
import { SERVERS, TARGETS, startTarget } from '../servers/targets.mjs';

/** MemAvailable in bytes. */
function memAvailable() {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** A real server-everything child costs this much resident (measured ~60–70 MB; rounded up). */
const EVERYTHING_CHILD_BYTES = 90 * 2 ** 20;

export async function idlePhases(settings, sampler, log) {
  const byId = (id) => TARGETS.find((t) => t.id === id);
  const realCap = Math.max(1, Math.floor((memAvailable() * 0.5) / EVERYTHING_CHILD_BYTES));
  const realN = Math.min(settings.idleRealN, realCap);
  const runs = [
    { id: 'warden-idle', label: 'mcp-warden Streamable', target: byId('warden-mcp'), server: 'idle', n: settings.idleN },
    {
      id: 'warden-real',
      label: 'mcp-warden Streamable',
      target: byId('warden-mcp'),
      server: 'everything',
      n: realN,
      cap: `${realN} (BENCH_IDLE_REAL_N=${settings.idleRealN}; memory cap ${realCap} = half of MemAvailable / 90 MB)`,
    },
    // Multiplexed: every session on one shared server-everything child (the mode meant for this).
    { id: 'warden-shared-idle', label: 'mcp-warden multiplexed Streamable', target: byId('warden-shared-mcp'), server: 'everything', n: settings.idleN },
    { id: 'sg-idle', label: 'supergateway Streamable', target: byId('sg-mcp'), server: 'idle', n: settings.idlePeerN },
    { id: 'proxy-idle', label: 'mcp-proxy Streamable', target: byId('proxy-mcp'), server: 'idle', n: settings.idlePeerN },
  ].filter((r) => !settings.targets || settings.targets.includes(r.target.id));
  const out = [];
  for (const run of runs) {
    log(`  ${run.label} × ${run.n} (${run.server})`);
    const row = { id: run.id, label: run.label, server: run.server === 'idle' ? 'idle fixture' : 'server-everything', requested: run.n, cap: run.cap };
    let inst;
    try {
      inst = await startTarget(run.target, { server: SERVERS[run.server], poolMin: 0, timeoutMs: 30_000 });
    } catch (error) {
      row.error = `start failed: ${error.message.split('\n')[0]}`;
      out.push(row);
      continue;
    }
    sampler.watch(inst.monitor);
    try {
      Object.assign(row, await idleSessionsPhase(inst, run.n));
      log(
        `    ${row.opened}/${row.requested} open in ${(row.setupMs / 1000).toFixed(1)} s; gateway ${(row.after.own / 2 ** 20).toFixed(1)} MB, tree ${(row.after.tree / 2 ** 20).toFixed(0)} MB, children ${row.children}${row.firstError ? `; first error: ${row.firstError}` : ''}`,
      );
    } catch (error) {
      row.error = error.message.split('\n')[0];
    } finally {
      const peaks = sampler.unwatch(inst.monitor);
      row.peakOwn = peaks?.own;
      row.peakTree = peaks?.tree;
      const t0 = Date.now();
      const { leftovers } = await inst.stop(15_000);
      row.stopMs = Date.now() - t0;
      row.leftovers = leftovers;
    }
    out.push(row);
  }
  return out;
}
