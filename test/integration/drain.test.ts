/**
 * Shutdown: the in-process drain (gateway.close()), the CLI's SIGTERM drain, and the CLI's
 * crash guards (a stray rejection or exception is logged, the gateway keeps serving).
 * Waits on events or polls with deadlines; never sleeps for readiness.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import http, { type IncomingMessage } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport, SseError } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { fixturePath } from '../helpers/fixtures.js';
import { fixtureEntry, initializeBody, MCP_ACCEPT, startGateway, TEST_ADMIN_TOKEN, type Kind, type TestGateway, sseConnectOnce } from '../helpers/gateway.js';
import { ERROR_TABLE } from '../../src/errors.js';
import { descendantsOf, isAlive, waitFor, waitForNoDescendants } from '../helpers/procs.js';
import { parseResponses } from '../helpers/rawHttp.js';

const MAIN = join(process.cwd(), 'dist/main.js');
const STUBBORN = 'stubborn-server';
const ENV = 'env-server';
const COMMANDS = { [STUBBORN]: fixtureEntry('stubborn-server.mjs'), [ENV]: fixtureEntry('env-server.mjs') };
const STOP = { stopEofMs: 300, stopTermMs: 500 };
/** Slack on top of the stop stages: tree-kill's walk, exit reporting, closing the server. */
const DRAIN_MARGIN_MS = 1500;

// ---------------------------------------------------------------------------- SDK clients

interface Conn {
  readonly kind: Kind;
  readonly client: Client;
  readonly pid: number;
  /** SSE: settles (with the time) when the gateway ends the event stream. */
  readonly streamEnded: Promise<number>;
}

/** An SDK client on a new session (the SSE EventSource may connect once: no silent reconnect). */
interface Base {
  url(key: string, endpoint: 'sse' | 'mcp'): URL;
  headers(): Record<string, string>;
}

async function open(base: Base, key: string, kind: Kind): Promise<Omit<Conn, 'pid'>> {
  const requestInit = { headers: base.headers() };
  let endStream!: (at: number) => void;
  const streamEnded = new Promise<number>((resolve) => (endStream = resolve));
  let transport: SSEClientTransport | StreamableHTTPClientTransport;
  if (kind === 'sse') {
    transport = sseConnectOnce(base.url(key, 'sse'), requestInit);
    transport.onerror = (error) => {
      if (error instanceof SseError) endStream(performance.now());
    };
  } else {
    transport = new StreamableHTTPClientTransport(base.url(key, 'mcp'), {
      requestInit,
      reconnectionOptions: { maxReconnectionDelay: 1000, initialReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1, maxRetries: 0 },
    });
  }
  const client = new Client({ name: 'drain-test', version: '1.0.0' });
  await client.connect(transport);
  return { kind, client, streamEnded };
}

async function openOn(gw: TestGateway, key: string, kind: Kind): Promise<Conn> {
  const before = new Set(gw.gateway.sessions.all().map((s) => s.id));
  const conn = await open(gw, key, kind);
  const added = gw.gateway.sessions.all().filter((s) => !before.has(s.id));
  if (added.length !== 1) throw new Error(`expected one new session, found ${added.length}`);
  return { ...conn, pid: added[0]!.bridge.child.pid };
}

function textOf(result: unknown): string {
  const first = (result as { content?: { type: string; text?: string }[] }).content?.[0];
  if (first?.type !== 'text' || typeof first.text !== 'string') throw new Error(`not a text result: ${JSON.stringify(result)}`);
  return first.text;
}

// ---------------------------------------------------------------------------- raw HTTP

// ---------------------------------------------------------------------------- CLI

interface Cli {
  proc: ChildProcess;
  stdout: string[];
  stderr: string[];
  exit: Promise<number | null>;
}

function runCli(nodeArgs: string[], args: string[], env: Record<string, string> = {}): Cli {
  if (!existsSync(MAIN)) throw new Error('dist/main.js is missing: run `npm run build` (npm test does)');
  const proc = spawn(process.execPath, [...nodeArgs, MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', WARDEN_ADMIN_TOKEN: TEST_ADMIN_TOKEN, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const cli: Cli = { proc, stdout: [], stderr: [], exit: once(proc, 'exit').then(([code]) => code as number | null) };
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => cli.stdout.push(d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => cli.stderr.push(d));
  return cli;
}

function whitelist(entries: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-drain-'));
  const file = join(dir, 'allowed-commands.json');
  writeFileSync(file, JSON.stringify(entries));
  return file;
}

function cliLogs(cli: Cli): Record<string, unknown>[] {
  return cli.stderr
    .join('')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function listeningPort(cli: Cli): Promise<number> {
  const entry = await waitFor(() => cliLogs(cli).find((e) => e.message === 'listening'), { timeoutMs: 15_000, message: 'the listening log line' });
  return entry.port as number;
}

function cliBase(port: number, secret: string): Base {
  return {
    url: (key: string, endpoint: 'sse' | 'mcp') => new URL(`http://127.0.0.1:${port}/${encodeURIComponent(key)}/${endpoint}`),
    headers: () => ({ Authorization: `Bearer ${secret}` }),
  };
}

interface CommandStatus {
  warm: number;
  live: number;
}
async function commandStatus(port: number, _secret: string, key: string): Promise<CommandStatus | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/status`, { headers: { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
  const body = (await res.json()) as { commands: Record<string, CommandStatus> };
  return body.commands[key];
}

// ---------------------------------------------------------------------------- lifecycle

let gw: TestGateway | undefined;
let cli: Cli | undefined;
const clients: Client[] = [];
/** Process groups a failed test may have left behind (never in a passing run). */
const strays: number[] = [];

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await gw?.close();
  gw = undefined;
  if (cli && cli.proc.exitCode === null && cli.proc.signalCode === null) {
    cli.proc.kill('SIGKILL');
    await cli.exit;
  }
  cli = undefined;
  for (const pid of strays.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

// ---------------------------------------------------------------------------- tests

describe('gateway.close() (in-process drain)', () => {
  it('refuses new work, ends open streams, stops every child tree within the stop stages; idempotent', async () => {
    gw = await startGateway(COMMANDS, STOP);
    const g = gw;
    const port = Number(new URL(g.base).port);
    const stubborn = await openOn(g, STUBBORN, 'sse');
    const sse = await openOn(g, ENV, 'sse');
    const mcpA = await openOn(g, ENV, 'mcp');
    const mcpB = await openOn(g, ENV, 'mcp');
    clients.push(stubborn.client, sse.client, mcpA.client, mcpB.client);
    const { pid, grandchild } = JSON.parse(textOf(await stubborn.client.callTool({ name: 'pids' }))) as { pid: number; grandchild: number };
    expect(pid).toBe(stubborn.pid);
    const tree = [stubborn.pid, grandchild, sse.pid, mcpA.pid, mcpB.pid];
    expect(tree.every(isAlive)).toBe(true);
    expect(g.gateway.sessions.size).toBe(4);

    // A keep-alive connection whose request is in progress when the drain begins: its next
    // request is answered by the gateway (new connections are no longer accepted).
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    let received = '';
    socket.setEncoding('utf8').on('data', (d: string) => (received += d));
    const socketClosed = once(socket, 'close');
    const probeSeen = new Promise<void>((resolve) => {
      const onRequest = (req: IncomingMessage) => {
        if (!req.url?.includes('drain-probe')) return;
        g.gateway.server.off('request', onRequest);
        resolve();
      };
      g.gateway.server.on('request', onRequest);
    });
    const host = `127.0.0.1:${port}`;
    const auth = `Authorization: Bearer ${g.secret}`;
    socket.write(
      `POST /${ENV}/messages?sessionId=drain-probe HTTP/1.1\r\nHost: ${host}\r\n${auth}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n`,
    );
    await probeSeen; // headers parsed, body still missing: the connection is busy

    const started = performance.now();
    const closing = g.gateway.close();
    let closedAt: number | undefined;
    void closing.then(() => (closedAt = performance.now()));
    // Right away, before awaiting anything: finish the probe and pipeline a new session.
    const init = JSON.stringify(initializeBody());
    socket.write(
      '{}' +
        `POST /${ENV}/mcp HTTP/1.1\r\nHost: ${host}\r\n${auth}\r\nContent-Type: application/json\r\n` +
        `Accept: application/json, text/event-stream\r\nContent-Length: ${Buffer.byteLength(init)}\r\n\r\n${init}`,
    );
    // A brand-new connection is not served at all: the listening socket is closed.
    const fresh = await new Promise<string>((resolve) => {
      const req = http.request(g.url(ENV, 'mcp'), {
        method: 'POST',
        agent: false,
        headers: { ...g.headers(MCP_ACCEPT), 'Content-Length': Buffer.byteLength(init) },
      });
      req.once('response', (res) => {
        res.resume();
        resolve(`HTTP ${res.statusCode}`);
      });
      req.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? String(error)));
      req.end(init);
    });

    await closing;
    const closeMs = closedAt! - started;
    await socketClosed;
    const [probe, refused, ...more] = parseResponses(received);
    expect(more).toEqual([]);
    expect(probe?.status).toBe(404); // the request that was already in progress was served
    expect(refused?.status).toBe(503);
    expect(refused?.headers['retry-after']).toBe('1');
    expect(refused?.headers.connection).toBe('close');
    expect(JSON.parse(refused!.body)).toEqual({
      jsonrpc: '2.0',
      error: { code: ERROR_TABLE.draining.rpc, message: 'gateway is shutting down', data: { code: 'draining' } },
      id: null,
    });
    expect(fresh).toMatch(/^(ECONNREFUSED|HTTP 503)$/); // today: refused (server.close() stops listening at once)

    // Open SSE streams ended, before the slowest child tree was down.
    const ended = await Promise.all([stubborn.streamEnded, sse.streamEnded]);
    for (const at of ended) expect(at).toBeLessThan(closedAt!);
    // The Streamable sessions are gone: their clients can no longer use them.
    await expect(mcpA.client.ping()).rejects.toThrow();
    expect(g.gateway.sessions.size).toBe(0);

    // Every child tree stopped, the SIGTERM-proof one through all three stages, on time.
    expect(tree.filter(isAlive)).toEqual([]);
    expect(closeMs).toBeGreaterThanOrEqual(STOP.stopEofMs + STOP.stopTermMs);
    expect(closeMs).toBeLessThan(STOP.stopEofMs + STOP.stopTermMs + DRAIN_MARGIN_MS);
    await waitForNoDescendants(process.pid, { timeoutMs: 2_000 });

    // Idempotent: a second close() resolves at once.
    const again = performance.now();
    await g.gateway.close();
    expect(performance.now() - again).toBeLessThan(100);
    process.stdout.write(`[drain] in-process close() with 4 sessions (one SIGTERM-proof): ${closeMs.toFixed(0)} ms; a new connection got ${fresh}\n`);
    gw = undefined;
  });

  describe('a child still starting when close() is called', () => {
    /**
     * stubborn-server children count as started only after startupWindowMs (2 s here), so
     * close() can be called while one is running but its start is still in progress:
     * - 'spare': a warm-pool refill (poolMin 1);
     * - 'lease': a session's own child (poolMin 0, a GET /sse waiting for its lease).
     */
    async function closeWhileStarting(kind: 'spare' | 'lease'): Promise<{ pids: number[]; closeMs: number; request?: Promise<string> }> {
      gw = await startGateway({ [STUBBORN]: fixtureEntry('stubborn-server.mjs') }, { ...STOP, poolMin: kind === 'spare' ? 1 : 0, startupWindowMs: 2_000 });
      const g = gw;
      let request: Promise<string> | undefined;
      if (kind === 'lease') {
        request = fetch(g.url(STUBBORN, 'sse'), { headers: g.headers({ Accept: 'text/event-stream' }) }).then(
          async (res) => {
            await res.body?.cancel();
            return `HTTP ${res.status}`;
          },
          (error: unknown) => String(error),
        );
      }
      // The server and its grandchild run; the supervisor is still inside the startup window.
      const pids = await waitFor(
        () => {
          const found = descendantsOf(process.pid);
          return found.length >= 2 ? found : undefined;
        },
        { message: 'the server and its grandchild running' },
      );
      const status = g.gateway.processes.status(g.gateway.registry.get(STUBBORN)!);
      expect([status.warm, status.live, g.gateway.sessions.size]).toEqual([0, 0, 0]); // not started yet
      const started = performance.now();
      await g.gateway.close();
      return { pids, closeMs: performance.now() - started, request };
    }

    // Fixed in the working tree (uncommitted pool.ts change: closeAll() awaits the refills
    // under way); on HEAD close() resolved at once and the CLI orphaned the spare.
    it('a warm spare: close() resolves only after it is stopped too', async () => {
      const { pids, closeMs } = await closeWhileStarting('spare');
      expect(pids.filter(isAlive)).toEqual([]);
      expect(closeMs).toBeLessThan(2_000 + STOP.stopEofMs + STOP.stopTermMs + DRAIN_MARGIN_MS);
    });

    // BUG (src/process/manager.ts lease/closeAll): closeAll() now awaits the lease's start,
    // but lease() stops the child it got *after* that (`if (this.draining) await
    // child.close()`), and nothing awaits that close. close() resolves while the child is in
    // its stop stages; the CLI then calls process.exit(0) and a server that ignores stdin EOF
    // (and its grandchild) is orphaned (see the CLI test below). Fix: track the stop as well,
    // e.g. run the draining check and child.close() inside the promise kept in `starts`.
    it("a session's own child: close() resolves only after it is stopped too", async () => {
      const { pids, request } = await closeWhileStarting('lease');
      expect(pids.filter(isAlive)).toEqual([]);
      expect(await request).toMatch(/HTTP 503|fetch failed/); // refused: the gateway is draining
    });
  });
});

describe('the CLI', () => {
  const SECRET = 'drain-cli-secret-5b21';

  it('SIGTERM with open sessions and a warm pool: exit 0 before the grace period, no descendant left', async () => {
    const file = whitelist({ [STUBBORN]: fixtureEntry('stubborn-server.mjs'), [ENV]: fixtureEntry('env-server.mjs') });
    const GRACE_MS = 10_000;
    cli = runCli([], ['--port', '0', '--commands', file, '--pool-min', '2', '--shutdown-grace-ms', String(GRACE_MS)], { WARDEN_SECRET: SECRET });
    const proc = cli.proc;
    const port = await listeningPort(cli);
    const base = cliBase(port, SECRET);
    const stubborn = await open(base, STUBBORN, 'sse');
    const env = await open(base, ENV, 'mcp');
    const envSse = await open(base, ENV, 'sse');
    clients.push(stubborn.client, env.client, envSse.client);
    const { grandchild } = JSON.parse(textOf(await stubborn.client.callTool({ name: 'pids' }))) as { grandchild: number };
    expect(textOf(await env.client.callTool({ name: 'echo', arguments: { message: 'up' } }))).toBe('up');
    // Taking spares started refills: wait until the pool is full again, so that every child
    // the CLI will have is already running (see the 'still starting' tests above).
    await waitFor(async () => (await commandStatus(port, SECRET, STUBBORN))?.warm === 2 && (await commandStatus(port, SECRET, ENV))?.warm === 2, {
      message: 'both pools refilled to 2',
    });
    // 3 stubborn servers (1 session + 2 spares) with a grandchild each, 4 env servers (2 + 2).
    const tree = await waitFor(
      () => {
        const found = descendantsOf(proc.pid!);
        return found.length === 10 ? found : undefined;
      },
      { message: '10 descendants of the CLI' },
    );
    expect(tree).toContain(grandchild);
    for (const pid of tree) strays.push(pid); // only used if the test fails

    const started = performance.now();
    proc.kill('SIGTERM');
    const code = await cli.exit;
    const exitMs = performance.now() - started;
    expect(code).toBe(0);
    expect(exitMs).toBeLessThan(GRACE_MS);
    for (const pid of tree) await waitFor(() => !isAlive(pid), { timeoutMs: 3_000, message: `pid ${pid} stopped with the CLI` });
    expect(cliLogs(cli).some((e) => e.message === 'shutdown deadline passed, exiting')).toBe(false);
    await stubborn.streamEnded;
    strays.length = 0;
    process.stdout.write(`[drain] CLI SIGTERM with 3 sessions and 4 spares (10 processes): exit 0 after ${exitMs.toFixed(0)} ms\n`);
  });

  /** SIGTERM while a stubborn-server child is inside its 3 s startup window. */
  async function sigtermWhileStarting(kind: 'spare' | 'lease'): Promise<number[]> {
    const file = whitelist({ [STUBBORN]: fixtureEntry('stubborn-server.mjs') });
    cli = runCli([], ['--port', '0', '--commands', file, '--pool-min', kind === 'spare' ? '1' : '0', '--startup-window-ms', '3000'], {
      WARDEN_SECRET: SECRET,
    });
    const c = cli;
    const port = await listeningPort(c);
    if (kind === 'lease') {
      void fetch(`http://127.0.0.1:${port}/${STUBBORN}/sse`, { headers: { Authorization: `Bearer ${SECRET}` } }).then(
        (res) => res.body?.cancel(),
        () => undefined,
      );
    }
    const tree = await waitFor(
      () => {
        const found = descendantsOf(c.proc.pid!);
        return found.length >= 2 ? found : undefined;
      },
      { message: 'the server and its grandchild running' },
    );
    strays.push(...tree); // killed in afterEach if they outlive the CLI
    c.proc.kill('SIGTERM');
    expect(await c.exit).toBe(0);
    return tree;
  }

  it('SIGTERM while a warm spare is still starting leaves no process behind', async () => {
    const tree = await sigtermWhileStarting('spare');
    for (const pid of tree) await waitFor(() => !isAlive(pid), { timeoutMs: 2_000, message: `pid ${pid} stopped with the CLI` });
  });

  // The lease bug above, seen from outside: the server and its grandchild outlive the CLI.
  it("SIGTERM while a session's child is still starting leaves no process behind", async () => {
    const tree = await sigtermWhileStarting('lease');
    for (const pid of tree) await waitFor(() => !isAlive(pid), { timeoutMs: 2_000, message: `pid ${pid} stopped with the CLI` });
  });

  it('crash guards: an unhandled rejection and an uncaught exception are logged and the gateway keeps serving', async () => {
    const file = whitelist({ [ENV]: fixtureEntry('env-server.mjs') });
    const preload = pathToFileURL(fixturePath('inject-faults.mjs')).href;
    cli = runCli(['--import', preload], ['--port', '0', '--commands', file], { WARDEN_SECRET: SECRET });
    const port = await listeningPort(cli);
    const c = cli;
    const rejection = await waitFor(() => cliLogs(c).find((e) => e.message === 'unhandled rejection (gateway keeps running)'), {
      message: 'the unhandled rejection log line',
    });
    const exception = await waitFor(() => cliLogs(c).find((e) => e.message === 'uncaught exception (gateway keeps running)'), {
      message: 'the uncaught exception log line',
    });
    expect(c.stderr.join('')).toContain('inject-faults: injecting (guards installed)');
    expect(rejection.level).toBe('error');
    expect(String(rejection.error)).toContain('injected rejection');
    expect(String(exception.error)).toContain('injected exception');
    expect(c.proc.exitCode).toBeNull();

    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    for (const kind of ['mcp', 'sse'] as const) {
      const conn = await open(cliBase(port, SECRET), ENV, kind);
      clients.push(conn.client);
      expect(conn.client.getServerVersion()?.name).toBe('env-server');
      const tools = await conn.client.listTools();
      expect(tools.tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'env']));
      expect(textOf(await conn.client.callTool({ name: 'echo', arguments: { message: `after faults ${kind}` } }))).toBe(`after faults ${kind}`);
    }
    c.proc.kill('SIGTERM');
    expect(await c.exit).toBe(0);
    expect(c.stdout.join('')).toBe('');
  });
});
