#!/usr/bin/env node
// CPU profile of mcp-warden during the throughput phase, before optimising anything.
//   npm run build && node bench/profile.mjs [sse|mcp ...]
// Starts a fresh gateway as `node --cpu-prof --cpu-prof-dir .bench/prof dist/main.js ...`
// for each transport, warms one raw session up, runs the throughput phase (16 in flight,
// at least 3 s), stops the gateway (which writes the .cpuprofile on exit) and prints the
// top 10 functions by self time inside the throughput window. `npm run bench -- --cpu-prof`
// does the same after the main run and puts the tables in BENCHMARKS.md.
import { profileThroughput } from './lib/cpuprofile.mjs';
import { killAllNow } from './lib/procs.mjs';
import { postAgent } from './lib/rawClients.mjs';
import { profileSection } from './lib/report.mjs';
import { loadSettings } from './lib/util.mjs';

const transports = process.argv.slice(2).filter((a) => a === 'sse' || a === 'mcp');
const bail = (code) => {
  killAllNow();
  process.exit(code);
};
process.on('SIGINT', () => bail(130));
process.on('SIGTERM', () => bail(143));
setTimeout(() => {
  process.stderr.write('profile run exceeded 5 minutes; killing everything\n');
  bail(1);
}, 5 * 60_000).unref();

const settings = loadSettings();
const profiles = [];
try {
  for (const transport of transports.length ? transports : ['sse', 'mcp']) profiles.push(await profileThroughput(transport, settings));
  process.stdout.write(`${profileSection(profiles)}\n`);
  postAgent.destroy();
  bail(0);
} catch (error) {
  process.stderr.write(`profile failed: ${error.stack ?? error}\n`);
  bail(1);
}
