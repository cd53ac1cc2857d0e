/**
 * Fly.io routing at the edges: a draining machine sends the first request of a new session
 * elsewhere (`fly-replay: elsewhere=true` on its 503) while requests of its own sessions get
 * the plain 503; and outside Fly (no machine id) nothing changes: session ids stay UUIDs and
 * no answer ever carries `fly-replay`, whatever the request looks like.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import net from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { MachineSessionIds } from '../../src/fly/sessionIds.js';
import { deploymentKey } from '../../src/modern/conversations.js';
import { liveMachines } from '../helpers/flyRelay.js';
import { EVERYTHING, EVERYTHING_ENTRY, fixtureEntry, initializeBody, MCP_ACCEPT, startGateway, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import { waitForNoDescendants } from '../helpers/procs.js';
import { parseResponses, type RawResponse } from '../helpers/rawHttp.js';

const STUBBORN = 'stubborn-server';
const COMMANDS = { [EVERYTHING]: EVERYTHING_ENTRY, [STUBBORN]: fixtureEntry('stubborn-server.mjs') };
const STOP = { stopEofMs: 300, stopTermMs: 500 };

let gw: TestGateway | undefined;
const clients: Client[] = [];

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await gw?.close();
  gw = undefined;
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

/** A session whose child ignores stdin EOF and SIGTERM: the drain takes all its stop stages. */
async function slowSession(g: TestGateway): Promise<void> {
  const client = new Client({ name: 'fly-drain', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(g.url(STUBBORN, 'mcp'), { requestInit: { headers: g.headers() } }));
  clients.push(client);
}

/**
 * Sends each of `requests` (raw HTTP/1.1) on a keep-alive connection whose previous request
 * was still in progress when the drain began (new connections are no longer accepted), and
 * returns the answer to each.
 */
async function answersWhileDraining(g: TestGateway, requests: string[]): Promise<RawResponse[]> {
  const port = Number(new URL(g.base).port);
  const host = `127.0.0.1:${port}`;
  const auth = `Authorization: Bearer ${g.secret}`;
  const sockets = await Promise.all(
    requests.map(async (_request, i) => {
      const socket = net.connect(port, '127.0.0.1');
      await once(socket, 'connect');
      let received = '';
      socket.setEncoding('utf8').on('data', (d: string) => (received += d));
      const closed = once(socket, 'close');
      const seen = new Promise<void>((resolve) => {
        const onRequest = (req: IncomingMessage) => {
          if (!req.url?.includes(`drain-probe-${i}`)) return;
          g.gateway.server.off('request', onRequest);
          resolve();
        };
        g.gateway.server.on('request', onRequest);
      });
      socket.write(
        `POST /${EVERYTHING}/messages?sessionId=drain-probe-${i} HTTP/1.1\r\nHost: ${host}\r\n${auth}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n`,
      );
      await seen; // headers parsed, body still missing: the connection is busy
      return { socket, closed, received: () => received };
    }),
  );
  const closing = g.gateway.close();
  sockets.forEach(({ socket }, i) => socket.write(`{}${requests[i]!.replaceAll('HOST', host).replaceAll('AUTH', auth)}`));
  await closing;
  await Promise.all(sockets.map((s) => s.closed));
  return sockets.map((s) => {
    const [probe, answer] = parseResponses(s.received());
    expect(probe?.status).toBe(404);
    return answer!;
  });
}

const SSE_GET = `GET /${EVERYTHING}/sse HTTP/1.1\r\nHost: HOST\r\nAUTH\r\nAccept: text/event-stream\r\n\r\n`;
const init = JSON.stringify(initializeBody());
const INITIALIZE = `POST /${EVERYTHING}/mcp HTTP/1.1\r\nHost: HOST\r\nAUTH\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${init.length}\r\n\r\n${init}`;
const list = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' });
const sessionPost = (id: string) =>
  `POST /${EVERYTHING}/mcp HTTP/1.1\r\nHost: HOST\r\nAUTH\r\nMcp-Session-Id: ${id}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${list.length}\r\n\r\n${list}`;

describe('a draining machine on Fly.io', () => {
  it('sends a new session elsewhere (503 with fly-replay: elsewhere=true); its own sessions get the plain 503', async () => {
    gw = await startGateway(COMMANDS, { ...STOP, flyMachineId: 'machine-d' }, { machines: liveMachines(['machine-d', 'machine-e']) });
    await slowSession(gw);
    const own = new MachineSessionIds('machine-d', deploymentKey(TEST_SECRET, 'session id')).mint();
    const [sse, initialize, session] = await answersWhileDraining(gw, [SSE_GET, INITIALIZE, sessionPost(own)]);
    for (const answer of [sse!, initialize!]) {
      expect(answer.status).toBe(503);
      expect(answer.headers['fly-replay']).toBe('elsewhere=true');
      expect(answer.headers['retry-after']).toBe('1');
      expect(JSON.parse(answer.body).error.data.code).toBe('draining');
    }
    expect(session!.status).toBe(503);
    expect(session!.headers['fly-replay']).toBeUndefined();
  });
});

describe('outside Fly.io (no machine id)', () => {
  it('keeps random UUID session ids and never answers with fly-replay', async () => {
    gw = await startGateway(COMMANDS, STOP);
    const g = gw;
    const seen: (string | null)[] = [];
    const post = async (headers: Record<string, string>, body: string) => {
      const res = await fetch(g.url(EVERYTHING, 'mcp'), { method: 'POST', headers: g.headers({ ...MCP_ACCEPT, ...headers }), body });
      seen.push(res.headers.get('fly-replay'));
      await res.arrayBuffer();
      return res;
    };

    const opened = await post({}, init);
    const id = opened.headers.get('mcp-session-id')!;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect((await post({ 'Mcp-Session-Id': id }, list)).status).toBe(200);
    // An id shaped like another machine's, valid MAC and all: an unknown session here.
    const foreign = new MachineSessionIds('machine-b', deploymentKey(TEST_SECRET, 'session id')).mint();
    expect((await post({ 'Mcp-Session-Id': foreign }, list)).status).toBe(404);
    const big = JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list', params: { pad: 'x'.repeat(1_100_000) } });
    expect((await post({ 'Mcp-Session-Id': foreign }, big)).status).toBe(404);
    expect((await post({ 'Mcp-Session-Id': id }, big)).status).toBe(200);
    expect((await post({ 'Mcp-Session-Id': foreign, 'fly-replay-src': 'instance=machine-b' }, list)).status).toBe(404);
    const modern = await post(
      { 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/list' },
      JSON.stringify({
        jsonrpc: '2.0',
        id: 4,
        method: 'tools/list',
        params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } },
      }),
    );
    expect(modern.status).toBe(200);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request(g.url(EVERYTHING, 'mcp'), {
        method: 'POST',
        headers: g.headers({ ...MCP_ACCEPT, 'Mcp-Session-Id': foreign, 'Transfer-Encoding': 'chunked' }),
      });
      req.once('response', (res) => {
        seen.push((res.headers['fly-replay'] as string | undefined) ?? null);
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.once('error', reject);
      req.end(list);
    });
    expect(chunked).toBe(404);

    await slowSession(g);
    const [sse, initialize] = await answersWhileDraining(g, [SSE_GET, INITIALIZE]);
    for (const answer of [sse!, initialize!]) {
      expect(answer.status).toBe(503);
      seen.push(answer.headers['fly-replay'] ?? null);
    }
    expect(seen.every((header) => header === null)).toBe(true);
    expect(seen.length).toBeGreaterThanOrEqual(9);
  });
});
