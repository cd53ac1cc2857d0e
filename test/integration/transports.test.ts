/**
 * The official SDK client, over both transports, through the gateway to the reference
 * server: the whole MCP surface a client uses, and session teardown.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { connectClient, EVERYTHING, startGateway, type Kind, type TestGateway } from '../helpers/gateway.js';
import { descendantsOf, waitFor, waitForNoDescendants } from '../helpers/procs.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => {
  await gw.close();
});
afterEach(async () => {
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

describe.each<Kind>(['sse', 'mcp'])('over %s', (kind) => {
  it('initializes, lists and calls tools, lists resources and prompts', async () => {
    const { client, transport } = await connectClient(gw, EVERYTHING, kind);
    try {
      expect(client.getServerVersion()?.name).toMatch(/everything/i);
      const tools = await client.listTools();
      expect(tools.tools.map((t) => t.name)).toContain('echo');
      const result = await client.callTool({ name: 'echo', arguments: { message: `hello ${kind} ✓` } });
      expect(result.content).toEqual([{ type: 'text', text: `Echo: hello ${kind} ✓` }]);
      const resources = await client.listResources();
      expect(resources.resources.length).toBeGreaterThan(0);
      const prompts = await client.listPrompts();
      expect(prompts.prompts.length).toBeGreaterThan(0);
      expect(gw.gateway.sessions.size).toBe(1);
      expect(descendantsOf(process.pid).length).toBeGreaterThan(0);
    } finally {
      // Streamable HTTP sessions outlive a dropped connection; DELETE ends them.
      if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession();
      await client.close();
    }
    await waitFor(() => gw.gateway.sessions.size === 0, { message: 'session removed after close' });
  });
});

describe('Streamable HTTP session lifecycle', () => {
  it('DELETE ends the session, stops its child, and the id then gets 404', async () => {
    const { client, transport } = await connectClient(gw, EVERYTHING, 'mcp');
    const streamable = transport as StreamableHTTPClientTransport;
    const sessionId = streamable.sessionId!;
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/);
    const pids = descendantsOf(process.pid);
    expect(pids.length).toBeGreaterThan(0);
    await streamable.terminateSession();
    await client.close();
    await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
    const res = await fetch(gw.url(EVERYTHING, 'mcp'), {
      method: 'POST',
      headers: gw.headers({ 'Mcp-Session-Id': sessionId, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' }),
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
    });
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/session not found/i);
  });

  it('a dropped SSE stream ends its session and child', async () => {
    const { client } = await connectClient(gw, EVERYTHING, 'sse');
    expect(gw.gateway.sessions.size).toBe(1);
    await client.close();
    await waitFor(() => gw.gateway.sessions.size === 0, { message: 'session gone' });
    await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
  });

  it('the SSE endpoint event is a relative path on the same command', async () => {
    const controller = new AbortController();
    const res = await fetch(gw.url(EVERYTHING, 'sse'), { headers: gw.headers(), signal: controller.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    expect(text).toMatch(new RegExp(`^event: endpoint\\ndata: /${encodeURIComponent(EVERYTHING)}/messages\\?sessionId=[0-9a-f-]{36}\\n\\n`));
    await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
  });
});
