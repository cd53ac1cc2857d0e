/**
 * Starts a real gateway in this process on a random loopback port, with a whitelist
 * written to a temp file, and collects its log lines for assertions.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Transport from 'winston-transport';
import winston from 'winston';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { validateSettings, type SettingsInput } from '../../src/config/settings.js';
import { createGateway, type Gateway, type GatewayDeps } from '../../src/gateway.js';
import { ChildTransport } from '../../src/process/childTransport.js';
import type { ChildPort } from '../../src/bridge/childPort.js';
import { fixturePath } from './fixtures.js';
import { isAlive } from './procs.js';

export const TEST_SECRET = 'test-secret-0123456789abcdef';
/** The admin credential of test gateways (WARDEN_ADMIN_TOKEN): /status details, /metrics. */
export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
export const EVERYTHING = 'mcp-server-everything';
export const EVERYTHING_ENTRY = {
  command: process.execPath,
  args: [join(process.cwd(), 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'), 'stdio'],
};

/** A whitelist entry that runs one of our fixture servers with node. */
export function fixtureEntry(name: string, extra: Record<string, unknown> = {}, args: string[] = []) {
  return { command: process.execPath, args: [fixturePath(name), ...args], ...extra };
}

class Collect extends Transport {
  constructor(private readonly lines: string[]) {
    super();
  }
  override log(info: unknown, next: () => void): void {
    this.lines.push(JSON.stringify(info));
    next();
  }
}

export interface TestGateway {
  readonly gateway: Gateway;
  readonly base: string;
  readonly logs: string[];
  readonly secret: string;
  url(key: string, endpoint: 'sse' | 'mcp' | 'messages'): URL;
  headers(extra?: Record<string, string>): Record<string, string>;
  /** Headers carrying the admin credential. */
  adminHeaders(): Record<string, string>;
  close(): Promise<void>;
}

export async function startGateway(
  commands: Record<string, unknown> = { [EVERYTHING]: EVERYTHING_ENTRY },
  settings: Partial<SettingsInput> = {},
  deps: Omit<GatewayDeps, 'logger'> = {},
): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-test-'));
  const commandsFile = join(dir, 'allowed-commands.json');
  writeFileSync(commandsFile, JSON.stringify(commands));
  const logs: string[] = [];
  const logger = winston.createLogger({ level: 'debug', format: winston.format.json(), transports: [new Collect(logs)] });
  const secret = (settings.secret as string | undefined) ?? TEST_SECRET;
  const gateway = await createGateway(
    validateSettings({
      host: '127.0.0.1',
      port: 0,
      commandsFile,
      secret,
      stopEofMs: 300,
      stopTermMs: 500,
      poolMin: 0,
      httpRequestsPerMinute: 0,
      authFailuresPerWindow: 1_000_000,
      adminToken: TEST_ADMIN_TOKEN,
      ...settings,
    }),
    { ...deps, logger },
  );
  const address = await gateway.listen();
  const base = `http://127.0.0.1:${address.port}`;
  return {
    gateway,
    base,
    logs,
    secret,
    url: (key, endpoint) => new URL(`${base}/${encodeURIComponent(key)}/${endpoint}`),
    headers: (extra = {}) => ({ Authorization: `Bearer ${secret}`, ...extra }),
    adminHeaders: () => ({ Authorization: `Bearer ${TEST_ADMIN_TOKEN}` }),
    close: () => gateway.close(),
  };
}

export type Kind = 'sse' | 'mcp';

/** An SDK client connected through the gateway with the given transport. */
export async function connectClient(
  gw: TestGateway,
  key: string,
  kind: Kind,
  extraHeaders: Record<string, string> = {},
): Promise<{ client: Client; transport: SSEClientTransport | StreamableHTTPClientTransport }> {
  const requestInit = { headers: gw.headers(extraHeaders) };
  const transport =
    kind === 'sse' ? new SSEClientTransport(gw.url(key, 'sse'), { requestInit }) : new StreamableHTTPClientTransport(gw.url(key, 'mcp'), { requestInit });
  const client = new Client({ name: 'warden-test', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

/** Raw JSON-RPC initialize body. */
export function initializeBody(id: number | string = 1) {
  return {
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  };
}

export const MCP_ACCEPT = { Accept: 'application/json, text/event-stream', 'Content-Type': 'application/json' };

/**
 * An SSE client transport that connects once. When the gateway ends the stream, the SDK
 * reconnects by itself (a new session, a new child); here that reconnect gets 204, which
 * stops it, so a test sees the end of its session instead of a silent replacement.
 */
export function sseConnectOnce(url: URL, requestInit: RequestInit): SSEClientTransport {
  let connections = 0;
  const fetchOnce = (input: string | URL, init?: RequestInit): Promise<Response> =>
    connections++ === 0 ? fetch(input, init) : Promise.resolve(new Response(null, { status: 204 }));
  return new SSEClientTransport(url, { requestInit, eventSourceInit: { fetch: fetchOnce } });
}

/**
 * A probe that turns true once the gateway has handled the exit of a session's child
 * (ChildTransport.exited settled, so the manager no longer counts it) and the process is gone.
 */
export function exitHandled(child: ChildPort): () => boolean {
  let handled = !(child instanceof ChildTransport);
  if (child instanceof ChildTransport) void child.exited.then(() => (handled = true));
  return () => handled && !isAlive(child.pid);
}
