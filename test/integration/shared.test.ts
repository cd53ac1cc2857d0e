/**
 * Shared (multiplexed) children: a whitelist entry with `"mode": "shared"` serves every
 * env-free session from one child (or `sharedChildren` of them). The gateway initializes
 * the child once and answers each session's initialize from that result (with the child's
 * protocol version); request ids and progress tokens are rewritten so that colliding ids
 * never cross between sessions; cancellations are mapped both ways; resource updates and
 * log messages reach the sessions that asked for them, other server notifications every
 * session;
 * server-to-client requests other than ping are refused; a dying child ends all its
 * sessions at once. Real gateway, real fixture processes, random ports; waits on events
 * or polls with deadlines, never sleeps for readiness.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike, Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CreateMessageRequestSchema,
  ErrorCode,
  LATEST_PROTOCOL_VERSION,
  ListRootsRequestSchema,
  McpError,
  ToolListChangedNotificationSchema,
  type ClientCapabilities,
  type JSONRPCMessage,
} from '@modelcontextprotocol/sdk/types.js';
import { fixtureEntry, MCP_ACCEPT, startGateway, type Kind, type TestGateway, sseConnectOnce } from '../helpers/gateway.js';
import { ERROR_TABLE } from '../../src/errors.js';
import { cmdline, descendantsOf, isAlive, waitFor, waitForNoDescendants } from '../helpers/procs.js';

const MUX = 'mux';
const ENV = 'env-shared';
const SHARED = { mode: 'shared' };
type Json = Record<string, any>;

const gateways: TestGateway[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).map((close) => close()));
  await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
  await waitForNoDescendants(process.pid);
});

async function gateway(
  commands: Record<string, unknown> = { [MUX]: fixtureEntry('mux-server.mjs', SHARED) },
  settings: Parameters<typeof startGateway>[1] = {},
): Promise<TestGateway> {
  const gw = await startGateway(commands, { maxSessionsPerClient: 200, ...settings });
  gateways.push(gw);
  return gw;
}

/** Live fixture processes running `script` under this process. */
function live(script: string): number[] {
  return descendantsOf(process.pid).filter((pid) => isAlive(pid) && cmdline(pid).includes(script));
}

async function status(gw: TestGateway, key = MUX): Promise<Json> {
  const res = await fetch(`${gw.base}/status`, { headers: gw.adminHeaders() });
  expect(res.status).toBe(200);
  return ((await res.json()) as Json).commands[key] as Json;
}

function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content;
  const first = content?.[0];
  if (content?.length !== 1 || first?.type !== 'text' || typeof first.text !== 'string') {
    throw new Error(`not a single text result: ${JSON.stringify(result)}`);
  }
  return first.text;
}

// ---------------------------------------------------------------------------------------
// SDK clients

interface Opened {
  readonly kind: Kind;
  readonly client: Client;
  readonly transport: SSEClientTransport | StreamableHTTPClientTransport;
  /** Every message the client sent, in order. */
  readonly sent: JSONRPCMessage[];
  /** Every message the client received after connecting, in order. */
  readonly received: JSONRPCMessage[];
  /** Resolves once the Streamable standalone GET stream is open (at once for SSE). */
  readonly standalone: Promise<void>;
  call(name: string, args?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

interface OpenOptions {
  readonly key?: string;
  readonly headers?: Record<string, string>;
  readonly capabilities?: ClientCapabilities;
  /** Handlers to register before connecting. */
  readonly setup?: (client: Client) => void;
}

/**
 * An SDK client through the gateway, recording what it sends. The SSE EventSource connects
 * once only: a reconnect after the stream ends would silently open another session.
 */
async function open(gw: TestGateway, kind: Kind, options: OpenOptions = {}): Promise<Opened> {
  const key = options.key ?? MUX;
  const requestInit = { headers: gw.headers(options.headers) };
  let transport: SSEClientTransport | StreamableHTTPClientTransport;
  let standalone: Promise<void> = Promise.resolve();
  if (kind === 'sse') {
    transport = sseConnectOnce(gw.url(key, 'sse'), requestInit);
  } else {
    let opened!: () => void;
    standalone = new Promise<void>((resolve) => (opened = resolve));
    const watchGet: FetchLike = async (url, init) => {
      const res = await fetch(url, init);
      if ((init?.method ?? 'GET') === 'GET' && res.ok) opened();
      return res;
    };
    transport = new StreamableHTTPClientTransport(gw.url(key, 'mcp'), { requestInit, fetch: watchGet });
  }
  const sent: JSONRPCMessage[] = [];
  const wire: Transport = transport;
  const send = wire.send.bind(wire);
  wire.send = (message, sendOptions) => {
    sent.push(message);
    return send(message, sendOptions);
  };
  const client = new Client({ name: 'shared-test', version: '1.0.0' }, { capabilities: options.capabilities ?? {} });
  options.setup?.(client);
  await client.connect(transport, { timeout: 20_000 });
  const received: JSONRPCMessage[] = [];
  const deliver = wire.onmessage!;
  wire.onmessage = (message, extra) => {
    received.push(message);
    deliver(message, extra);
  };
  const opened: Opened = {
    kind,
    client,
    transport,
    sent,
    received,
    standalone,
    call: async (name, args = {}) => textOf(await client.callTool({ name, arguments: args }, undefined, { timeout: 20_000 })),
    async close() {
      if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession().catch(() => undefined);
      await client.close();
    },
  };
  cleanups.push(() => opened.close());
  return opened;
}

async function stats(session: Opened): Promise<{ initializes: number; cancelled: unknown[]; slow: Record<string, string>; waiting: string[] }> {
  return JSON.parse(await session.call('stats'));
}

// ---------------------------------------------------------------------------------------
// Raw sessions: exact ids on the wire

/** The JSON-RPC messages of a Streamable HTTP response, JSON or an event stream. */
async function messagesOf(res: Response): Promise<JSONRPCMessage[]> {
  const text = await res.text();
  if ((res.headers.get('content-type') ?? '').includes('application/json')) {
    const value = JSON.parse(text) as JSONRPCMessage | JSONRPCMessage[];
    return Array.isArray(value) ? value : [value];
  }
  return parseEvents(text).flatMap((e) => (e.data ? [JSON.parse(e.data) as JSONRPCMessage] : []));
}

function parseEvents(text: string): { event: string; data: string }[] {
  return text
    .split(/\r?\n\r?\n/)
    .filter((block) => block.trim() !== '')
    .map((block) => {
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      return { event, data: data.join('\n') };
    })
    .filter((e) => e.data !== '' || e.event !== 'message');
}

function initialize(id: number | string, protocolVersion: string) {
  return { jsonrpc: '2.0' as const, id, method: 'initialize', params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
}

function toolCall(id: number | string, name: string, args: Record<string, unknown>) {
  return { jsonrpc: '2.0' as const, id, method: 'tools/call', params: { name, arguments: args } };
}

interface RawSession {
  readonly kind: Kind;
  readonly initialized: JSONRPCMessage;
  /** Sends one request; resolves with its response. */
  request(message: JSONRPCMessage & { id: string | number }): Promise<JSONRPCMessage>;
  /** Status of a POST to the session (after it ended: 404). */
  postStatus(message: JSONRPCMessage): Promise<number>;
  /** Resolves when the server ended the session's stream (SSE) — Streamable: never. */
  readonly ended: Promise<void>;
}

/** A Streamable HTTP session driven with fetch. */
async function rawMcp(gw: TestGateway, protocolVersion = '2025-06-18', key = MUX): Promise<RawSession> {
  const res = await fetch(gw.url(key, 'mcp'), { method: 'POST', headers: gw.headers(MCP_ACCEPT), body: JSON.stringify(initialize(0, protocolVersion)) });
  expect(res.status).toBe(200);
  const id = res.headers.get('mcp-session-id')!;
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  const [initialized] = await messagesOf(res);
  const post = (message: JSONRPCMessage) =>
    fetch(gw.url(key, 'mcp'), { method: 'POST', headers: gw.headers({ ...MCP_ACCEPT, 'Mcp-Session-Id': id }), body: JSON.stringify(message) });
  expect((await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
  cleanups.push(() => fetch(gw.url(key, 'mcp'), { method: 'DELETE', headers: gw.headers({ 'Mcp-Session-Id': id }) }));
  return {
    kind: 'mcp',
    initialized: initialized!,
    async request(message) {
      const r = await post(message);
      expect(r.status).toBe(200);
      const messages = await messagesOf(r);
      expect(messages).toHaveLength(1);
      return messages[0]!;
    },
    postStatus: async (message) => (await post(message)).status,
    ended: new Promise<void>(() => undefined),
  };
}

/** A legacy SSE session driven with fetch: the stream is read here, event by event. */
async function rawSse(gw: TestGateway, protocolVersion = '2025-06-18', key = MUX): Promise<RawSession> {
  const controller = new AbortController();
  cleanups.push(async () => controller.abort());
  const res = await fetch(gw.url(key, 'sse'), { headers: gw.headers({ Accept: 'text/event-stream' }), signal: controller.signal });
  expect(res.status).toBe(200);
  const messages: JSONRPCMessage[] = [];
  const waiters = new Set<() => void>();
  let endpoint: URL | undefined;
  let endpointSeen!: () => void;
  const endpointReady = new Promise<void>((resolve) => (endpointSeen = resolve));
  const ended = (async () => {
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, cut + 2);
          buffer = buffer.slice(cut + 2);
          for (const e of parseEvents(block)) {
            if (e.event === 'endpoint') {
              endpoint = new URL(e.data, gw.base);
              endpointSeen();
            } else if (e.event === 'message') {
              messages.push(JSON.parse(e.data) as JSONRPCMessage);
              for (const wake of waiters) wake();
            }
          }
        }
      }
    } catch {
      // aborted by the cleanup
    } finally {
      for (const wake of waiters) wake();
    }
  })();
  let done = false;
  void ended.then(() => (done = true));
  await endpointReady;
  const post = (message: JSONRPCMessage) =>
    fetch(endpoint!, { method: 'POST', headers: gw.headers({ 'Content-Type': 'application/json' }), body: JSON.stringify(message) });
  const responseTo = (id: string | number, timeoutMs = 15_000): Promise<JSONRPCMessage> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = messages.find((m) => 'id' in m && m.id === id && !('method' in m));
        if (found) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        } else if (done) {
          waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`stream ended without a response to ${JSON.stringify(id)}`));
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no response to ${JSON.stringify(id)} in ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  expect((await post(initialize(0, protocolVersion))).status).toBe(202);
  const initialized = await responseTo(0);
  expect((await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
  return {
    kind: 'sse',
    initialized,
    async request(message) {
      const r = await post(message);
      expect(r.status).toBe(202);
      return responseTo(message.id);
    },
    postStatus: async (message) => (await post(message)).status,
    ended,
  };
}

const raw = (gw: TestGateway, kind: Kind, protocolVersion?: string, key?: string) =>
  kind === 'sse' ? rawSse(gw, protocolVersion, key) : rawMcp(gw, protocolVersion, key);

function resultText(message: JSONRPCMessage): string {
  if (!('result' in message)) throw new Error(`not a result: ${JSON.stringify(message)}`);
  return textOf(message.result);
}

// ---------------------------------------------------------------------------------------

describe('one shared child, many sessions', () => {
  it('50 sessions (SSE and Streamable) with colliding ids on one child: 20 concurrent echoes each, no cross-talk', async () => {
    const gw = await gateway();
    const SESSIONS = 50;
    const CALLS = 20;
    const sessions = await Promise.all(Array.from({ length: SESSIONS }, (_, i) => open(gw, i % 2 === 0 ? 'sse' : 'mcp')));
    expect(sessions.filter((s) => s.kind === 'sse')).toHaveLength(25);
    expect(gw.gateway.sessions.size).toBe(SESSIONS);

    // One child process for the command, one spawn, and every session on it.
    const pids = live('mux-server.mjs');
    expect(pids).toHaveLength(1);
    expect(await status(gw)).toMatchObject({ live: 1, spawns: 1, sessions: SESSIONS });
    const whoami = await Promise.all(sessions.map((session) => session.call('whoami')));
    expect(new Set(whoami)).toEqual(new Set([String(pids[0])]));

    const started = performance.now();
    const outcomes = await Promise.all(
      sessions.map((session, i) =>
        Promise.all(
          Array.from({ length: CALLS }, async (_, j) => {
            const payload = `s${i}-c${j}-${randomUUID()}`;
            const got = await session.call('echo', { message: payload });
            return got === payload;
          }),
        ),
      ),
    );
    const elapsedMs = performance.now() - started;
    const mismatches = outcomes.flat().filter((ok) => !ok).length;
    console.log(`shared child: ${SESSIONS} sessions x ${CALLS} concurrent echo calls = ${SESSIONS * CALLS} calls in ${elapsedMs.toFixed(0)} ms`);
    expect(outcomes.flat()).toHaveLength(SESSIONS * CALLS);
    expect(mismatches).toBe(0);

    // The clients' ids really collided: every client numbered its echo calls the same way.
    const echoIds = sessions.map((session) =>
      session.sent.filter((m) => 'method' in m && m.method === 'tools/call' && (m.params as Json).name === 'echo').map((m) => (m as { id: unknown }).id),
    );
    for (const ids of echoIds) expect(ids).toEqual(echoIds[0]);
    expect(echoIds[0]).toHaveLength(CALLS);

    // Still one child after all that.
    expect(live('mux-server.mjs')).toEqual(pids);
    expect(await status(gw)).toMatchObject({ live: 1, spawns: 1 });
  }, 120_000);

  it('raw ids come back as sent: id 7 and id "x" from four sessions at once, each gets its own answer', async () => {
    const gw = await gateway();
    const sessions = [await raw(gw, 'mcp'), await raw(gw, 'mcp'), await raw(gw, 'sse'), await raw(gw, 'sse')];
    expect(live('mux-server.mjs')).toHaveLength(1);
    for (const id of [7, 'x'] as const) {
      // `gather` answers only once all four calls are at the child together.
      const replies = await Promise.all(
        sessions.map((session, i) => session.request(toolCall(id, 'gather', { tag: `${session.kind}-${i}-${id}`, n: sessions.length }))),
      );
      replies.forEach((reply, i) => {
        expect(reply).toStrictEqual({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: `${sessions[i]!.kind}-${i}-${id}` }] } });
      });
    }
    expect(await status(gw)).toMatchObject({ live: 1, spawns: 1 });
  }, 60_000);
});

describe('initialize', () => {
  it('is sent to the child once and answered from the cache, with the version the child negotiated', async () => {
    const gw = await gateway();
    const clients = [await open(gw, 'sse'), await open(gw, 'mcp'), await open(gw, 'mcp')];
    const older = await rawMcp(gw, '2025-03-26');
    const olderSse = await rawSse(gw, '2025-03-26');
    const unsupported = await rawMcp(gw, '1999-01-01');
    const unsupportedSse = await rawSse(gw, '1999-01-01');

    for (const c of clients) {
      expect(c.client.getServerVersion()).toEqual({ name: 'mux-server', version: '0.0.1' });
      expect(c.client.getServerCapabilities()).toEqual({ tools: {}, resources: { subscribe: true }, prompts: {}, logging: {} });
    }
    // Older or unknown: the version the child negotiated with the gateway (it echoes the latest).
    for (const session of [older, olderSse, unsupported, unsupportedSse]) {
      expect(session.initialized).toMatchObject({ id: 0, result: { protocolVersion: LATEST_PROTOCOL_VERSION, serverInfo: { name: 'mux-server' } } });
    }

    // 7 sessions initialized; the child saw one initialize (its own count and its stderr).
    expect(gw.gateway.sessions.size).toBe(7);
    expect(live('mux-server.mjs')).toHaveLength(1);
    expect((await stats(clients[0]!)).initializes).toBe(1);
    const childLines = gw.logs.map((l) => JSON.parse(l) as Json).filter((l) => l.message === 'child stderr');
    expect(childLines.some((l) => /recv tools\/call stats/.test(l.line))).toBe(true);
    expect(childLines.filter((l) => /recv initialize /.test(l.line))).toHaveLength(1);
    expect(childLines.filter((l) => /recv notifications\/initialized /.test(l.line))).toHaveLength(1);
    // A second initialize on a live session is answered from the cache too (the SDK's
    // Streamable transport refuses re-initialization itself; the SSE one passes it on).
    expect(await olderSse.request(initialize(1, '2024-11-05'))).toMatchObject({ id: 1, result: { protocolVersion: LATEST_PROTOCOL_VERSION } });
    expect((await stats(clients[0]!)).initializes).toBe(1);
  });
});

describe('progress tokens', () => {
  it('three sessions use the same progressToken at once; each gets only its own progress and result', async () => {
    const gw = await gateway();
    const sessions = [await open(gw, 'sse'), await open(gw, 'mcp'), await open(gw, 'mcp')];
    const COUNT = 4;
    const results = await Promise.all(
      sessions.map(
        async (s, i) =>
          JSON.parse(
            textOf(
              await s.client.callTool({ name: 'progress', arguments: { tag: `p${i}`, count: COUNT, n: sessions.length } }, undefined, {
                timeout: 20_000,
                onprogress: () => undefined, // makes the SDK send a progressToken (its request id)
              }),
            ),
          ) as { tag: string; token: unknown },
      ),
    );

    // The clients sent the same token...
    const sentTokens = sessions.map((s) => {
      const call = s.sent.find((m) => 'method' in m && m.method === 'tools/call');
      return ((call as Json).params as Json)._meta.progressToken;
    });
    expect(sentTokens[0]).toBeDefined();
    expect(sentTokens).toEqual([sentTokens[0], sentTokens[0], sentTokens[0]]);
    // ...the child saw three different ones...
    const childTokens = results.map((r) => r.token);
    expect(new Set(childTokens).size).toBe(3);
    for (const t of childTokens) expect(t).toMatch(/^w\d+$/);
    // ...and each client received exactly its own notifications, with its own token, and
    // its own result. (Counted as delivered on the wire: the SDK client itself may drop
    // progress that arrives in the same chunk as the response, typescript-sdk#2580.)
    results.forEach((r, i) => expect(r.tag).toBe(`p${i}`));
    sessions.forEach((s, i) => {
      const progress = s.received.filter((m) => 'method' in m && m.method === 'notifications/progress').map((m) => (m as Json).params);
      expect(progress).toEqual(Array.from({ length: COUNT }, (_, k) => ({ progressToken: sentTokens[0], progress: k + 1, total: COUNT, message: `p${i}` })));
    });
  });
});

describe.each<[Kind, Kind]>([
  ['sse', 'mcp'],
  ['mcp', 'sse'],
])('cancellation (cancelling over %s, other session over %s)', (kindA, kindB) => {
  it('the child receives notifications/cancelled with its own id; the other session is unaffected', async () => {
    const gw = await gateway();
    const a = await open(gw, kindA);
    const b = await open(gw, kindB);
    const observer = await open(gw, 'mcp');
    const aborter = new AbortController();
    const slowA = a.client.callTool({ name: 'slow', arguments: { tag: 'A' } }, undefined, { signal: aborter.signal, timeout: 20_000 });
    const slowB = b.client.callTool({ name: 'slow', arguments: { tag: 'B' } }, undefined, { timeout: 20_000 });
    const settledA = slowA.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    const before = await waitFor(
      async () => {
        const st = await stats(observer);
        return st.waiting.length === 2 ? st : undefined;
      },
      { message: 'both slow calls at the child' },
    );
    // Both clients used the same request id; the child knows them by different ones.
    const idOf = (tag: string) => Object.keys(before.slow).find((id) => before.slow[id] === tag)!;
    const callIdOf = (s: Opened) => (s.sent.find((m) => 'method' in m && m.method === 'tools/call') as { id: unknown }).id;
    expect(callIdOf(a)).toBe(callIdOf(b));
    expect(idOf('A')).toMatch(/^w\d+$/);
    expect(idOf('B')).toMatch(/^w\d+$/);
    expect(idOf('A')).not.toBe(idOf('B'));

    aborter.abort('the user gave up');
    const outcome = await settledA;
    expect(outcome).not.toBe('resolved');
    // The client told the gateway, with its own id.
    expect(a.sent).toContainEqual(expect.objectContaining({ method: 'notifications/cancelled', params: expect.objectContaining({ requestId: callIdOf(a) }) }));

    const after = await waitFor(
      async () => {
        const st = await stats(observer);
        return st.cancelled.length > 0 ? st : undefined;
      },
      { message: 'the child got notifications/cancelled' },
    );
    expect(after.cancelled).toEqual([idOf('A')]);
    expect(after.waiting).toEqual(['B']);

    // A works on; B's call is still pending and completes normally.
    expect(await a.call('echo', { message: 'a still here' })).toBe('a still here');
    expect(await b.call('echo', { message: 'b still here' })).toBe('b still here');
    expect(await observer.call('release')).toBe('1');
    expect(textOf(await slowB)).toBe('released B');
    expect((await stats(observer)).cancelled).toEqual([idOf('A')]);
  });
});

describe.each<Kind>(['sse', 'mcp'])('server-to-client requests over %s', (kind) => {
  it('are refused with an error (the client never sees them); ping is answered', async () => {
    const gw = await gateway();
    let samplingCalls = 0;
    let rootsCalls = 0;
    const s = await open(gw, kind, {
      capabilities: { sampling: {}, roots: {}, elicitation: {} },
      setup: (client) => {
        client.setRequestHandler(CreateMessageRequestSchema, async () => {
          samplingCalls += 1;
          return { role: 'assistant', content: { type: 'text', text: 'from the client' }, model: 'test' };
        });
        client.setRequestHandler(ListRootsRequestSchema, async () => {
          rootsCalls += 1;
          return { roots: [] };
        });
      },
    });
    await s.standalone;
    for (const method of ['sampling/createMessage', 'roots/list', 'elicitation/create']) {
      const reply = JSON.parse(await s.call('ask', { method })) as Json;
      expect(reply).toEqual({
        jsonrpc: '2.0',
        id: expect.stringMatching(/^srv-\d+$/),
        error: { code: ErrorCode.MethodNotFound, message: `${method} is not available through a shared server` },
      });
    }
    expect(samplingCalls).toBe(0);
    expect(rootsCalls).toBe(0);
    const pong = JSON.parse(await s.call('ask', { method: 'ping' })) as Json;
    expect(pong).toEqual({ jsonrpc: '2.0', id: expect.stringMatching(/^srv-\d+$/), result: {} });
  });
});

describe('server notifications', () => {
  it('tools/list_changed reaches every session of the child', async () => {
    const gw = await gateway();
    const counts = [0, 0, 0, 0, 0];
    const sessions = await Promise.all(
      (['sse', 'sse', 'mcp', 'mcp', 'mcp'] as Kind[]).map((kind, i) =>
        open(gw, kind, {
          setup: (client) => client.setNotificationHandler(ToolListChangedNotificationSchema, async () => void (counts[i]! += 1)),
        }),
      ),
    );
    // Streamable sessions get unsolicited notifications on their standalone GET stream.
    await Promise.all(sessions.map((s) => s.standalone));
    expect(live('mux-server.mjs')).toHaveLength(1);
    expect(await sessions[3]!.call('change')).toBe('changed');
    await waitFor(() => counts.every((n) => n >= 1), { message: `list_changed everywhere (counts ${counts.join(',')})` });
    // Exactly one each: a round trip on every session later, nothing more has arrived.
    await Promise.all(sessions.map((s) => s.call('echo', { message: 'sync' })));
    expect(counts).toEqual([1, 1, 1, 1, 1]);
  });
});

// ---------------------------------------------------------------------------------------
// Per session on a shared child: the protocol version it speaks, resource subscriptions,
// logging levels.

const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];
const ERROR_AND_ABOVE = ['error', 'critical', 'alert', 'emergency'];

/** The params of every notification `method` that `s` received. */
function notified(s: Opened, method: string): Json[] {
  return s.received.filter((m) => 'method' in m && !('id' in m) && m.method === method).map((m) => ((m as { params?: Json }).params ?? {}) as Json);
}

/**
 * Everything the child sent before now has reached `sessions`: a list_changed broadcast
 * the child sends after it has arrived at each one, on the same stream (SSE: the session's
 * stream; Streamable: the standalone GET).
 */
async function drained(trigger: Opened, sessions: readonly Opened[]): Promise<void> {
  const marks = () => sessions.map((s) => notified(s, 'notifications/tools/list_changed').length);
  const before = marks();
  expect(await trigger.call('change')).toBe('changed');
  await waitFor(() => marks().every((n, i) => n > before[i]!), { message: 'the list_changed marker at every session' });
}

async function childState(session: Opened): Promise<{ subscribes: string[]; unsubscribes: string[]; subscribed: string[]; levels: string[] }> {
  return JSON.parse(await session.call('stats'));
}

describe('per session on a shared child', () => {
  it('every session is answered with the version the child negotiated: SDK clients connect and work over both transports, raw clients get it whatever they asked', async () => {
    const gw = await gateway({ [MUX]: fixtureEntry('mux-server.mjs', SHARED, ['--protocol-version', '2025-06-18']) });
    const negotiated: string[] = [];
    // What Client.connect hands the transport once it accepted the server's version.
    const recordVersion = (client: Client) => {
      const connect = client.connect.bind(client);
      client.connect = (transport, options) => {
        const set = transport.setProtocolVersion?.bind(transport);
        transport.setProtocolVersion = (version) => {
          negotiated.push(version);
          set?.(version);
        };
        return connect(transport, options);
      };
    };
    const sdk = [await open(gw, 'sse', { setup: recordVersion }), await open(gw, 'mcp', { setup: recordVersion })];
    expect(negotiated).toEqual(['2025-06-18', '2025-06-18']);
    for (const s of sdk) {
      expect(s.sent[0]).toMatchObject({ method: 'initialize', params: { protocolVersion: LATEST_PROTOCOL_VERSION } });
      expect(await s.call('echo', { message: `over ${s.kind}` })).toBe(`over ${s.kind}`);
    }
    expect((sdk[1]!.transport as StreamableHTTPClientTransport).protocolVersion).toBe('2025-06-18');

    for (const asked of ['2025-03-26', LATEST_PROTOCOL_VERSION, '1999-01-01']) {
      for (const session of [await rawMcp(gw, asked), await rawSse(gw, asked)]) {
        expect(session.initialized).toMatchObject({ id: 0, result: { protocolVersion: '2025-06-18', serverInfo: { name: 'mux-server' } } });
      }
    }
    expect(live('mux-server.mjs')).toHaveLength(1);
  });
});

describe.each<[Kind, Kind]>([
  ['sse', 'mcp'],
  ['mcp', 'sse'],
])('resource subscriptions per session (A over %s, B over %s)', (kindA, kindB) => {
  it('updated(X) reaches only the sessions subscribed to X; the child sees the first subscribe and the last unsubscribe', async () => {
    const gw = await gateway();
    const [a, b, observer] = [await open(gw, kindA), await open(gw, kindB), await open(gw, 'mcp')];
    await Promise.all([a, b, observer].map((s) => s.standalone));
    const X = 'file:///x';
    const updates = (s: Opened) => notified(s, 'notifications/resources/updated').map((p) => p.uri);

    expect(await a.client.subscribeResource({ uri: X })).toEqual({});
    expect(await observer.call('updated', { uri: X })).toBe('sent');
    await drained(observer, [a, b, observer]);
    expect(updates(a)).toEqual([X]);
    expect(updates(b)).toEqual([]);
    expect(updates(observer)).toEqual([]);

    expect(await b.client.subscribeResource({ uri: X })).toEqual({});
    expect(await a.client.unsubscribeResource({ uri: X })).toEqual({});
    expect(await observer.call('updated', { uri: X })).toBe('sent');
    await drained(observer, [a, b]);
    expect(updates(a)).toEqual([X]);
    expect(updates(b)).toEqual([X]);
    expect(await childState(observer)).toMatchObject({ subscribes: [X], unsubscribes: [], subscribed: [X] });

    expect(await b.client.unsubscribeResource({ uri: X })).toEqual({});
    expect(await childState(observer)).toMatchObject({ subscribes: [X], unsubscribes: [X], subscribed: [] });
    expect(await observer.call('updated', { uri: X })).toBe('not subscribed');
  });
});

describe.each<[Kind, Kind]>([
  ['sse', 'mcp'],
  ['mcp', 'sse'],
])('logging levels per session (A over %s, B over %s)', (kindA, kindB) => {
  it('A at error gets error and above, B at debug everything; the child follows the most verbose level asked', async () => {
    const gw = await gateway();
    const [a, b, observer] = [await open(gw, kindA), await open(gw, kindB), await open(gw, 'mcp')];
    await Promise.all([a, b, observer].map((s) => s.standalone));
    const levels = (s: Opened, tag: string) =>
      notified(s, 'notifications/message')
        .filter((p) => String(p.data).startsWith(`${tag} `))
        .map((p) => p.level);

    expect((await childState(observer)).levels).toEqual([]); // nobody asked: the child keeps its default
    await a.client.setLoggingLevel('error');
    await b.client.setLoggingLevel('debug');
    expect((await childState(observer)).levels).toEqual(['error', 'debug']);
    await observer.call('log', { tag: 't1' });
    await drained(observer, [a, b, observer]);
    expect(levels(a, 't1')).toEqual(ERROR_AND_ABOVE);
    expect(levels(b, 't1')).toEqual(LOG_LEVELS);
    expect(levels(observer, 't1')).toEqual(LOG_LEVELS); // never asked: what the child sends

    // The most verbose session leaves: the child goes back to the level A asked for.
    await b.close();
    await waitFor(async () => (await childState(observer)).levels.length === 3, { message: 'the child set back to error' });
    expect((await childState(observer)).levels).toEqual(['error', 'debug', 'error']);
    await observer.call('log', { tag: 't2' });
    await drained(observer, [a, observer]);
    expect(levels(a, 't2')).toEqual(ERROR_AND_ABOVE);
    expect(levels(observer, 't2')).toEqual(ERROR_AND_ABOVE);
  });
});

describe('ENV_* sessions', () => {
  it('a session with ENV_* headers gets its own child; env-free sessions stay on the shared one', async () => {
    const gw = await gateway({ [ENV]: fixtureEntry('env-server.mjs', { ...SHARED, allowedEnv: ['X'] }) });
    const envOf = async (s: Opened) => JSON.parse(await s.call('env')) as Record<string, string>;
    const pidOf = (s: Opened) => {
      const sessionId = s.transport instanceof StreamableHTTPClientTransport ? s.transport.sessionId : undefined;
      const found = gw.gateway.sessions.all().filter((x) => (sessionId ? x.id === sessionId : x.kind === 'sse'));
      return found.map((x) => x.bridge.child.pid);
    };
    const plainSse = await open(gw, 'sse', { key: ENV });
    const plainMcp = await open(gw, 'mcp', { key: ENV });
    expect(live('env-server.mjs')).toHaveLength(1);
    const [shared] = live('env-server.mjs');
    expect(pidOf(plainSse)).toEqual([shared]);
    expect(pidOf(plainMcp)).toEqual([shared]);

    const withEnv = await open(gw, 'mcp', { key: ENV, headers: { ENV_X: 'from-header' } });
    const withEnvSse = await open(gw, 'sse', { key: ENV, headers: { ENV_X: 'over-sse' } });
    const pids = live('env-server.mjs');
    expect(pids).toHaveLength(3);
    expect(pidOf(withEnv)).toHaveLength(1);
    expect(pidOf(withEnv)[0]).not.toBe(shared);
    expect((await envOf(withEnv)).X).toBe('from-header');
    expect((await envOf(withEnvSse)).X).toBe('over-sse');
    expect((await envOf(plainSse)).X).toBeUndefined();
    expect((await envOf(plainMcp)).X).toBeUndefined();
    expect(pidOf(plainMcp)).toEqual([shared]);
    expect(await status(gw, ENV)).toMatchObject({ live: 3, spawns: 3, sessions: 4 });

    // Ending the env session stops its own child only.
    await withEnv.close();
    await waitFor(() => live('env-server.mjs').length === 2, { message: 'the env child stopped' });
    expect(live('env-server.mjs')).toContain(shared);
    expect((await envOf(plainMcp)).X).toBeUndefined();
  });
});

describe('the shared child crashes', () => {
  it('every session fails its in-flight request at once and ends; the next session gets a fresh child', async () => {
    const gw = await gateway();
    const crasher = await open(gw, 'mcp');
    const sdkSse = await open(gw, 'sse');
    let sdkSseErrors = 0;
    sdkSse.client.onerror = () => void (sdkSseErrors += 1);
    const rawStreamable = await rawMcp(gw);
    const rawStream = await rawSse(gw);
    const [oldPid] = live('mux-server.mjs');
    expect(live('mux-server.mjs')).toHaveLength(1);
    expect(gw.gateway.sessions.size).toBe(4);

    // Slow calls in flight on the others first.
    const slowSdk = sdkSse.client.callTool({ name: 'slow', arguments: { tag: 'sdk-sse' } }, undefined, { timeout: 20_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const slowRawMcp = rawStreamable.request(toolCall(41, 'slow', { tag: 'raw-mcp' }));
    const slowRawSse = rawStream.request(toolCall(42, 'slow', { tag: 'raw-sse' }));
    await waitFor(async () => (await stats(crasher)).waiting.length === 3, { message: 'three slow calls at the child' });

    const started = performance.now();
    const crash = crasher.client.callTool({ name: 'crash' }, undefined, { timeout: 20_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const [crashError, sdkError, rawMcpReply, rawSseReply] = await Promise.all([crash, slowSdk, slowRawMcp, slowRawSse]);
    const elapsedMs = performance.now() - started;
    expect(elapsedMs).toBeLessThan(3_000); // nowhere near the 10 s the slow calls would take

    for (const e of [crashError, sdkError]) {
      expect(e).toBeInstanceOf(McpError);
      expect((e as McpError).code).toBe(ERROR_TABLE.upstream_exited.rpc);
      expect((e as McpError).message).toMatch(/MCP server exited: code 3/);
    }
    expect(rawMcpReply).toEqual({
      jsonrpc: '2.0',
      id: 41,
      error: expect.objectContaining({ code: ERROR_TABLE.upstream_exited.rpc, message: 'MCP server exited: code 3' }),
    });
    expect(rawSseReply).toEqual({
      jsonrpc: '2.0',
      id: 42,
      error: expect.objectContaining({ code: ERROR_TABLE.upstream_exited.rpc, message: 'MCP server exited: code 3' }),
    });

    // Every session ended.
    await rawStream.ended; // the SSE stream was closed by the gateway
    await waitFor(() => sdkSseErrors > 0, { message: 'the SDK SSE client saw its stream end' });
    await waitFor(() => gw.gateway.sessions.size === 0, { message: 'all sessions gone' });
    const ping = { jsonrpc: '2.0' as const, id: 99, method: 'ping' };
    expect(await rawStreamable.postStatus(ping)).toBe(404);
    expect(await rawStream.postStatus(ping)).toBe(404);
    await expect(crasher.client.ping()).rejects.toThrow(/404|not found/i);

    // A new session works, on a fresh child.
    await waitFor(() => live('mux-server.mjs').length === 0, { message: 'the crashed child gone' });
    const fresh = await open(gw, 'sse');
    expect(await fresh.call('echo', { message: 'after the crash' })).toBe('after the crash');
    const pids = live('mux-server.mjs');
    expect(pids).toHaveLength(1);
    expect(pids[0]).not.toBe(oldPid);
    expect(await fresh.call('whoami')).toBe(String(pids[0]));
    expect((await stats(fresh)).initializes).toBe(1);
    expect(await status(gw)).toMatchObject({ live: 1, spawns: 2, crashes: 1 });
  });
});

describe('sharedChildren: 2', () => {
  const TWO = { [MUX]: fixtureEntry('mux-server.mjs', { ...SHARED, sharedChildren: 2 }) };

  /** Pids of children that got the gateway's notifications/initialized (so they serve sessions). */
  const initializedPids = (gw: TestGateway) =>
    new Set(
      gw.logs
        .map((l) => JSON.parse(l) as Json)
        .filter((l) => l.message === 'child stderr' && /recv notifications\/initialized /.test(l.line))
        .map((l) => l.pid as number),
    );

  it('once both children run, 10 sessions opened one after another go 5 and 5 (least-loaded)', async () => {
    const gw = await gateway(TWO);
    // The first session starts one child; the second asks for the other one.
    const first = await open(gw, 'mcp');
    const second = await open(gw, 'sse');
    await waitFor(() => initializedPids(gw).size === 2, { message: 'both shared children initialized' });
    await first.close();
    await second.close();
    await waitFor(() => gw.gateway.sessions.size === 0, { message: 'no sessions' });

    const sessions: Opened[] = [];
    for (let i = 0; i < 10; i += 1) sessions.push(await open(gw, i % 2 === 0 ? 'mcp' : 'sse'));
    const pids = live('mux-server.mjs');
    expect(pids).toHaveLength(2);
    const whoami = await Promise.all(sessions.map((s) => s.call('whoami')));
    expect(pids.map((pid) => whoami.filter((w) => w === String(pid)).length)).toEqual([5, 5]);
    expect(await status(gw)).toMatchObject({ live: 2, spawns: 2, sessions: 10 });
  });

  // BUG (src/process/manager.ts sharedChild): the second child is only started by a lease
  // that finds the first one already live, and that lease does not wait for it. A burst of
  // sessions on a fresh gateway (a reconnect storm after a deploy) all wait for the first
  // child and all land on it; the second child is never started by the burst.
  it('a burst of 10 sessions on a fresh gateway is spread over both children', async () => {
    const gw = await gateway(TWO);
    const sessions = await Promise.all(Array.from({ length: 10 }, (_, i) => open(gw, i % 2 === 0 ? 'mcp' : 'sse')));
    const whoami = await Promise.all(sessions.map((s) => s.call('whoami')));
    const pids = [...new Set(whoami)];
    expect(pids).toHaveLength(2); // today: 1 (all ten sessions on one child)
    expect(pids.map((pid) => whoami.filter((w) => w === pid).length)).toEqual([5, 5]);
  });

  // BUG (src/process/manager.ts sharedChild): `group.starting` is awaited only when no child
  // is live. When the extra child cannot start (here: the entry's maxChildren is 1; also a
  // spawn failure or an open circuit), its rejection is unhandled, on every such lease. The
  // CLI's crash guards log it as an error; an embedder of createGateway without them dies
  // (Node >= 15). Run in the built CLI: Jest fails any test with an unhandled rejection.
  it('a second child that cannot start causes no unhandled rejection (CLI)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-shared-cli-'));
    const commandsFile = join(dir, 'allowed-commands.json');
    writeFileSync(commandsFile, JSON.stringify({ [MUX]: fixtureEntry('mux-server.mjs', { ...SHARED, sharedChildren: 2, maxChildren: 1 }) }));
    const secret = 'cli-secret-0123456789abcdef';
    const cli = spawn(process.execPath, [join(process.cwd(), 'dist/main.js'), '--port', '0', '--commands', commandsFile], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', WARDEN_SECRET: secret, WARDEN_POOL_MIN: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = once(cli, 'exit');
    cleanups.push(async () => {
      if (cli.exitCode === null && cli.signalCode === null) cli.kill('SIGKILL');
      await exited;
    });
    const stderr: string[] = [];
    cli.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
    const listening = await waitFor(
      () =>
        stderr
          .join('')
          .split('\n')
          .find((l) => l.includes('"message":"listening"')),
      {
        timeoutMs: 15_000,
        message: 'the CLI listening',
      },
    );
    const base = `http://127.0.0.1:${(JSON.parse(listening) as { port: number }).port}`;
    const cliGateway = {
      base,
      url: (key: string, endpoint: string) => new URL(`${base}/${encodeURIComponent(key)}/${endpoint}`),
      headers: (extra: Record<string, string> = {}) => ({ Authorization: `Bearer ${secret}`, ...extra }),
    } as unknown as TestGateway;
    const a = await rawMcp(cliGateway);
    const b = await rawMcp(cliGateway); // wants the second child: refused by maxChildren
    expect(resultText(await a.request(toolCall(1, 'echo', { message: 'a' })))).toBe('a');
    expect(resultText(await b.request(toolCall(1, 'echo', { message: 'b' })))).toBe('b');
    cli.kill('SIGTERM'); // drains and exits: every log line is out
    expect((await exited)[0]).toBe(0);
    const errors = stderr
      .join('')
      .split('\n')
      .filter((l) => l.includes('unhandled rejection'));
    expect(errors).toEqual([]); // today: "unhandled rejection (gateway keeps running)" ... LimitReachedError
  });
});

describe('lifetime', () => {
  it('closing sessions leaves the shared child running (their calls are cancelled); gateway close stops it', async () => {
    const gw = await gateway();
    const sessions = [await open(gw, 'sse'), await open(gw, 'mcp'), await open(gw, 'mcp')];
    const [pid] = live('mux-server.mjs');
    expect(live('mux-server.mjs')).toHaveLength(1);

    // A session that leaves with a call in flight: the child is told to cancel it.
    const leaving = sessions[1]!;
    void leaving.client.callTool({ name: 'slow', arguments: { tag: 'left' } }, undefined, { timeout: 20_000 }).catch(() => undefined);
    const observer = sessions[2]!;
    const inFlight = await waitFor(
      async () => {
        const st = await stats(observer);
        return st.waiting.length === 1 ? st : undefined;
      },
      { message: 'the slow call at the child' },
    );
    await leaving.close();
    const leftId = Object.keys(inFlight.slow).find((id) => inFlight.slow[id] === 'left');
    await waitFor(async () => (await stats(observer)).cancelled.includes(leftId), { message: 'the child told to cancel the call of the closed session' });

    for (const s of sessions) await s.close();
    await waitFor(() => gw.gateway.sessions.size === 0, { message: 'every session closed' });
    expect(isAlive(pid!)).toBe(true);
    expect(live('mux-server.mjs')).toEqual([pid]);
    expect(await status(gw)).toMatchObject({ live: 1, spawns: 1, sessions: 0 });

    // The next session reuses it.
    const next = await open(gw, 'mcp');
    expect(await next.call('whoami')).toBe(String(pid));
    expect((await stats(next)).initializes).toBe(1);
    expect(await status(gw)).toMatchObject({ spawns: 1 });

    await gw.close();
    await waitForNoDescendants(process.pid);
    expect(isAlive(pid!)).toBe(false);
  });

  it('with a pool minimum the shared child starts before the first session, and that session uses it', async () => {
    const gw = await gateway({ [MUX]: fixtureEntry('mux-server.mjs', { ...SHARED, pool: { min: 1 } }) });
    const [pid] = await waitFor(() => (live('mux-server.mjs').length === 1 ? live('mux-server.mjs') : undefined), {
      message: 'the shared child started eagerly',
    });
    const s = await open(gw, 'sse');
    expect(await s.call('whoami')).toBe(String(pid));
    expect(await status(gw)).toMatchObject({ live: 1, spawns: 1 });
  });

  // BUG (src/process/manager.ts startShared): closeAll() stops the children it tracks and
  // waits for lease() starts, but a shared child still inside supervisor.start() is neither;
  // startShared() then tracks and initializes it after the drain, and nothing stops it.
  it('gateway close while the shared child is starting for a session stops it too', async () => {
    const gw = await gateway();
    const opening = fetch(gw.url(MUX, 'mcp'), { method: 'POST', headers: gw.headers(MCP_ACCEPT), body: JSON.stringify(initialize(0, '2025-06-18')) }).catch(
      () => undefined,
    );
    // Spawned, still inside the supervisor's startup window (100 ms).
    await waitFor(() => live('mux-server.mjs').length === 1, { intervalMs: 5, message: 'the shared child spawned' });
    await gw.close();
    await opening;
    try {
      await waitForNoDescendants(process.pid, { timeoutMs: 3_000 }); // today: the child keeps running
    } finally {
      for (const pid of live('mux-server.mjs')) process.kill(pid, 'SIGKILL'); // the leaked child, by pid
    }
  });

  it('gateway close right after listen stops the shared child warm() is starting', async () => {
    const gw = await gateway({ [MUX]: fixtureEntry('mux-server.mjs', { ...SHARED, pool: { min: 1 } }) });
    await gw.close();
    try {
      await waitForNoDescendants(process.pid, { timeoutMs: 3_000 }); // today: the child keeps running
    } finally {
      for (const pid of live('mux-server.mjs')) process.kill(pid, 'SIGKILL');
    }
  });
});
