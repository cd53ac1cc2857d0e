/**
 * `mcp-warden commands` as a separate process (dist/main.js): on a file (add, refusals that
 * name the entry, check, list, remove, url, the file's formatting and `$schema`), and on a
 * running gateway with `--remote` (add, then an SDK client at the printed URL calls a tool;
 * remove with a live session: it keeps working, a new one gets 404; with --on-remove end it
 * ends). The admin token only ever comes from the environment.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { loadCommandsFile } from '../../src/config/commands.js';
import { fixtureEntry, startGateway, TEST_ADMIN_TOKEN, type TestGateway } from '../helpers/gateway.js';
import { MAIN, runCli, type CliRun } from '../helpers/cli.js';
import { fixturePath } from '../helpers/fixtures.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const SCHEMA = join(process.cwd(), 'schema/allowed-commands.schema.json');

/** `mcp-warden commands <args>` in `cwd`, with `env` added to PATH and HOME. */
const commands = (args: string[], env: Record<string, string> = {}, cwd = process.cwd()): Promise<CliRun> => runCli(['commands', ...args], { env, cwd });

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'warden-commands-cli-'));
}

const gateways: TestGateway[] = [];
const clients: Client[] = [];

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

/** The Streamable HTTP URL `commands url` printed. */
function printedUrl(run: CliRun): URL {
  const match = /^ {2}Streamable HTTP {2}(\S+)$/m.exec(run.stdout);
  if (!match) throw new Error(`no endpoint in:\n${run.stdout}\n${run.stderr}`);
  return new URL(match[1]!);
}

async function connectAt(url: URL, secret: string): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${secret}` } } });
  const client = new Client({ name: 'warden-cli-test', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

async function markOf(client: Client): Promise<string | undefined> {
  const result = (await client.callTool({ name: 'env', arguments: {} })) as { content: Array<{ text: string }> };
  return (JSON.parse(result.content[0]!.text) as Record<string, string>).MARK;
}

describe('mcp-warden commands on a file', () => {
  it('add writes a new file with $schema, readable 2-space JSON the loader accepts', async () => {
    const dir = tempDir();
    const file = join(dir, 'allowed-commands.json');
    const run = await commands(
      [
        'add',
        'github',
        '--allow-env',
        'GITHUB_TOKEN',
        '--description',
        'GitHub',
        '--idle',
        'hibernate',
        '--hibernate-after-ms',
        '120000',
        '--max-memory-mb',
        '300',
        '--',
        'npx',
        '-y',
        '@modelcontextprotocol/server-github',
      ],
      {},
      dir,
    );
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain('added "github" to allowed-commands.json');
    expect(run.stdout).toContain('/github/mcp');
    const text = readFileSync(file, 'utf8');
    const json = JSON.parse(text) as Record<string, unknown>;
    expect(fileURLToPath(new URL(json.$schema as string, pathToFileURL(file)))).toBe(SCHEMA);
    expect(json.github).toEqual({
      description: 'GitHub',
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-github'],
      allowedEnv: ['GITHUB_TOKEN'],
      idle: 'hibernate',
      hibernateAfterMs: 120000,
      maxMemoryMb: 300,
    });
    expect(text).toContain('\n  "github": {\n    "description": "GitHub",\n');
    const [spec] = await loadCommandsFile(file);
    expect(spec).toMatchObject({ key: 'github', command: 'npx', idle: 'hibernate', hibernateAfterMs: 120000, maxMemoryMb: 300 });
  });

  it('takes only whole numbers for --max-memory-mb and --hibernate-after-ms (exit 2), and the loader bounds them (exit 1)', async () => {
    const dir = tempDir();
    const word = await commands(['add', 'srv', '--max-memory-mb', 'lots', '--', 'node', 'srv.js'], {}, dir);
    expect(word.code).toBe(2);
    expect(word.stderr).toContain('--max-memory-mb takes a whole number, not "lots"');
    const small = await commands(['add', 'srv', '--max-memory-mb', '8', '--', 'node', 'srv.js'], {}, dir);
    expect(small.code).toBe(1);
    expect(small.stderr).toContain('maxMemoryMb');
    expect(existsSync(join(dir, 'allowed-commands.json'))).toBe(false);
  });

  it('refuses a key that exists (unless --replace) and an entry the loader refuses, naming the entry; exit 1, file unchanged', async () => {
    const dir = tempDir();
    const file = join(dir, 'w.json');
    writeFileSync(file, JSON.stringify({ one: { command: 'node' } }));
    const exists = await commands(['add', 'one', '--file', file, '--', 'node', 'x.js']);
    expect(exists.code).toBe(1);
    expect(exists.stderr).toBe(`mcp-warden commands: entry "one" already exists in ${file}; replace it with --replace (or remove it first)\n`);
    const walled = await commands(['add', 'two', '--file', file, '--allow-env', 'LD_PRELOAD', '--', 'node']);
    expect(walled.code).toBe(1);
    expect(walled.stderr).toContain(`${file}: entry "two": allowedEnv[0] "LD_PRELOAD" names a variable no client may ever set`);
    const mode = await commands(['add', 'two', '--file', file, '--mode', 'pooled', '--', 'node']);
    expect(mode.stderr).toContain('entry "two": mode must be "isolated" or "shared"');
    expect(readFileSync(file, 'utf8')).toBe(JSON.stringify({ one: { command: 'node' } }));
    const replaced = await commands(['add', 'one', '--replace', '--file', file, '--env', 'A=1', 'FROM_SHELL', '--', 'node', 'y.js'], {
      FROM_SHELL: 'shell-value',
    });
    expect(replaced.code).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ one: { command: 'node', args: ['y.js'], env: { A: '1', FROM_SHELL: 'shell-value' } } });
  });

  it('check prints each URL path (exit 0), or the entry at fault (exit 1); list and remove', async () => {
    const dir = tempDir();
    const file = join(dir, 'allowed-commands.json');
    writeFileSync(file, JSON.stringify({ $schema: './s.json', 'npx -y @scope/pkg': {}, files: { command: 'node', env: { TOKEN: 'never-printed-7f3a' } } }));
    const ok = await commands(['check', file]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`${file}: 2 entries, valid`);
    expect(ok.stdout).toContain('/npx%20-y%20%40scope%2Fpkg/mcp');
    expect(ok.stdout).toContain('/files/mcp');
    const list = await commands(['list'], { WARDEN_COMMANDS: file });
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('files  /files/mcp\n  runs: node\n  env: TOKEN (values (hidden))');
    expect(list.stdout + list.stderr).not.toContain('never-printed-7f3a');
    const removed = await commands(['remove', 'files', '--file', file]);
    expect(removed).toMatchObject({ code: 0, stdout: `removed "files" from ${file}\n` });
    const missing = await commands(['remove', 'file', '--file', file]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no entry "file"');

    writeFileSync(file, JSON.stringify({ good: {}, bad: { command: 'node', argz: [] } }));
    const broken = await commands(['check', '--file', file]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(`${file}: entry "bad": unknown field "argz"`);
  });

  it('url prints the endpoints and each client configuration; the admin token is never a flag', async () => {
    const dir = tempDir();
    const file = join(dir, 'w.json');
    writeFileSync(file, JSON.stringify({ 'my server': { command: 'node' } }));
    const run = await commands(['url', 'my server', '--file', file, '--public-url', 'https://app.fly.dev/']);
    expect(run.code).toBe(0);
    expect(printedUrl(run).href).toBe('https://app.fly.dev/my%20server/mcp');
    expect(run.stdout).toContain('SSE (legacy)     https://app.fly.dev/my%20server/sse');
    expect(run.stdout).toContain(
      'claude mcp add --transport http my-server https://app.fly.dev/my%20server/mcp --header "Authorization: Bearer $WARDEN_SECRET"',
    );
    expect(run.stdout).toContain('"Authorization": "Bearer ${env:WARDEN_SECRET}"');
    expect(run.stdout).toContain('"mcp-remote",');
    expect(run.stdout).toContain("Only useful when the gateway's OAuth authorization server is on");
    expect(run.stdout).toContain('new StreamableHTTPClientTransport(new URL("https://app.fly.dev/my%20server/mcp")');
    const local = await commands(['url', 'my server', '--file', file], { PORT: '9123' });
    expect(printedUrl(local).href).toBe('http://127.0.0.1:9123/my%20server/mcp');
    const fromEnv = await commands(['url', 'my server', '--file', file], { WARDEN_PUBLIC_URL: 'https://env.example' });
    expect(printedUrl(fromEnv).origin).toBe('https://env.example');
    const typo = await commands(['url', 'my sever', '--file', file]);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('did you mean "my server"?');
    const token = await commands(['add', 'x', '--file', file, '--admin-token', TEST_ADMIN_TOKEN, '--', 'node']);
    expect(token.code).toBe(2);
    expect(token.stderr).toContain('never from the command line');
    expect(token.stderr).not.toContain(TEST_ADMIN_TOKEN);
  });
});

describe('the start banner', () => {
  it("lists every key's URL path when the secret was generated", async () => {
    const dir = tempDir();
    const file = join(dir, 'allowed-commands.json');
    writeFileSync(file, JSON.stringify({ one: fixtureEntry('env-server.mjs'), 'npx -y @scope/two': fixtureEntry('env-server.mjs') }));
    const proc = spawn(process.execPath, [MAIN, '--port', '0', '--commands', file, '--pool-min', '0'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exit = once(proc, 'exit');
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const banner = await waitFor(() => /Every server[^\n]*\n((?: {2}http\S+\n)+)/.exec(stderr)?.[1], { timeoutMs: 15_000, message: 'the banner' });
    proc.kill('SIGTERM');
    expect((await exit)[0]).toBe(0);
    const port = /"port":(\d+)/.exec(stderr)![1];
    expect(banner).toBe(`  http://127.0.0.1:${port}/one/mcp\n  http://127.0.0.1:${port}/npx%20-y%20%40scope%2Ftwo/mcp\n`);
  });
});

describe('mcp-warden commands --remote', () => {
  const admin = { WARDEN_ADMIN_TOKEN: TEST_ADMIN_TOKEN };

  async function gateway(settings: Parameters<typeof startGateway>[1] = {}): Promise<TestGateway> {
    const gw = await startGateway({ first: fixtureEntry('env-server.mjs') }, { commandsPollMs: 20, ...settings });
    gateways.push(gw);
    return gw;
  }

  it('adds an entry a client reaches at the printed URL; remove lets the live session finish, a new one gets 404', async () => {
    const gw = await gateway();
    const add = await commands(['add', 'demo', '--remote', gw.base, '--env', 'MARK=remote', '--', process.execPath, fixturePath('env-server.mjs')], admin);
    expect(add).toMatchObject({ code: 0, stderr: '' });
    expect(add.stdout).toContain(`added "demo" on ${gw.base}`);
    expect(add.stdout).toContain(`endpoint: ${gw.base}/demo/mcp`);

    const again = await commands(['add', 'demo', '--remote', gw.base, '--', 'node'], admin);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('entry "demo" already exists');

    const listed = await commands(['list', '--remote', gw.base, '--json'], admin);
    expect((JSON.parse(listed.stdout) as { commands: Array<{ key: string; entry: { env?: unknown } }> }).commands.map((c) => [c.key, c.entry.env])).toEqual([
      ['first', undefined],
      ['demo', { MARK: '(hidden)' }],
    ]);

    const url = printedUrl(await commands(['url', 'demo', '--remote', gw.base], admin));
    expect(url.href).toBe(`${gw.base}/demo/mcp`);
    const { client, transport } = await connectAt(url, gw.secret);
    expect(await markOf(client)).toBe('remote');

    const removed = await commands(['remove', 'demo', '--remote', gw.base], admin);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain('it had 1 live session');
    expect(await markOf(client)).toBe('remote');
    await expect(connectAt(url, gw.secret)).rejects.toThrow(/unknown_command/);
    await transport.terminateSession();
    await waitFor(() => gw.gateway.sessions.size === 0, { message: 'the session to end' });
  });

  it('with --on-remove end, remove ends the live session', async () => {
    const gw = await gateway({ onRemove: 'end' });
    expect((await commands(['add', 'demo', '--remote', gw.base, '--', process.execPath, fixturePath('env-server.mjs')], admin)).code).toBe(0);
    const { client } = await connectAt(new URL(`${gw.base}/demo/mcp`), gw.secret);
    expect(await markOf(client)).toBeUndefined();
    expect((await commands(['remove', 'demo', '--remote', gw.base], admin)).code).toBe(0);
    await waitFor(() => gw.gateway.sessions.size === 0, { message: "the removed entry's session to end" });
    await expect(markOf(client)).rejects.toThrow();
  });

  it("needs WARDEN_ADMIN_TOKEN, refuses plain http to another host, and reports the gateway's refusal", async () => {
    const gw = await gateway();
    const missing = await commands(['list', '--remote', gw.base]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('export WARDEN_ADMIN_TOKEN');
    const clear = await commands(['list', '--remote', 'http://gateway.example.com'], admin);
    expect(clear.code).toBe(2);
    expect(clear.stderr).toContain('--remote must be https://');
    // A name that merely starts with 127. is not this machine.
    const lookalike = await commands(['list', '--remote', 'http://127.evil.example'], admin);
    expect(lookalike.code).toBe(2);
    expect(lookalike.stderr).toContain('--remote must be https://');
    const secret = await commands(['add', 'evil', '--remote', gw.base, '--', 'sh', '-c', 'id'], { WARDEN_ADMIN_TOKEN: gw.secret });
    expect(secret.code).toBe(1);
    expect(secret.stderr).toContain('answered 403');
    expect(gw.gateway.registry.keys()).toEqual(['first']);
  });
});
