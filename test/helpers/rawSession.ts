/**
 * A session opened over raw HTTP, for tests that send exactly the messages they choose
 * (repeated ids, cancellations, requests left in flight) and read every message the
 * gateway sends back: on the SSE stream, or on each Streamable POST's response (JSON or
 * an event stream that may stay open while its request is in flight).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { initializeBody, MCP_ACCEPT, type Kind, type TestGateway } from './gateway.js';
import { waitFor } from './procs.js';

export type Json = Record<string, any>;

/** One POST as the client saw it; `body` grows while the response streams. */
export interface RawPost {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  /** The body so far. */
  body(): string;
  /** Resolves once the response ended (or its connection closed). */
  readonly ended: Promise<void>;
}

export interface RawSession {
  readonly kind: Kind;
  readonly id: string;
  /** POSTs one message (or a batch) on the session. */
  post(message: unknown, extraHeaders?: Record<string, string>): Promise<RawPost>;
  /** Every JSON-RPC message received so far, in arrival order, from every stream. */
  received(): Json[];
  /** Waits for the message answering `id` (compared strictly: 1 is not "1"). */
  reply(id: string | number): Promise<Json>;
  close(): Promise<void>;
}

/** Splits event-stream text into the JSON of its `message` events. */
export function eventMessages(text: string): Json[] {
  return text
    .split('\n\n')
    .filter((event) => event.startsWith('event: message\n'))
    .map((event) => JSON.parse(event.slice(event.indexOf('data: ') + 6)) as Json);
}

/** Sends one request; resolves once the status line and headers arrived. */
export function rawRequest(
  gw: TestGateway,
  path: string,
  options: { method?: string; headers: Record<string, string>; body?: string },
): Promise<RawPost & { destroy(): void }> {
  const { hostname, port } = new URL(gw.base);
  const req = httpRequest({ host: hostname, port, path, method: options.method ?? 'POST', headers: options.headers, agent: false });
  return new Promise((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('error', () => undefined);
      const ended = new Promise<void>((done) => {
        res.once('end', done);
        res.once('close', done);
      });
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: () => text, ended, destroy: () => req.destroy() });
    });
    req.end(options.body);
  });
}

function messagesOf(post: RawPost): Json[] {
  const type = String(post.headers['content-type'] ?? '');
  const text = post.body();
  if (type.startsWith('text/event-stream')) return eventMessages(text);
  if (type.startsWith('application/json') && text.length > 0) {
    try {
      const value = JSON.parse(text) as Json | Json[];
      return Array.isArray(value) ? value : [value];
    } catch {
      return []; // not complete yet
    }
  }
  return [];
}

async function openSse(gw: TestGateway, key: string): Promise<RawSession> {
  const stream = await rawRequest(gw, `/${encodeURIComponent(key)}/sse`, { method: 'GET', headers: gw.headers({ Accept: 'text/event-stream' }) });
  if (stream.status !== 200) throw new Error(`GET /sse answered ${stream.status}: ${stream.body()}`);
  const endpoint = await waitFor(() => /^event: endpoint\ndata: (\S+)\n\n/.exec(stream.body())?.[1], { message: 'the endpoint event' });
  const id = new URL(endpoint, gw.base).searchParams.get('sessionId')!;
  const received = () => eventMessages(stream.body());
  const session: RawSession = {
    kind: 'sse',
    id,
    post: (message, extra = {}) =>
      rawRequest(gw, endpoint, { headers: gw.headers({ 'Content-Type': 'application/json', ...extra }), body: JSON.stringify(message) }),
    received,
    reply: (replyId) => waitFor(() => received().find((m) => m.id === replyId && !('method' in m)), { message: `the reply to ${JSON.stringify(replyId)}` }),
    close: async () => {
      stream.destroy();
      await stream.ended;
      await waitFor(() => !gw.gateway.sessions.all().some((s) => s.id === id), { message: `session ${id} closed` });
    },
  };
  const init = await session.post(initializeBody('init'));
  if (init.status !== 202) throw new Error(`initialize answered ${init.status}`);
  await session.reply('init');
  await session.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  return session;
}

async function openMcp(gw: TestGateway, key: string): Promise<RawSession> {
  const path = `/${encodeURIComponent(key)}/mcp`;
  const init = await rawRequest(gw, path, { headers: gw.headers(MCP_ACCEPT), body: JSON.stringify(initializeBody('init')) });
  await init.ended;
  const posts: RawPost[] = [init];
  if (init.status !== 200) throw new Error(`initialize answered ${init.status}: ${init.body()}`);
  const id = String(init.headers['mcp-session-id']);
  const headers = (extra: Record<string, string> = {}) => gw.headers({ ...MCP_ACCEPT, 'Mcp-Session-Id': id, ...extra });
  const received = () => posts.flatMap(messagesOf);
  const session: RawSession = {
    kind: 'mcp',
    id,
    post: async (message, extra) => {
      const post = await rawRequest(gw, path, { headers: headers(extra), body: JSON.stringify(message) });
      posts.push(post);
      return post;
    },
    received,
    reply: (replyId) => waitFor(() => received().find((m) => m.id === replyId && !('method' in m)), { message: `the reply to ${JSON.stringify(replyId)}` }),
    close: async () => {
      if (gw.gateway.sessions.all().some((s) => s.id === id)) {
        const done = await rawRequest(gw, path, { method: 'DELETE', headers: headers() });
        await done.ended;
      }
      await waitFor(() => !gw.gateway.sessions.all().some((s) => s.id === id), { message: `session ${id} closed` });
    },
  };
  const initialized = await session.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
  if (initialized.status !== 202) throw new Error(`notifications/initialized answered ${initialized.status}`);
  return session;
}

/** Opens a session on `key` over raw HTTP and completes the handshake. */
export function openRawSession(gw: TestGateway, key: string, kind: Kind): Promise<RawSession> {
  return kind === 'sse' ? openSse(gw, key) : openMcp(gw, key);
}
