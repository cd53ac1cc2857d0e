/**
 * Two gateway instances as two Fly.io machines behind a stand-in for Fly's proxy
 * (test/helpers/flyRelay.ts) that alternates requests between them and follows `fly-replay`:
 * real clients of both 2025 transports and of 2026-07-28 complete their work; the machine
 * that does not own a session or conversation never starts a child for it; forged and
 * tampered ids, oversized and chunked bodies, replayed requests and machines that left the
 * list get the documented answers.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { MachineSessionIds } from '../../src/fly/sessionIds.js';
import { deploymentKey } from '../../src/modern/conversations.js';
import { FlyRelay, liveMachines } from '../helpers/flyRelay.js';
import { EVERYTHING, initializeBody, MCP_ACCEPT, startGateway, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const A = 'machine-a';
const B = 'machine-b';
const viewOfA = liveMachines([A, B]);
const viewOfB = liveMachines([A, B]);
let a: TestGateway;
let b: TestGateway;
let relay: FlyRelay;
const closers: (() => Promise<unknown>)[] = [];

const portOf = (gw: TestGateway) => Number(new URL(gw.base).port);
const gateways = () => [a, b];
const modernSessions = (gw: TestGateway) => gw.gateway.sessions.all().filter((s) => s.kind === 'modern').length;

beforeAll(async () => {
  a = await startGateway(undefined, { flyMachineId: A, flyAppName: 'warden-test' }, { machines: viewOfA });
  b = await startGateway(undefined, { flyMachineId: B, flyAppName: 'warden-test' }, { machines: viewOfB });
  relay = await FlyRelay.start({ [A]: portOf(a), [B]: portOf(b) });
});

beforeEach(() => {
  relay.log.length = 0;
  relay.only(undefined);
  viewOfA.set([A, B]);
  viewOfB.set([A, B]);
});

afterEach(async () => {
  await Promise.allSettled(closers.splice(0).map((close) => close()));
});

afterAll(async () => {
  await relay.close();
  await Promise.all([a.close(), b.close()]);
  await waitForNoDescendants(process.pid);
});

/** A 2025 session opened on `gw` directly: its session id. */
async function sessionOn(gw: TestGateway): Promise<string> {
  const res = await fetch(gw.url(EVERYTHING, 'mcp'), { method: 'POST', headers: gw.headers(MCP_ACCEPT), body: JSON.stringify(initializeBody()) });
  expect(res.status).toBe(200);
  await res.text();
  const id = res.headers.get('mcp-session-id')!;
  closers.push(() => fetch(gw.url(EVERYTHING, 'mcp'), { method: 'DELETE', headers: gw.headers({ 'Mcp-Session-Id': id }) }));
  return id;
}

/** A tools/list POST for `sessionId` to `url`. */
function listPost(
  gw: TestGateway,
  url: URL,
  sessionId: string,
  extra: Record<string, string> = {},
  body = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
) {
  return fetch(url, { method: 'POST', headers: gw.headers({ ...MCP_ACCEPT, 'Mcp-Session-Id': sessionId, ...extra }), body });
}

describe('session ids', () => {
  it('name the machine that holds the session, bound by a MAC', async () => {
    const id = await sessionOn(a);
    expect(id).toMatch(/^machine-a\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}$/);
    expect(await sessionOn(b)).toMatch(/^machine-b\./);
  });
});

describe('a 2025 client whose requests alternate between the machines', () => {
  it.each(['sse', 'mcp'] as const)('completes a session over %s; the other machine starts no child', async (kind) => {
    const requestInit = { headers: a.headers() };
    const transport =
      kind === 'sse'
        ? new SSEClientTransport(relay.url(EVERYTHING, 'sse'), { requestInit })
        : new StreamableHTTPClientTransport(relay.url(EVERYTHING, 'mcp'), { requestInit });
    const client = new Client({ name: 'fly-test', version: '1.0.0' });
    await client.connect(transport);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('echo');
    expect((await client.callTool({ name: 'echo', arguments: { message: `over ${kind}` } })).content).toEqual([{ type: 'text', text: `Echo: over ${kind}` }]);

    const holders = gateways().filter((gw) => gw.gateway.sessions.size === 1);
    expect(holders).toHaveLength(1);
    const other = holders[0] === a ? b : a;
    expect(other.gateway.sessions.size).toBe(0);
    expect(other.gateway.processes.total()).toBe(0);
    // Requests that reached the other machine were replayed, once, to the holder.
    expect(relay.replayed().length).toBeGreaterThan(0);
    expect(relay.replayed().every((e) => e.hops.length === 2 && e.hops[1]!.status < 400)).toBe(true);
    expect(relay.replayedTwice()).toEqual([]);
    expect(relay.log.filter((e) => e.failed)).toEqual([]);

    if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession();
    await client.close();
    await waitFor(() => a.gateway.sessions.size + b.gateway.sessions.size === 0, { message: 'the session closed' });
    await waitFor(() => a.gateway.processes.total() + b.gateway.processes.total() === 0, { message: 'its child stopped' });
  });
});

describe('a 2026-07-28 client whose requests alternate between the machines', () => {
  async function modernClient(): Promise<V2Client> {
    const client = new V2Client({ name: 'fly-modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await client.connect(new V2Transport(relay.url(EVERYTHING, 'mcp'), { requestInit: { headers: a.headers() } }));
    closers.push(() => client.close());
    return client;
  }

  it('is served by the one owner of its conversation; the other machine starts no child', async () => {
    const client = await modernClient();
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('echo');
    expect((await client.callTool({ name: 'echo', arguments: { message: 'modern' } })).content).toEqual([{ type: 'text', text: 'Echo: modern' }]);
    expect((await client.callTool({ name: 'echo', arguments: { message: 'again' } })).content).toEqual([{ type: 'text', text: 'Echo: again' }]);

    const owner = modernSessions(a) === 1 ? a : b;
    const other = owner === a ? b : a;
    expect([modernSessions(owner), modernSessions(other)]).toEqual([1, 0]);
    expect(other.gateway.processes.total()).toBe(0);
    expect(relay.replayed().length).toBeGreaterThan(0);
    expect(relay.replayed().every((e) => e.hops[1]!.machine === (owner === a ? A : B))).toBe(true);
    expect(relay.replayedTwice()).toEqual([]);
  });

  it('carries a multi round-trip request across machines: its requestState names the holder, where the retry goes', async () => {
    const client = new V2Client(
      { name: 'fly-mrtr', version: '1.0.0' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities: { elicitation: { form: {} } } },
    );
    await client.connect(new V2Transport(relay.url(EVERYTHING, 'mcp'), { requestInit: { headers: a.headers() } }));
    closers.push(() => client.close());
    client.setRequestHandler('elicitation/create', async () => ({
      action: 'accept',
      content: { name: 'Ada', check: true, firstLine: 'x', integer: 1, number: 1.5, enum: 'Option 1' },
    }));
    const result = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    expect(JSON.stringify(result.content)).toContain('Ada');

    const holder = modernSessions(a) === 1 ? A : B;
    const retry = relay.log.find((e) => e.body.includes('"requestState"'))!;
    const state = (JSON.parse(retry.body) as { params: { requestState: string } }).params.requestState;
    expect(JSON.parse(Buffer.from(state.split('.')[0]!, 'base64url').toString('utf8')).machine).toBe(holder);
    expect(retry.hops.at(-1)).toMatchObject({ machine: holder, status: 200 });
    expect(relay.replayedTwice()).toEqual([]);
  });

  it('moves a key whose owner left the list to a live machine, which starts its own child', async () => {
    const client = await modernClient();
    await client.callTool({ name: 'echo', arguments: { message: 'before' } });
    const owner = modernSessions(a) === 1 ? a : b;
    const [survivor, survivorId, view] = owner === a ? [b, B, viewOfB] : [a, A, viewOfA];
    expect(modernSessions(survivor)).toBe(0);

    // The survivor no longer sees the owner: requests that land on it are served there.
    view.set([survivorId]);
    relay.only(survivorId);
    relay.log.length = 0;
    expect((await client.callTool({ name: 'echo', arguments: { message: 'after' } })).content).toEqual([{ type: 'text', text: 'Echo: after' }]);
    expect(modernSessions(survivor)).toBe(1);
    expect(relay.replayed()).toEqual([]);
  });
});

describe('requests for a session another machine holds', () => {
  it('are answered 421 with fly-replay naming that machine, before anything is charged or read', async () => {
    const id = await sessionOn(a);
    const children = b.gateway.processes.total();
    const res = await listPost(b, b.url(EVERYTHING, 'mcp'), id);
    expect(res.status).toBe(421);
    expect(res.headers.get('fly-replay')).toBe(`instance=${A};fallback=force_self`);
    expect(((await res.json()) as { error: { data: { code: string } } }).error.data.code).toBe('misdirected');
    expect(b.gateway.processes.total()).toBe(children);
  });

  it('refuse a forged or tampered id as an unknown session (404), never replaying it', async () => {
    const id = await sessionOn(a);
    const [machine, random, mac] = id.split('.') as [string, string, string];
    const flipped = `${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`;
    const forged = [`${machine}.${random}.${flipped}`, `${B}.${random}.${mac}`, `${machine}.${random.replace(/^./, (c) => (c === 'x' ? 'y' : 'x'))}.${mac}`];
    for (const bad of forged) {
      for (const gw of gateways()) {
        const res = await listPost(gw, gw.url(EVERYTHING, 'mcp'), bad);
        expect([bad, res.status, res.headers.get('fly-replay')]).toEqual([bad, 404, null]);
        expect(((await res.json()) as { error: { data: { code: string } } }).error.data.code).toBe('session_not_found');
      }
    }
    // The real one still works through the relay.
    expect((await listPost(a, relay.url(EVERYTHING, 'mcp'), id)).status).toBe(200);
  });

  it('with a body over 1 MB: 413 naming the replay limit (Fly replays at most 1 MB), not the proxy error page', async () => {
    const id = await sessionOn(a);
    relay.only(B);
    const big = JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x'.repeat(1_100_000) } } });
    const res = await listPost(a, relay.url(EVERYTHING, 'mcp'), id, {}, big);
    expect(res.status).toBe(413);
    const body = (await res.json()) as { error: { message: string; data: Record<string, unknown> } };
    expect(body.error.data).toEqual({ code: 'payload_too_large', limitBytes: 1_000_000, replay: true });
    expect(body.error.message).toContain('another machine');
    expect(relay.log.at(-1)!.hops).toHaveLength(1);
    // The same body is fine for the machine that holds the session (under --body-limit).
    relay.only(A);
    expect((await listPost(a, relay.url(EVERYTHING, 'mcp'), id, {}, big)).status).toBe(200);
  });

  it('with a chunked body (no Content-Length): 411 length_required', async () => {
    const id = await sessionOn(a);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(b.url(EVERYTHING, 'mcp'), {
        method: 'POST',
        headers: b.headers({ ...MCP_ACCEPT, 'Mcp-Session-Id': id, 'Transfer-Encoding': 'chunked' }),
      });
      req.once('response', (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.once('error', reject);
      req.end(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }));
    });
    expect(answer.status).toBe(411);
    expect(JSON.parse(answer.body).error.data).toEqual({ code: 'length_required', limitBytes: 1_000_000 });
  });

  it('are served where they land once replayed (fly-replay-src), never replayed again', async () => {
    const id = await sessionOn(a);
    const res = await listPost(b, b.url(EVERYTHING, 'mcp'), id, { 'fly-replay-src': `instance=${A};region=tst;t=1` });
    expect([res.status, res.headers.get('fly-replay')]).toEqual([404, null]);
  });

  it('naming a machine that left the list: 404 session_not_found, so the client starts over', async () => {
    const id = await sessionOn(a);
    viewOfB.set([B]);
    relay.only(B);
    const res = await listPost(a, relay.url(EVERYTHING, 'mcp'), id);
    expect([res.status, res.headers.get('fly-replay')]).toEqual([404, null]);
    const body = (await res.json()) as { error: { message: string; data: { code: string } } };
    expect(body.error.data.code).toBe('session_not_found');
    expect(body.error.message).toContain('has left');
    expect(relay.log.at(-1)!.hops).toHaveLength(1);
  });

  it('naming a listed machine the proxy cannot reach: back with fly-replay-failed, 404 instead of the proxy error page', async () => {
    const ghost = new MachineSessionIds('machine-c', deploymentKey(TEST_SECRET, 'session id')).mint();
    viewOfB.set([A, B, 'machine-c']);
    relay.only(B);
    const res = await listPost(a, relay.url(EVERYTHING, 'mcp'), ghost);
    expect(res.status).toBe(404);
    expect(relay.log.at(-1)!.hops.map((h) => [h.machine, h.status])).toEqual([
      [B, 421],
      [B, 404],
    ]);
    expect(relay.log.at(-1)!.failed).toBeUndefined();
  });

  it("over SSE: a message POST for another machine's stream is replayed there", async () => {
    relay.only(A);
    const transport = new SSEClientTransport(relay.url(EVERYTHING, 'sse'), { requestInit: { headers: a.headers() } });
    const client = new Client({ name: 'fly-sse', version: '1.0.0' });
    await client.connect(transport);
    closers.push(() => client.close());
    relay.only(B);
    relay.log.length = 0;
    const children = b.gateway.processes.total();
    expect((await client.callTool({ name: 'echo', arguments: { message: 'sse' } })).content).toEqual([{ type: 'text', text: 'Echo: sse' }]);
    expect(relay.log.map((e) => e.hops.map((h) => [h.machine, h.status]))).toEqual([
      [
        [B, 421],
        [A, 202],
      ],
    ]);
    expect(b.gateway.processes.total()).toBe(children);
  });
});
