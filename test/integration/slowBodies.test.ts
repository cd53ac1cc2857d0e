/**
 * Sockets that never finish a request must not pile up: a body that trickles in is cut by
 * the request timeout, an error answered before the body was read closes the connection
 * (instead of reading the rest of a huge body), and concurrent connections are bounded.
 * Event streams are responses and outlive the request timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect, type Socket } from 'node:net';
import { EVERYTHING, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const REQUEST_TIMEOUT_MS = 400;
let gw: TestGateway;
const sockets: Socket[] = [];

beforeAll(async () => {
  gw = await startGateway(undefined, { requestTimeoutMs: REQUEST_TIMEOUT_MS, maxConnections: 6, keepAliveMs: 100 });
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await gw.close();
  await waitForNoDescendants(process.pid);
});

interface Raw {
  readonly socket: Socket;
  text(): string;
  closed(): boolean;
}

async function rawSocket(): Promise<Raw> {
  const { port } = new URL(gw.base);
  const socket = connect(Number(port), '127.0.0.1');
  sockets.push(socket);
  let text = '';
  let closed = false;
  socket.setEncoding('utf8').on('data', (d: string) => (text += d));
  socket.on('error', () => undefined);
  socket.on('close', () => (closed = true));
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  return { socket, text: () => text, closed: () => closed };
}

const path = `/${encodeURIComponent(EVERYTHING)}/mcp`;
const head = (headers: string) =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n${headers}\r\n`;

describe('slow and unread bodies', () => {
  it('closes the connection after a 401 answered before a huge body was read', async () => {
    const raw = await rawSocket();
    raw.socket.write(`${head('Content-Length: 1000000\r\n')}{"jsonrpc"`);
    await waitFor(() => raw.text().startsWith('HTTP/1.1 401'), { message: 'the 401' });
    expect(raw.text().toLowerCase()).toContain('connection: close');
    await waitFor(() => raw.closed(), { message: 'the server closing the connection', timeoutMs: 5_000 });
  });

  it('cuts an authenticated body that trickles in past the request timeout', async () => {
    const raw = await rawSocket();
    raw.socket.write(head(`Authorization: Bearer ${gw.secret}\r\nContent-Length: 1000\r\n`));
    const trickle = setInterval(() => raw.socket.writable && raw.socket.write(' '), 50);
    try {
      await waitFor(() => raw.closed(), { message: 'the request timeout closing the connection', timeoutMs: 10_000 });
    } finally {
      clearInterval(trickle);
    }
    expect(raw.text()).toMatch(/^HTTP\/1\.1 408|^$/);
  });

  it('keeps an event stream open past the request timeout', async () => {
    const raw = await rawSocket();
    raw.socket.write(
      `GET /${encodeURIComponent(EVERYTHING)}/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${gw.secret}\r\nAccept: text/event-stream\r\n\r\n`,
    );
    // Keep-alives every 100 ms: ten of them span more than twice the request timeout.
    await waitFor(() => raw.text().split(': keepalive').length > 10, { message: 'ten keep-alive comments', timeoutMs: 10_000 });
    expect(raw.closed()).toBe(false);
    raw.socket.destroy();
    await waitFor(() => gw.gateway.sessions.size === 0, { message: 'the session closed' });
  });
});

describe('concurrent connections', () => {
  it('refuses connections past --max-connections and serves again once one closes', async () => {
    const idle = await Promise.all(Array.from({ length: 6 }, () => rawSocket()));
    await waitFor(async () => (await countConnections()) >= 6, { message: 'six connections counted' });
    const extra = await rawSocket();
    extra.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await waitFor(() => extra.closed(), { message: 'the extra connection dropped' });
    expect(extra.text()).toBe('');
    idle[0]!.socket.destroy();
    await waitFor(async () => (await countConnections()) < 6, { message: 'a slot freed' });
    const again = await rawSocket();
    again.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    await waitFor(() => again.text().startsWith('HTTP/1.1 200'), { message: '/health answered' });
    for (const raw of idle) raw.socket.destroy();
    expect(gw.logs.some((l) => /"maxConnections":6/.test(l) && /"fdLimit":\d+/.test(l))).toBe(true);
  });
});

function countConnections(): Promise<number> {
  return new Promise((resolve, reject) => gw.gateway.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}
