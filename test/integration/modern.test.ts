/**
 * Protocol revision 2026-07-28 on `/<key>/mcp`, served to real clients (the v2 SDK client,
 * pinned and in auto mode) in front of a 2025 stdio server (server-everything): discover,
 * lists, calls, progress, cancellation, elicitation through multi round-trip requests, the
 * request validation, and the 2025 client on the same URL.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { EVERYTHING, connectClient, startGateway, type TestGateway } from '../helpers/gateway.js';
import { descendantsOf, waitFor, waitForNoDescendants } from '../helpers/procs.js';

let gw: TestGateway;
const clients: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  gw = await startGateway(undefined, { poolMin: 1 });
});

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await gw.close();
  await waitForNoDescendants(process.pid);
});

type Mode = { pin: '2026-07-28' } | 'auto';

async function modernClient(
  mode: Mode = { pin: '2026-07-28' },
  headers: Record<string, string> = {},
  capabilities: Record<string, unknown> = {},
): Promise<V2Client> {
  const client = new V2Client({ name: 'modern-test', version: '1.0.0' }, { versionNegotiation: { mode }, capabilities });
  const transport = new V2Transport(gw.url(EVERYTHING, 'mcp'), { requestInit: { headers: gw.headers(headers) } });
  await client.connect(transport);
  clients.push(client);
  return client;
}

const MODERN_HEADERS = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2026-07-28' };
const envelope = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };

async function rawModern(body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, any> }> {
  const res = await fetch(gw.url(EVERYTHING, 'mcp'), { method: 'POST', headers: gw.headers({ ...MODERN_HEADERS, ...headers }), body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

describe('the v2 client pinned to 2026-07-28', () => {
  it('connects through server/discover and sees the server behind the key', async () => {
    const client = await modernClient();
    expect(client.getProtocolEra()).toBe('modern');
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    const discover = await client.discover();
    expect(discover.supportedVersions).toEqual(expect.arrayContaining(['2026-07-28', '2025-11-25']));
    expect(discover.capabilities.tools).toBeDefined();
    expect((discover.capabilities as Record<string, unknown>).tasks).toBeUndefined();
  });

  it('lists and calls tools', async () => {
    const client = await modernClient();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain('echo');
    const result = await client.callTool({ name: 'echo', arguments: { message: 'hello 2026' } });
    expect(result.content).toEqual([{ type: 'text', text: 'Echo: hello 2026' }]);
  });

  it('streams progress on the request it belongs to', async () => {
    const client = await modernClient();
    const progress: number[] = [];
    const result = await client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
      { onprogress: (p) => void progress.push(p.progress) },
    );
    expect(progress).toEqual([1, 2, 3]);
    expect(JSON.stringify(result.content)).toContain('Long running operation completed');
  });

  it('cancels a call when the client closes its response; the next call works', async () => {
    const client = await modernClient();
    const abort = new AbortController();
    const call = client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 30, steps: 30 } }, { signal: abort.signal });
    const inFlight = () =>
      gw.gateway.sessions
        .all()
        .filter((s) => s.kind === 'modern')
        .reduce((n, s) => n + s.bridge.inFlight, 0);
    await waitFor(() => inFlight() === 1, { message: 'the call in flight at the child' });
    abort.abort('stop');
    await expect(call).rejects.toThrow();
    // The gateway cancelled it at the child: nothing is left waiting for an answer.
    await waitFor(() => inFlight() === 0, { message: 'the call cancelled at the child' });
    const result = await client.callTool({ name: 'echo', arguments: { message: 'after' } });
    expect(result.content).toEqual([{ type: 'text', text: 'Echo: after' }]);
  });

  it('answers a server elicitation as a multi round-trip request', async () => {
    const client = await modernClient({ pin: '2026-07-28' }, {}, { elicitation: { form: {} } });
    const asked: string[] = [];
    client.setRequestHandler('elicitation/create', async (request) => {
      asked.push(String(request.params.message));
      return { action: 'accept', content: { name: 'Ada', check: true, firstLine: 'x', integer: 1, number: 1.5, enum: 'Option 1' } };
    });
    const result = await client.callTool({ name: 'trigger-elicitation-request', arguments: {} });
    expect(asked).toEqual(['Please provide inputs for the following fields:']);
    expect(JSON.stringify(result.content)).toContain('Ada');
  });
});

describe('the v2 client in auto mode', () => {
  it('ends up modern and works', async () => {
    const client = await modernClient('auto');
    expect(client.getProtocolEra()).toBe('modern');
    expect((await client.callTool({ name: 'echo', arguments: { message: 'auto' } })).content).toEqual([{ type: 'text', text: 'Echo: auto' }]);
  });
});

describe('one child per caller, key and env', () => {
  it('two conversations of one caller share a child; other ENV_* values get their own', async () => {
    const before = descendantsOf(process.pid).length;
    const a = await modernClient();
    const b = await modernClient();
    await a.callTool({ name: 'echo', arguments: { message: 'a' } });
    await b.callTool({ name: 'echo', arguments: { message: 'b' } });
    const modern = () => gw.gateway.sessions.all().filter((s) => s.kind === 'modern');
    expect(modern()).toHaveLength(1);
    const c = await modernClient({ pin: '2026-07-28' }, { ENV_GREETING: 'hi' });
    await c.callTool({ name: 'echo', arguments: { message: 'c' } });
    expect(modern()).toHaveLength(2);
    expect(descendantsOf(process.pid).length).toBeGreaterThanOrEqual(before);
  });
});

describe('validation', () => {
  it('a header that disagrees with the body is -32020 with the request id', async () => {
    const reply = await rawModern({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: envelope } }, { 'Mcp-Method': 'prompts/list' });
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({ id: 7, error: { code: -32020 } });
  });

  it('a missing Mcp-Name is -32020; a wrong one too', async () => {
    const call = { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' }, _meta: envelope } };
    expect((await rawModern(call, { 'Mcp-Method': 'tools/call' })).json.error.code).toBe(-32020);
    expect((await rawModern(call, { 'Mcp-Method': 'tools/call', 'Mcp-Name': 'get-env' })).json.error.code).toBe(-32020);
    expect((await rawModern(call, { 'Mcp-Method': 'tools/call', 'Mcp-Name': '=?base64?ZWNobw==?=' })).json.result.content[0].text).toBe('Echo: x');
  });

  it('an unsupported version is -32022 listing the supported ones', async () => {
    const reply = await rawModern(
      { jsonrpc: '2.0', id: 9, method: 'tools/list', params: { _meta: { ...envelope, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } } },
      { 'MCP-Protocol-Version': '2099-01-01', 'Mcp-Method': 'tools/list' },
    );
    expect(reply.status).toBe(400);
    expect(reply.json.error).toMatchObject({ code: -32022, data: { supported: expect.arrayContaining(['2026-07-28']), requested: '2099-01-01' } });
  });

  it('an envelope without client capabilities is -32602', async () => {
    const reply = await rawModern(
      { jsonrpc: '2.0', id: 10, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' } } },
      { 'Mcp-Method': 'tools/list' },
    );
    expect(reply.json).toMatchObject({ id: 10, error: { code: -32602 } });
  });

  it('GET and DELETE without a 2025 session are 405', async () => {
    const res = await fetch(gw.url(EVERYTHING, 'mcp'), { method: 'GET', headers: gw.headers({ Accept: 'text/event-stream' }) });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    await res.arrayBuffer();
  });

  it('a 2025-only method is refused with -32601 (404)', async () => {
    const reply = await rawModern({ jsonrpc: '2.0', id: 11, method: 'ping', params: { _meta: envelope } }, { 'Mcp-Method': 'ping' });
    expect(reply.status).toBe(404);
    expect(reply.json).toMatchObject({ id: 11, error: { code: -32601 } });
  });
});

describe('the 2025 client on the same URL', () => {
  it('still gets a session of its own', async () => {
    const { client, transport } = await connectClient(gw, EVERYTHING, 'mcp');
    clients.push({
      close: async () => {
        await (transport as StreamableHTTPClientTransport).terminateSession();
        await client.close();
      },
    });
    expect((await client.callTool({ name: 'echo', arguments: { message: 'legacy' } })).content).toEqual([{ type: 'text', text: 'Echo: legacy' }]);
  });
});

describe('subscriptions/listen', () => {
  it('acknowledges, then delivers the resource updates the filter asked for, tagged with the listen id', async () => {
    const client = await modernClient();
    const { resources } = await client.listResources();
    const uri = resources[0]!.uri;
    const updates: unknown[] = [];
    client.setNotificationHandler('notifications/resources/updated', (n) => void updates.push(n.params));
    const sub = await client.listen({ resourceSubscriptions: [uri], toolsListChanged: true });
    expect(sub.honoredFilter).toEqual({ resourceSubscriptions: [uri], toolsListChanged: true });
    const modern = gw.gateway.sessions.all().find((s) => s.kind === 'modern')!;
    expect(modern.busy).toBe(true);
    await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    await waitFor(() => updates.length > 0, { message: 'a resource update on the listen' });
    expect(updates[0]).toMatchObject({ uri });
    await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    await sub.close();
    await waitFor(() => !modern.busy, { message: 'the listen closed at the gateway' });
  });
});

describe('multi round-trip requests: the sealed requestState', () => {
  const elicitCapable = { ...envelope, 'io.modelcontextprotocol/clientCapabilities': { elicitation: {} } };
  const call = (id: number, extra: Record<string, unknown> = {}) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: 'trigger-elicitation-request', arguments: {}, _meta: elicitCapable, ...extra },
  });
  const headers = { 'Mcp-Method': 'tools/call', 'Mcp-Name': 'trigger-elicitation-request' };
  const answer = { action: 'accept', content: { name: 'Ada', check: true, firstLine: 'x', integer: 1, number: 1.5, enum: 'Option 1' } };

  it('is refused when forged, replayed, or presented for another request; the honest retry completes', async () => {
    const first = await rawModern(call(20), headers);
    expect(first.json.result).toMatchObject({ resultType: 'input_required', inputRequests: { input: { method: 'elicitation/create' } } });
    const state = first.json.result.requestState as string;
    const key = Object.keys(first.json.result.inputRequests)[0]!;
    const tampered = `${state.slice(0, -2)}${state.endsWith('AA') ? 'BB' : 'AA'}`;
    const forged = await rawModern(call(21, { requestState: tampered, inputResponses: { [key]: answer } }), headers);
    expect(forged.status).toBe(400);
    expect(forged.json).toMatchObject({ id: 21, error: { code: -32602, data: { field: 'requestState' } } });
    const otherArgs = await rawModern(
      {
        ...call(22, { requestState: state, inputResponses: { [key]: answer } }),
        params: { name: 'trigger-elicitation-request', arguments: { x: 1 }, _meta: elicitCapable, requestState: state, inputResponses: { [key]: answer } },
      },
      headers,
    );
    expect(otherArgs.json.error?.code).toBe(-32602);
    const done = await rawModern(call(23, { requestState: state, inputResponses: { [key]: answer } }), headers);
    expect(done.json.id).toBe(23);
    expect(JSON.stringify(done.json.result.content)).toContain('Ada');
    const replay = await rawModern(call(24, { requestState: state, inputResponses: { [key]: answer } }), headers);
    expect(replay.json.error?.code).toBe(-32602);
  });

  it('a request whose client did not declare elicitation gets the server’s refusal, not a question', async () => {
    const reply = await rawModern({ ...call(25), params: { name: 'trigger-elicitation-request', arguments: {}, _meta: envelope } }, headers);
    expect(reply.json.result?.resultType).not.toBe('input_required');
  });
});

describe('limits', () => {
  it('a caller gets at most --max-env-variants conversations per key, then 429', async () => {
    const own = await startGateway(undefined, { maxEnvVariants: 2 });
    try {
      const post = (value: string) =>
        fetch(own.url(EVERYTHING, 'mcp'), {
          method: 'POST',
          headers: own.headers({ ...MODERN_HEADERS, 'Mcp-Method': 'tools/list', ENV_VARIANT: value }),
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: envelope } }),
        });
      expect((await post('a')).status).toBe(200);
      expect((await post('b')).status).toBe(200);
      const refused = await post('c');
      expect(refused.status).toBe(429);
      expect(((await refused.json()) as { error: { data: { limit: string } } }).error.data.limit).toBe('maxEnvVariants');
      expect((await post('a')).status).toBe(200);
    } finally {
      await own.close();
    }
  });
});
