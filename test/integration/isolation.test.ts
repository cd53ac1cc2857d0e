/**
 * Sessions on the same command are isolated: each has its own child, and replies never
 * cross between sessions even when their JSON-RPC request ids are identical. Closing
 * one session leaves the others answering.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { isJSONRPCRequest, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { EVERYTHING, EVERYTHING_ENTRY, initializeBody, MCP_ACCEPT, startGateway, type Kind, type TestGateway, sseConnectOnce } from '../helpers/gateway.js';
import { descendantsOf, isAlive, waitFor, waitForNoDescendants } from '../helpers/procs.js';

const PROTOCOL_VERSION = '2025-06-18';
const CALLS_PER_CLIENT = 50;

interface Recorded {
  readonly kind: Kind;
  readonly client: Client;
  readonly transport: SSEClientTransport | StreamableHTTPClientTransport;
  /** Ids of the requests this client sent, in order. */
  readonly sentIds: RequestId[];
  close(): Promise<void>;
}

/**
 * An SDK client whose outgoing request ids are recorded. The SSE EventSource connects
 * only once (a reconnect would silently open a second session with a second child).
 */
async function connectRecording(gw: TestGateway, kind: Kind): Promise<Recorded> {
  const requestInit = { headers: gw.headers() };
  let transport: SSEClientTransport | StreamableHTTPClientTransport;
  if (kind === 'sse') {
    transport = sseConnectOnce(gw.url(EVERYTHING, 'sse'), requestInit);
  } else {
    transport = new StreamableHTTPClientTransport(gw.url(EVERYTHING, 'mcp'), { requestInit });
  }
  const sentIds: RequestId[] = [];
  const wire: Transport = transport;
  const send = wire.send.bind(wire);
  wire.send = (message, options) => {
    if (isJSONRPCRequest(message)) sentIds.push(message.id);
    return send(message, options);
  };
  const client = new Client({ name: 'isolation-test', version: '1.0.0' });
  await client.connect(transport, { timeout: 20_000 });
  return {
    kind,
    client,
    transport,
    sentIds,
    async close() {
      if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession().catch(() => undefined);
      await client.close();
    },
  };
}

function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content;
  const first = content?.[0];
  if (content?.length !== 1 || first?.type !== 'text' || typeof first.text !== 'string') {
    throw new Error(`not a single text result: ${JSON.stringify(result)}`);
  }
  return first.text;
}

async function echo(client: Client, message: string): Promise<string> {
  return textOf(await client.callTool({ name: 'echo', arguments: { message } }));
}

/** The JSON-RPC messages of a Streamable HTTP response, whether JSON or an event stream. */
async function messagesOf(res: Response): Promise<JSONRPCMessage[]> {
  const text = await res.text();
  if ((res.headers.get('content-type') ?? '').includes('application/json')) {
    const value = JSON.parse(text) as JSONRPCMessage | JSONRPCMessage[];
    return Array.isArray(value) ? value : [value];
  }
  return text.split(/\r?\n\r?\n/).flatMap((event) => {
    const data = event
      .split(/\r?\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).replace(/^ /, ''))
      .join('\n');
    return data ? [JSON.parse(data) as JSONRPCMessage] : [];
  });
}

/** One raw Streamable HTTP session driven with fetch. */
class RawSession {
  private constructor(
    private readonly gw: TestGateway,
    readonly id: string,
  ) {}

  static async open(gw: TestGateway): Promise<RawSession> {
    const res = await fetch(gw.url(EVERYTHING, 'mcp'), {
      method: 'POST',
      headers: gw.headers(MCP_ACCEPT),
      body: JSON.stringify(initializeBody(1)),
    });
    expect(res.status).toBe(200);
    const id = res.headers.get('mcp-session-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(await messagesOf(res)).toEqual([expect.objectContaining({ id: 1, result: expect.objectContaining({ protocolVersion: PROTOCOL_VERSION }) })]);
    const session = new RawSession(gw, id!);
    expect((await session.post({ jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
    return session;
  }

  post(message: JSONRPCMessage, method = 'POST'): Promise<Response> {
    return fetch(this.gw.url(EVERYTHING, 'mcp'), {
      method,
      headers: this.gw.headers({ ...MCP_ACCEPT, 'Mcp-Session-Id': this.id, 'mcp-protocol-version': PROTOCOL_VERSION }),
      ...(method === 'POST' ? { body: JSON.stringify(message) } : {}),
    });
  }

  /** tools/call echo with an explicit id; resolves with every message of the response. */
  async echo(id: number, message: string): Promise<{ status: number; messages: JSONRPCMessage[] }> {
    const res = await this.post({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message } } });
    return { status: res.status, messages: res.status === 200 ? await messagesOf(res) : [] };
  }

  delete(): Promise<Response> {
    return this.post({ jsonrpc: '2.0', method: 'unused' }, 'DELETE');
  }
}

const echoReply = (id: number, message: string) => ({
  jsonrpc: '2.0',
  id,
  result: { content: [{ type: 'text', text: `Echo: ${message}` }] },
});

let gw: TestGateway;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  gw = await startGateway({ [EVERYTHING]: EVERYTHING_ENTRY });
});
afterAll(async () => {
  await gw.close();
});
afterEach(async () => {
  // Safety net for a failed test; passing tests have ended their sessions already.
  await Promise.allSettled(cleanups.splice(0).map((cleanup) => cleanup()));
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

const childOf = (sessionId: string): number | undefined => gw.gateway.sessions.all().find((s) => s.id === sessionId)?.bridge.child.pid;

describe('sessions on the same command', () => {
  it('SDK clients over SSE and Streamable HTTP with colliding ids each get only their own replies', async () => {
    const kinds: Kind[] = ['sse', 'sse', 'mcp', 'mcp'];
    const clients = await Promise.all(kinds.map((kind) => connectRecording(gw, kind)));
    cleanups.push(...clients.map((c) => () => c.close()));

    // One child per session: four distinct live processes under this one.
    const pids = gw.gateway.sessions.all().map((s) => s.bridge.child.pid);
    expect(pids).toHaveLength(4);
    expect(new Set(pids).size).toBe(4);
    const descendants = descendantsOf(process.pid);
    for (const pid of pids) {
      expect(descendants).toContain(pid);
      expect(isAlive(pid)).toBe(true);
    }

    const replies = await Promise.all(clients.map((c, i) => Promise.all(Array.from({ length: CALLS_PER_CLIENT }, (_, j) => echo(c.client, `c${i}-${j}`)))));
    replies.forEach((texts, i) => {
      expect(texts).toEqual(Array.from({ length: CALLS_PER_CLIENT }, (_, j) => `Echo: c${i}-${j}`));
    });
    // Every client used the very same request ids (initialize included): all of them collided.
    expect(clients[0]!.sentIds).toHaveLength(CALLS_PER_CLIENT + 1);
    expect(new Set(clients[0]!.sentIds).size).toBe(CALLS_PER_CLIENT + 1);
    for (const c of clients) expect(c.sentIds).toEqual(clients[0]!.sentIds);

    // Closing one session of each transport leaves the other two answering.
    const [sseGone, sseKept, mcpGone, mcpKept] = clients as [Recorded, Recorded, Recorded, Recorded];
    const mcpGoneId = (mcpGone.transport as StreamableHTTPClientTransport).sessionId!;
    const mcpGonePid = childOf(mcpGoneId)!;
    await sseGone.close();
    await mcpGone.close();
    await waitFor(() => gw.gateway.sessions.size === 2, { message: 'two sessions left' });
    const kept = gw.gateway.sessions.all().map((s) => s.bridge.child.pid);
    const stopped = pids.filter((pid) => !kept.includes(pid));
    expect(stopped).toHaveLength(2);
    expect(stopped).toContain(mcpGonePid);
    await waitFor(() => stopped.every((pid) => !isAlive(pid)), { message: 'the closed sessions’ children gone' });
    expect(kept.every(isAlive)).toBe(true);
    expect(await Promise.all([echo(sseKept.client, 'sse still here'), echo(mcpKept.client, 'mcp still here')])).toEqual([
      'Echo: sse still here',
      'Echo: mcp still here',
    ]);

    await sseKept.close();
    await mcpKept.close();
    await waitFor(() => gw.gateway.sessions.size === 0, { message: 'all sessions closed' });
  });

  it('raw Streamable HTTP sessions sending the same explicit ids each get only their own replies', async () => {
    const [a, b] = await Promise.all([RawSession.open(gw), RawSession.open(gw)]);
    cleanups.push(
      () => a.delete(),
      () => b.delete(),
    );
    expect(a.id).not.toBe(b.id);
    const pidA = childOf(a.id);
    const pidB = childOf(b.id);
    expect(pidA).toBeDefined();
    expect(pidB).toBeDefined();
    expect(pidA).not.toBe(pidB);

    // The very same request, id 1, on both sessions at once.
    const [fromA, fromB] = await Promise.all([a.echo(1, 'A'), b.echo(1, 'B')]);
    expect(fromA).toEqual({ status: 200, messages: [echoReply(1, 'A')] });
    expect(fromB).toEqual({ status: 200, messages: [echoReply(1, 'B')] });

    // A burst with the same ids 2..21 on both sessions, all in flight together.
    const ids = Array.from({ length: 20 }, (_, i) => i + 2);
    const burst = await Promise.all(ids.flatMap((id) => [a.echo(id, `A-${id}`), b.echo(id, `B-${id}`)]));
    expect(burst).toEqual(
      ids.flatMap((id) => [
        { status: 200, messages: [echoReply(id, `A-${id}`)] },
        { status: 200, messages: [echoReply(id, `B-${id}`)] },
      ]),
    );

    // Ending A stops A's child only; B keeps answering, A's id is now unknown.
    expect((await a.delete()).status).toBe(200);
    await waitFor(() => !isAlive(pidA!), { message: `A's child ${pidA} gone` });
    expect(isAlive(pidB!)).toBe(true);
    expect(await b.echo(1, 'B again')).toEqual({ status: 200, messages: [echoReply(1, 'B again')] });
    expect((await a.echo(1, 'A again')).status).toBe(404);

    expect((await b.delete()).status).toBe(200);
    await waitFor(() => gw.gateway.sessions.size === 0, { message: 'both sessions closed' });
  });
});
