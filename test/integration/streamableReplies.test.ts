/**
 * How a Streamable HTTP POST is answered: one JSON body when its one reply comes first and
 * within the window; an event stream otherwise (a batch, progress before the reply, a
 * reply slower than the window); 202 for notifications only; one GET stream per session.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { fixtureEntry, initializeBody, MCP_ACCEPT, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const MUX = 'mux-server';
const WINDOW_MS = 300;
const PROTOCOL = { 'mcp-protocol-version': '2025-06-18' };

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ [MUX]: fixtureEntry('mux-server.mjs') }, { jsonReplyWindowMs: WINDOW_MS });
});
afterAll(async () => {
  await gw.close();
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

interface RawSession {
  headers: Record<string, string>;
  post(body: unknown, extra?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

const sessions: RawSession[] = [];
afterEach(async () => {
  await Promise.allSettled(sessions.splice(0).map((s) => s.close()));
  await waitFor(() => gw.gateway.sessions.size === 0, { message: 'every session of the test closed' });
});

async function openSession(): Promise<RawSession> {
  const init = await fetch(gw.url(MUX, 'mcp'), { method: 'POST', headers: gw.headers(MCP_ACCEPT), body: JSON.stringify(initializeBody(0)) });
  expect(init.status).toBe(200);
  expect(init.headers.get('content-type')).toBe('application/json');
  const id = init.headers.get('mcp-session-id')!;
  expect(await init.json()).toMatchObject({ jsonrpc: '2.0', id: 0, result: { serverInfo: { name: 'mux-server' } } });
  const headers = gw.headers({ ...MCP_ACCEPT, ...PROTOCOL, 'Mcp-Session-Id': id });
  const post = (body: unknown, extra: RequestInit = {}) => fetch(gw.url(MUX, 'mcp'), { method: 'POST', headers, body: JSON.stringify(body), ...extra });
  expect((await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
  const session: RawSession = {
    headers,
    post,
    close: async () => {
      await fetch(gw.url(MUX, 'mcp'), { method: 'DELETE', headers });
    },
  };
  sessions.push(session);
  return session;
}

const call = (id: number, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
});

/** The JSON-RPC messages of an event-stream body, in order. */
function events(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n\n')
    .map((block) =>
      block
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice(6))
        .join('\n'),
    )
    .filter((data) => data.length > 0)
    .map((data) => JSON.parse(data) as Record<string, unknown>);
}

const textOf = (message: Record<string, unknown>) => (message.result as { content: Array<{ text: string }> }).content[0]!.text;

describe('Streamable HTTP reply forms', () => {
  it('one request answered at once: a single application/json body with the session id', async () => {
    const s = await openSession();
    const res = await s.post(call(1, 'whoami'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('mcp-session-id')).toBe(s.headers['Mcp-Session-Id']);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ jsonrpc: '2.0', id: 1 });
    expect(Number(textOf(body))).toBeGreaterThan(0);
  });

  it('a batch of two requests: an event stream carrying both replies, then its end', async () => {
    const s = await openSession();
    const res = await s.post([call(1, 'whoami'), call(2, 'stats')]);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const got = events(await res.text()); // resolves only once the gateway ended the stream
    expect(got.map((m) => m.id).sort()).toEqual([1, 2]);
  });

  it('progress before the reply: an event stream, progress in order, the reply last', async () => {
    const s = await openSession();
    const res = await s.post(call(3, 'progress', { tag: 'p', count: 3 }, { progressToken: 'tok-3' }));
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const got = events(await res.text());
    expect(got.map((m) => m.method ?? `reply ${String(m.id)}`)).toEqual([
      'notifications/progress',
      'notifications/progress',
      'notifications/progress',
      'reply 3',
    ]);
    expect(got.slice(0, 3).map((m) => (m.params as { progress: number; progressToken: string }).progress)).toEqual([1, 2, 3]);
    expect(JSON.parse(textOf(got[3]!))).toEqual({ tag: 'p', token: 'tok-3' });
  });

  it('a reply slower than the window: the headers come first, as an event stream, and the reply follows', async () => {
    const s = await openSession();
    const started = performance.now();
    const res = await s.post(call(4, 'slow', { tag: 's4' }));
    const headersAfterMs = performance.now() - started;
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(headersAfterMs).toBeGreaterThanOrEqual(WINDOW_MS - 20); // not before the window ran out
    // The call is still waiting in the server: the headers did not wait for the reply.
    const stats = (await (await s.post(call(5, 'stats'))).json()) as Record<string, unknown>;
    expect(JSON.parse(textOf(stats)).waiting).toEqual(['s4']);
    expect(textOf((await (await s.post(call(6, 'release'))).json()) as Record<string, unknown>)).toBe('1');
    const got = events(await res.text());
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ id: 4 });
    expect(textOf(got[0]!)).toBe('released s4');
  });

  it('notifications only: 202 with an empty body', async () => {
    const s = await openSession();
    const res = await s.post({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
    expect(res.status).toBe(202);
    expect(await res.text()).toBe('');
  });

  it('one GET stream per session: a second gets 409 conflict; once the first is gone, a new one is accepted', async () => {
    const s = await openSession();
    const getHeaders = { ...s.headers, Accept: 'text/event-stream' };
    const first = new AbortController();
    const a = await fetch(gw.url(MUX, 'mcp'), { headers: getHeaders, signal: first.signal });
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toBe('text/event-stream');
    const b = await fetch(gw.url(MUX, 'mcp'), { headers: getHeaders });
    expect(b.status).toBe(409);
    expect(((await b.json()) as { error: { data: { code: string } } }).error.data.code).toBe('conflict');
    first.abort();
    const c = await waitFor(
      async () => {
        const controller = new AbortController();
        const res = await fetch(gw.url(MUX, 'mcp'), { headers: getHeaders, signal: controller.signal });
        if (res.status === 200) return controller;
        await res.body?.cancel();
        return undefined;
      },
      { message: 'a new GET stream accepted after the first closed' },
    );
    c.abort();
  });

  it('server notifications that belong to no request go to the GET stream', async () => {
    const s = await openSession();
    const controller = new AbortController();
    const stream = await fetch(gw.url(MUX, 'mcp'), { headers: { ...s.headers, Accept: 'text/event-stream' }, signal: controller.signal });
    const reader = stream.body!.getReader();
    expect(textOf((await (await s.post(call(7, 'change'))).json()) as Record<string, unknown>)).toBe('changed');
    let text = '';
    while (!text.includes('list_changed')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
    expect(events(text).map((m) => m.method)).toContain('notifications/tools/list_changed');
    controller.abort();
  });
});
