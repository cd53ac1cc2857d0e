// The targets under test and how to start each one fresh on loopback. A started target
// gives: `monitor` (something with sampleRss() for the RSS sampler), `session(client,
// variant, token)` returning an unopened client session, optional `waitWarm()` and
// `spares()` (mcp-warden), `stateless` (2026-07-28: no session to open), and `stop()`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ProcessGroup, Service } from '../lib/procs.mjs';
import { RawModernSession, RawSseSession, RawStdioSession, RawStreamableSession, postAgent } from '../lib/rawClients.mjs';
import { SdkSession } from '../lib/sdkClients.mjs';
import { EVERYTHING, IDLE_FIXTURE, ROOT, WORK_DIR, sleep, waitFor, withTimeout } from '../lib/util.mjs';
import http from 'node:http';

export const SECRET = `bench-${randomBytes(18).toString('hex')}`;
/** The admin credential: /status details need it. */
export const ADMIN_TOKEN = `bench-admin-${randomBytes(18).toString('hex')}`;

/**
 * The environment every process the bench starts gets: the same small set mcp-warden
 * gives its children, so no target pays for something in the bench's own environment
 * (NODE_OPTIONS, NODE_EXTRA_CA_CERTS loading a CA bundle at every Node start, ...).
 */
export const CLEAN_ENV = Object.freeze({ PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', LANG: 'C.UTF-8' });
const LOOPBACK = resolve(ROOT, 'bench/servers/loopback.mjs');
const WARDEN = resolve(ROOT, 'dist/main.js');
const SUPERGATEWAY = resolve(ROOT, 'node_modules/supergateway/dist/index.js');
const MCP_PROXY = resolve(ROOT, 'node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs');
const BARE_RELAY = resolve(ROOT, 'bench/servers/bareRelay.mjs');
const START_TIMEOUT_MS = 30_000;

/** The server each target fronts: the reference server, or the tiny idle fixture. */
export const SERVERS = {
  everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
  idle: { command: '/usr/bin/mawk', args: ['-W', 'interactive', '-f', IDLE_FIXTURE] },
};
const shellLine = (server) => [server.command, ...server.args].map((a) => (/^[\w./=-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ');

export const TARGETS = [
  { id: 'direct', label: 'direct stdio', family: 'direct', transport: 'stdio' },
  { id: 'warden-sse', label: 'mcp-warden SSE', family: 'mcp-warden', transport: 'sse' },
  { id: 'warden-mcp', label: 'mcp-warden Streamable', family: 'mcp-warden', transport: 'mcp' },
  // The 2026-07-28 era on the same /<key>/mcp URL: stateless requests, one conversation
  // (one child) per principal and key, the 2025 handshake with the child done by the gateway.
  { id: 'warden-modern', label: 'mcp-warden 2026-07-28', family: 'mcp-warden', transport: 'modern' },
  { id: 'sg-sse', label: 'supergateway SSE', family: 'supergateway', transport: 'sse' },
  { id: 'sg-mcp', label: 'supergateway Streamable', family: 'supergateway', transport: 'mcp' },
  { id: 'proxy-sse', label: 'mcp-proxy SSE', family: 'mcp-proxy', transport: 'sse' },
  { id: 'proxy-mcp', label: 'mcp-proxy Streamable', family: 'mcp-proxy', transport: 'mcp' },
  // A reference, not a peer: bench/servers/bareRelay.mjs, the least a Node gateway can do.
  { id: 'bare-sse', label: 'bare relay SSE (reference)', family: 'bare', transport: 'sse' },
  { id: 'bare-mcp', label: 'bare relay Streamable (reference)', family: 'bare', transport: 'mcp' },
  // ---- HOOK: mcp-warden multiplexed ("mode": "shared" whitelist entry) ----------------
  // Support is detected by trying: the bench starts a gateway whose only entry has
  // "mode": "shared"; if the gateway rejects the file at start (exit code 2), every
  // figure of these targets is reported as "n/a" with the gateway's reason. When the
  // gateway accepts it, the same phases run unchanged (the 50x20 correctness phase is the
  // "multiplexed 50x20 in <= 1 s" check).
  { id: 'warden-shared-sse', label: 'mcp-warden multiplexed SSE', family: 'mcp-warden', transport: 'sse', shared: true },
  { id: 'warden-shared-mcp', label: 'mcp-warden multiplexed Streamable', family: 'mcp-warden', transport: 'mcp', shared: true },
];

/** The target could not start for a reason that is a result, not a bench failure. */
export class Unsupported extends Error {}

function sessionFor(client, transport, url, headers, timeoutMs) {
  if (client === 'sdk') return new SdkSession(transport, url, headers, timeoutMs);
  if (transport === 'modern') return new RawModernSession(url, headers, timeoutMs);
  return transport === 'sse' ? new RawSseSession(url, headers, timeoutMs) : new RawStreamableSession(url, headers, timeoutMs);
}

/** `n` client tokens, each its own principal: the clients file entries and the tokens. */
function clientTokens(n) {
  const tokens = Array.from({ length: n }, () => `bench-client-${randomBytes(18).toString('hex')}`);
  return { tokens, file: { clients: tokens.map((token, i) => ({ id: `bench-${i + 1}`, role: 'user', token })) } };
}

function writeWorkFile(name, entries) {
  mkdirSync(WORK_DIR, { recursive: true });
  const file = resolve(WORK_DIR, name);
  writeFileSync(file, `${JSON.stringify(entries, null, 2)}\n`);
  return file;
}

/** GET /status of a warden instance (authenticated). */
function wardenStatus(port) {
  return withTimeout(
    new Promise((resolvePromise, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/status', agent: postAgent, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          try {
            resolvePromise(JSON.parse(text));
          } catch (e) {
            reject(e);
          }
        });
      });
      req.on('error', reject);
    }),
    5000,
    'GET /status',
  );
}

/**
 * Starts mcp-warden. `entries` is the whitelist; `extraArgs` more flags; `nodeArgs` flags
 * for node itself (e.g. --cpu-prof). Rejects with Unsupported when the gateway refuses
 * its whitelist at start (exit code 2), which is how the multiplexed hook detects support.
 * `clients`: a clients file's content (`--clients`), for principals other than the shared secret.
 */
export async function startWarden({ entries, poolMin = 2, extraArgs = [], nodeArgs = [], file = 'warden-commands.json', clients }) {
  const commands = writeWorkFile(file, entries);
  if (clients) extraArgs = ['--clients', writeWorkFile(file.replace(/commands\.json$/, 'clients.json'), clients), ...extraArgs];
  const args = [
    ...nodeArgs,
    WARDEN,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--commands',
    commands,
    '--pool-min',
    String(poolMin),
    '--http-rate',
    '0',
    '--max-sessions-per-client',
    '2000',
    '--max-children',
    '1100',
    '--idle-timeout-ms',
    '0',
    ...extraArgs,
  ];
  const env = { ...CLEAN_ENV, WARDEN_SECRET: SECRET, WARDEN_ADMIN_TOKEN: ADMIN_TOKEN };
  const service = new Service('mcp-warden', process.execPath, args, { env, cwd: ROOT, stdoutToTail: true });
  try {
    const port = await service.waitLine(
      (line) => {
        if (!line.includes('"listening"')) return undefined;
        try {
          return JSON.parse(line).port;
        } catch {
          return undefined;
        }
      },
      START_TIMEOUT_MS,
      'listening line',
    );
    return { service, port, status: () => wardenStatus(port) };
  } catch (error) {
    await service.stop(2000);
    if (service.exitCode === 2)
      throw new Unsupported(service.stderrTail.find((l) => l.startsWith('mcp-warden:')) ?? service.stderrTail.join(' ').slice(0, 300));
    throw error;
  }
}

/** Starts a peer gateway under the loopback preload; resolves with its port. */
async function startPeer(name, script, args) {
  const service = new Service(name, process.execPath, ['--import', LOOPBACK, script, ...args], { cwd: ROOT, env: CLEAN_ENV, stdoutToTail: true });
  try {
    const port = await service.waitLine(
      (line) => {
        const m = /^BENCH_LISTENING (\d+)$/.exec(line.trim());
        return m ? Number(m[1]) : undefined;
      },
      START_TIMEOUT_MS,
      'BENCH_LISTENING line',
    );
    return { service, port };
  } catch (error) {
    await service.stop(2000);
    throw error;
  }
}

/** A started peer (or the bare relay) as a target instance: sessions on /sse or /mcp. */
function peerInstance(p, transport, timeoutMs) {
  const path = transport === 'sse' ? '/sse' : '/mcp';
  return {
    monitor: p.service,
    service: p.service,
    port: p.port,
    session: (client) => sessionFor(client, transport, `http://127.0.0.1:${p.port}${path}`, {}, timeoutMs),
    stop: () => p.service.stop(),
  };
}

/** Waits until a peer answers HTTP at all (its child may still be starting). */
async function settle(port, path) {
  await waitFor(
    () =>
      new Promise((r) => {
        const req = http.request({ host: '127.0.0.1', port, path, method: 'OPTIONS', agent: postAgent }, (res) => {
          res.resume();
          r(true);
        });
        req.on('error', () => r(false));
        req.setTimeout(2000, () => req.destroy());
        req.end();
      }),
    START_TIMEOUT_MS,
    `peer on port ${port} answering`,
    100,
  );
}

/**
 * Starts `target` fronting `server` (SERVERS.everything by default).
 * options: { cpuProf: dir, server, wardenArgs, timeoutMs, poolMin, clientTokens: n (mcp-warden: a clients file of n tokens) }
 */
export async function startTarget(target, options = {}) {
  const server = options.server ?? SERVERS.everything;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const nodeArgs = options.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProf] : [];

  if (target.family === 'direct') {
    const group = new ProcessGroup();
    return {
      monitor: group,
      session(client) {
        const s =
          client === 'sdk'
            ? new SdkSession('stdio', undefined, undefined, timeoutMs)
            : new RawStdioSession(timeoutMs, [server.command, ...server.args], CLEAN_ENV);
        const open = s.open.bind(s);
        const close = s.close.bind(s);
        s.open = async () => {
          const p = open();
          // the raw client's child exists right away; the SDK's once connect() spawned it
          if (s.service) group.add(s.service.pid);
          const r = await p;
          group.add(s.pid ?? s.service?.pid);
          return r;
        };
        s.close = async () => {
          group.delete(s.pid ?? s.service?.pid);
          return close();
        };
        return s;
      },
      stop: async () => ({ leftovers: 0 }),
    };
  }

  if (target.family === 'mcp-warden') {
    const key = target.shared ? 'server-shared' : 'server';
    const principals = options.clientTokens ? clientTokens(options.clientTokens) : undefined;
    const entries = target.shared ? { [key]: { ...server, mode: 'shared' } } : { [key]: { ...server }, [`${key}-cold`]: { ...server, pool: { min: 0 } } };
    const w = await startWarden({
      entries,
      poolMin: options.poolMin ?? 2,
      nodeArgs,
      extraArgs: options.wardenArgs ?? [],
      file: target.shared ? 'warden-shared-commands.json' : 'warden-commands.json',
      clients: principals?.file,
    });
    const url = (k) => `http://127.0.0.1:${w.port}/${encodeURIComponent(k)}/${target.transport === 'sse' ? 'sse' : 'mcp'}`;
    let lastTake = 0;
    return {
      monitor: w.service,
      service: w.service,
      port: w.port,
      status: w.status,
      hasWarmPool: !target.shared,
      // 2026-07-28 has no session to open: a "connect" is not a thing there.
      stateless: target.transport === 'modern',
      /** The client tokens of `options.clientTokens` (each its own principal). */
      clientTokens: principals?.tokens ?? [],
      /** `token`: a client token instead of the shared secret (another principal). */
      session(client, variant = 'warm', token = SECRET) {
        const k = variant === 'cold' && !target.shared ? `${key}-cold` : key;
        return sessionFor(client, target.transport, url(k), { authorization: `Bearer ${token}` }, timeoutMs);
      },
      /** How many warm spares the pool holds now (GET /status). */
      spares: async () => (await w.status()).commands?.[key]?.warm ?? 0,
      /** Waits until the pool holds `n` spares and the oldest has had >= 1 s to boot. */
      async waitWarm(n = 2) {
        await waitFor(async () => (await this.spares()) >= n, 20_000, `${n} warm spares`, 50);
        const wait = lastTake + 1000 - Date.now();
        if (wait > 0) await sleep(wait);
        lastTake = Date.now();
      },
      stop: () => w.service.stop(),
    };
  }

  if (target.family === 'supergateway') {
    const args = ['--stdio', shellLine(server), '--port', '0', '--logLevel', 'none'];
    if (target.transport === 'mcp') args.push('--outputTransport', 'streamableHttp', '--stateful');
    const p = await startPeer('supergateway', SUPERGATEWAY, args);
    await settle(p.port, '/');
    return peerInstance(p, target.transport, timeoutMs);
  }

  if (target.family === 'mcp-proxy') {
    const args = ['--host', '127.0.0.1', '--port', '0', '--server', target.transport === 'sse' ? 'sse' : 'stream', '--', server.command, ...server.args];
    const p = await startPeer('mcp-proxy', MCP_PROXY, args);
    return peerInstance(p, target.transport, timeoutMs);
  }
  if (target.family === 'bare') {
    const p = await startPeer('bare relay', BARE_RELAY, ['--port', '0', '--', server.command, ...server.args]);
    return peerInstance(p, target.transport, timeoutMs);
  }
  throw new TypeError(`unknown target family ${target.family}`);
}
