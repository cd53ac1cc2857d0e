/**
 * At --max-sessions-per-client, a client's least recently used session that has been idle
 * for --evict-idle-ms gives way to its new one; with none that idle (or with a call in
 * flight) the new one gets 429 as before, so holders of a shared secret cannot take each
 * other's working sessions. A client that never sends DELETE (open, call a tool, forget,
 * like the conformance suite does) can open 30 sessions in a row at a cap of 16.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { fixtureEntry, initializeBody, MCP_ACCEPT, startGateway, type TestGateway } from '../helpers/gateway.js';
import { isAlive, waitFor, waitForNoDescendants } from '../helpers/procs.js';

const KEY = 'mux';
const gateways: TestGateway[] = [];
const clients: Client[] = [];

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
  await waitForNoDescendants(process.pid, { timeoutMs: 15_000 });
});

async function start(settings: Parameters<typeof startGateway>[1]): Promise<TestGateway> {
  const gw = await startGateway({ [KEY]: fixtureEntry('mux-server.mjs') }, { poolMin: 1, idleTimeoutMs: 0, ...settings });
  gateways.push(gw);
  return gw;
}

/**
 * An SDK v1 client that does not try to reopen its event stream once its session is gone
 * (the SDK's retry timer would outlive the test otherwise).
 */
async function connect(gw: TestGateway): Promise<Client> {
  const reconnectionOptions = { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 };
  const transport = new StreamableHTTPClientTransport(gw.url(KEY, 'mcp'), { requestInit: { headers: gw.headers() }, reconnectionOptions });
  const client = new Client({ name: 'warden-test', version: '1.0.0' });
  clients.push(client);
  await client.connect(transport);
  return client;
}

async function open(gw: TestGateway): Promise<{ client: Client; pid: number; sessionId: string }> {
  const client = await connect(gw);
  const pid = Number(((await client.callTool({ name: 'whoami', arguments: {} })).content as { text: string }[])[0]!.text);
  return { client, pid, sessionId: gw.gateway.sessions.all().find((s) => s.bridge.child.pid === pid)!.id };
}

const ids = (gw: TestGateway) => new Set(gw.gateway.sessions.all().map((s) => s.id));

/** Waits (polling) until the session has been quiet for `ms`. */
async function quietFor(gw: TestGateway, sessionId: string, ms: number): Promise<void> {
  await waitFor(() => Date.now() - gw.gateway.sessions.all().find((s) => s.id === sessionId)!.lastActivity >= ms, { message: `session quiet for ${ms} ms` });
}

describe('--max-sessions-per-client with --evict-idle-ms', () => {
  it('closes the least recently used idle session for the new one', async () => {
    const gw = await start({ maxSessionsPerClient: 2, evictIdleMs: 50 });
    const first = await open(gw);
    const second = await open(gw);
    await quietFor(gw, first.sessionId, 50);
    await quietFor(gw, second.sessionId, 50);
    // The second one is used again: the first is now the least recently used.
    await second.client.callTool({ name: 'echo', arguments: { message: 'busy' } });
    await quietFor(gw, second.sessionId, 50);
    const third = await open(gw);
    expect(ids(gw)).toEqual(new Set([second.sessionId, third.sessionId]));
    await waitFor(() => !isAlive(first.pid), { message: "the evicted session's child gone" });
  });

  it('refuses with 429 when no session has been idle long enough', async () => {
    const gw = await start({ maxSessionsPerClient: 2, evictIdleMs: 600_000 });
    const first = await open(gw);
    const second = await open(gw);
    const res = await fetch(gw.url(KEY, 'mcp'), { method: 'POST', headers: gw.headers(MCP_ACCEPT), body: JSON.stringify(initializeBody()) });
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { data: Record<string, unknown> } }).error.data).toMatchObject({
      code: 'rate_limited',
      limit: 'maxSessionsPerClient',
      max: 2,
    });
    expect(ids(gw)).toEqual(new Set([first.sessionId, second.sessionId]));
  });

  it('never closes a session with a call in flight', async () => {
    const gw = await start({ maxSessionsPerClient: 1, evictIdleMs: 1 });
    const only = await open(gw);
    void only.client.callTool({ name: 'slow', arguments: { tag: 'working' } }, undefined, { timeout: 30_000 }).catch(() => undefined);
    await waitFor(() => gw.gateway.sessions.all()[0]!.bridge.inFlight === 1, { message: 'the slow call in flight' });
    await quietFor(gw, only.sessionId, 5);
    const res = await fetch(gw.url(KEY, 'mcp'), { method: 'POST', headers: gw.headers(MCP_ACCEPT), body: JSON.stringify(initializeBody()) });
    expect(res.status).toBe(429);
    expect(ids(gw)).toEqual(new Set([only.sessionId]));
    await only.client.callTool({ name: 'release', arguments: {} });
  });

  it('lets a client that never sends DELETE open 30 sessions in a row at a cap of 16', async () => {
    const gw = await start({ maxSessionsPerClient: 16, evictIdleMs: 20 });
    for (let i = 0; i < 30; i += 1) {
      const client = await connect(gw);
      const result = await client.callTool({ name: 'echo', arguments: { message: `session ${i}` } });
      expect(result.content).toEqual([{ type: 'text', text: `session ${i}` }]);
    }
    expect(gw.gateway.sessions.size).toBe(16);
  });
});
