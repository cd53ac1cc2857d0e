/**
 * The built CLI as a separate process: secret generation and banner, stdout kept empty,
 * configuration errors, and a SIGTERM drain that leaves no child behind.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureEntry } from '../helpers/gateway.js';
import { descendantsOf, isAlive, waitFor, waitForNoDescendants } from '../helpers/procs.js';

const MAIN = join(process.cwd(), 'dist/main.js');

interface Cli {
  proc: ChildProcess;
  stdout: string[];
  stderr: string[];
  exit: Promise<number | null>;
}

function runCli(args: string[], env: Record<string, string> = {}): Cli {
  if (!existsSync(MAIN)) throw new Error('dist/main.js is missing: run `npm run build` (npm test does)');
  const proc = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const cli: Cli = { proc, stdout: [], stderr: [], exit: once(proc, 'exit').then(([code]) => code as number | null) };
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => cli.stdout.push(d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => cli.stderr.push(d));
  return cli;
}

function whitelist(entries: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-cli-'));
  const file = join(dir, 'allowed-commands.json');
  writeFileSync(file, JSON.stringify(entries));
  return file;
}

async function listeningPort(cli: Cli): Promise<number> {
  const line = await waitFor(
    () =>
      cli.stderr
        .join('')
        .split('\n')
        .find((l) => l.includes('"message":"listening"')),
    {
      timeoutMs: 15_000,
      message: 'the listening log line',
    },
  );
  return (JSON.parse(line) as { port: number }).port;
}

let running: Cli | undefined;
afterEach(async () => {
  if (running && running.proc.exitCode === null) {
    running.proc.kill('SIGKILL');
    await running.exit;
  }
  running = undefined;
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

describe('mcp-warden CLI', () => {
  it('generates a secret when none is set, prints it once to stderr, and nothing to stdout', async () => {
    const file = whitelist({ env: fixtureEntry('env-server.mjs') });
    running = runCli(['--port', '0', '--commands', file]);
    const port = await listeningPort(running);
    // The banner follows the 'listening' log line (it needs the bound port).
    const secret = await waitFor(() => /Authorization: Bearer (\S+)\n[\s\S]*Example: /.exec(running!.stderr.join(''))?.[1], {
      message: 'the banner with the generated secret',
    });
    const banner = running.stderr.join('');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(banner).toContain(`http://127.0.0.1:${port}/env/mcp`);
    expect(banner.split(secret!).length - 1).toBe(2); // the secret line and the header example, once each

    const ok = await fetch(`http://127.0.0.1:${port}/env/mcp`, { headers: { Authorization: `Bearer ${secret}` } });
    expect(ok.status).toBe(405); // authenticated, but a GET without a 2025 session
    const denied = await fetch(`http://127.0.0.1:${port}/env/mcp`, { headers: { Authorization: 'Bearer nope-nope-nope' } });
    expect(denied.status).toBe(401);
    running.proc.kill('SIGTERM');
    expect(await running.exit).toBe(0);
    expect(running.stdout.join('')).toBe('');
    // Log lines written after the banner never carry the secret.
    const logLines = running.stderr
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(0);
    for (const line of logLines) expect(line).not.toContain(secret);
  });

  it('uses WARDEN_SECRET when set and never logs it', async () => {
    const secret = 'cli-test-secret-7f3a9c';
    const file = whitelist({ env: fixtureEntry('env-server.mjs') });
    running = runCli(['--port', '0', '--commands', file, '--log-level', 'debug'], { WARDEN_SECRET: secret });
    const port = await listeningPort(running);
    expect(running.stderr.join('')).not.toContain('generated secret');
    const res = await fetch(`http://127.0.0.1:${port}/env/mcp`, { headers: { Authorization: `Bearer ${secret}` } });
    expect(res.status).toBe(405); // authenticated, but a GET without a 2025 session
    running.proc.kill('SIGTERM');
    expect(await running.exit).toBe(0);
    expect(running.stderr.join('')).not.toContain(secret);
  });

  it('SIGTERM drains: open sessions end, every child tree is stopped, exit code 0', async () => {
    const file = whitelist({ stubborn: fixtureEntry('stubborn-server.mjs') });
    running = runCli(['--port', '0', '--commands', file], { WARDEN_SECRET: 'drain-secret-123' });
    const port = await listeningPort(running);
    const controller = new AbortController();
    const stream = await fetch(`http://127.0.0.1:${port}/stubborn/sse`, {
      headers: { Authorization: 'Bearer drain-secret-123' },
      signal: controller.signal,
    });
    expect(stream.status).toBe(200);
    // The server and its grandchild run under the CLI process.
    const tree = await waitFor(
      () => {
        const pids = descendantsOf(running!.proc.pid!);
        return pids.length >= 2 ? pids : undefined;
      },
      { message: 'server and grandchild running' },
    );
    const started = Date.now();
    running.proc.kill('SIGTERM');
    expect(await running.exit).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    controller.abort();
    for (const pid of tree) await waitFor(() => !isAlive(pid), { message: `pid ${pid} stopped` });
  });

  it('an invalid whitelist fails at start with exit 2 and names the bad key', async () => {
    const file = whitelist({ 'good-one': { command: 'node' }, 'bad-one': { command: 'node', allowEnv: ['X'] } });
    running = runCli(['--port', '0', '--commands', file], { WARDEN_SECRET: 'whatever-secret' });
    expect(await running.exit).toBe(2);
    expect(running.stderr.join('')).toMatch(/bad-one/);
    expect(running.stdout.join('')).toBe('');
  });

  it('a policy section for a key that is not in the whitelist fails at start with exit 2, naming the nearest key', async () => {
    const commands = whitelist({ 'sms-server': fixtureEntry('sms-server.mjs'), env: fixtureEntry('env-server.mjs') });
    const policy = join(mkdtempSync(join(tmpdir(), 'warden-cli-')), 'policy.json');
    writeFileSync(policy, JSON.stringify({ default: 'allow', commands: { 'sms-srever': { default: 'deny' } } }));
    running = runCli(['--port', '0', '--commands', commands, '--policy', policy], { WARDEN_SECRET: 'whatever-secret' });
    expect(await running.exit).toBe(2);
    expect(running.stderr.join('')).toContain(`mcp-warden: ${policy}: commands["sms-srever"]: "sms-srever" is not a key of the whitelist`);
    expect(running.stderr.join('')).toContain('did you mean "sms-server"?');
    expect(running.stdout.join('')).toBe('');
  });

  it("starts with the README's simple policy form (no name)", async () => {
    const commands = whitelist({ env: fixtureEntry('env-server.mjs') });
    const policy = join(mkdtempSync(join(tmpdir(), 'warden-cli-')), 'policy.json');
    writeFileSync(policy, '{"default":"deny","tools":{"allow":["echo"]}}');
    running = runCli(['--port', '0', '--commands', commands, '--policy', policy], { WARDEN_SECRET: 'whatever-secret' });
    await listeningPort(running);
    running.proc.kill('SIGTERM');
    expect(await running.exit).toBe(0);
  });

  it('--version and -v print the package version on stdout and exit 0', async () => {
    const { version } = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      running = runCli([flag], { PORT: 'not-a-port' });
      expect(await running.exit).toBe(0);
      expect(running.stdout.join('')).toBe(`${version}\n`);
      expect(running.stderr.join('')).toBe('');
    }
  });

  it('--help prints the usage on stderr and exits 0', async () => {
    running = runCli(['--help']);
    expect(await running.exit).toBe(0);
    expect(running.stderr.join('')).toMatch(/^Usage: mcp-warden \[options\]\n/);
    expect(running.stderr.join('')).toContain('  -v, --version ');
    expect(running.stdout.join('')).toBe('');
  });

  it('bad flags and values fail with exit 2 and name the flag', async () => {
    running = runCli(['--port', 'eighty'], { WARDEN_SECRET: 'whatever-secret' });
    expect(await running.exit).toBe(2);
    expect(running.stderr.join('')).toMatch(/--port/);
    running = runCli(['--no-such-flag']);
    expect(await running.exit).toBe(2);
    running = runCli(['--port', '0'], { WARDEN_SECRET: 'short' });
    expect(await running.exit).toBe(2);
    expect(running.stderr.join('')).toMatch(/WARDEN_SECRET/);
    expect(running.stderr.join('')).not.toContain('short');
  });

  it('on Fly.io without WARDEN_SECRET refuses to start, saying how to set one', async () => {
    const commands = whitelist({ env: fixtureEntry('env-server.mjs') });
    const cli = runCli(['--port', '0', '--commands', commands], { FLY_APP_NAME: 'my-fly-app' });
    running = cli;
    expect(await cli.exit).toBe(2);
    expect(cli.stderr.join('')).toContain('fly secrets set WARDEN_SECRET=');
  });

  it("on Fly.io accepts the app's own Host by default and names a refused Host and the setting", async () => {
    const commands = whitelist({ env: fixtureEntry('env-server.mjs') });
    const secret = 'fly-secret-0123456789';
    const cli = runCli(['--port', '0', '--commands', commands], { FLY_APP_NAME: 'my-fly-app', WARDEN_SECRET: secret });
    running = cli;
    const port = await listeningPort(cli);
    const get = (host: string) => httpGet(port, '/status', { Host: host, Authorization: `Bearer ${secret}` });
    expect((await get('my-fly-app.fly.dev')).status).toBe(200);
    const refused = await get('old-name.fly.dev');
    expect(refused.status).toBe(403);
    const message = (JSON.parse(refused.body) as { error: { message: string } }).error.message;
    expect(message).toContain('"old-name.fly.dev"');
    expect(message).toContain('WARDEN_ALLOWED_HOSTS');
    await waitFor(() => cli.stderr.join('').includes('Host header \\"old-name.fly.dev\\" is not allowed'), { message: 'the warn log line' });
    cli.proc.kill('SIGTERM');
    expect(await cli.exit).toBe(0);
  });
});

/** A GET with chosen headers (fetch would not let a test set Host). */
function httpGet(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}
