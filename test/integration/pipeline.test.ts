/**
 * One request pipeline (src/http/pipeline.ts): every request to an MCP endpoint runs the
 * same checks in the same order and never reaches Express, whatever its framing. Most
 * cases send the same message twice over raw node:http, once with a Content-Length and
 * once chunked, and compare the answers; which code answered is read off the request
 * object itself (Express swaps the prototype of every request it handles). The rest
 * drives what the pipeline decides: failed-auth throttle, request rate limit, body limit,
 * drain, policy.
 * Waits on events or polls with deadlines; never sleeps for readiness.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { IncomingMessage, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERROR_TABLE, type ErrorCodeName } from '../../src/errors.js';
import { fixtureEntry, initializeBody, MCP_ACCEPT, startGateway, type TestGateway } from '../helpers/gateway.js';
import { expectRejection as expectRejectionOf, type RejectionBody } from '../helpers/rejection.js';
import { describeDescendants, descendantsOf, waitFor, waitForNoDescendants } from '../helpers/procs.js';
import { parseResponses } from '../helpers/rawHttp.js';

const ENV = 'env-server';
const STUBBORN = 'stubborn-server';
const COMMANDS = { [ENV]: fixtureEntry('env-server.mjs') };
const KINDS = ['sse', 'mcp'] as const;
type Kind = (typeof KINDS)[number];

// ---------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------

interface Reply {
  /** The X-Test-Tag this request carried (see servedBy). */
  readonly tag: string;
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

interface RequestOptions {
  readonly method?: string;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: string | Buffer;
  /** Send the body with Transfer-Encoding: chunked (in two chunks) instead of a Content-Length. */
  readonly chunked?: boolean;
}

/** One request on its own connection, the whole response read. */
function send(target: TestGateway, path: string, { method = 'POST', headers = {}, body, chunked = false }: RequestOptions = {}): Promise<Reply> {
  const { hostname, port } = new URL(target.base);
  const bytes = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  const framing: OutgoingHttpHeaders = bytes === undefined ? {} : chunked ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': String(bytes.length) };
  const tag = randomUUID();
  return new Promise((resolve, reject) => {
    const all = { ...headers, ...framing, 'X-Test-Tag': tag };
    const req = httpRequest({ host: hostname, port, method, path, headers: all, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ tag, status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no complete answer to ${method} ${path} within 10 s`)));
    req.on('error', reject);
    if (bytes !== undefined && chunked) {
      const half = Math.max(1, bytes.length >> 1);
      req.write(bytes.subarray(0, half));
      if (half < bytes.length) req.write(bytes.subarray(half));
      req.end();
    } else {
      req.end(bytes);
    }
  });
}

const seen = new WeakMap<TestGateway, Map<string, IncomingMessage>>();

/** Remembers every tagged request `target` receives, for servedBy. */
function track(target: TestGateway): TestGateway {
  const requests = new Map<string, IncomingMessage>();
  seen.set(target, requests);
  target.gateway.server.on('request', (req: IncomingMessage) => {
    const tag = req.headers['x-test-tag'];
    if (typeof tag === 'string') requests.set(tag, req);
  });
  return target;
}

/**
 * Which code answered: Express sets the prototype of every request it handles to its own
 * request object; a request the pipeline answered alone keeps IncomingMessage's.
 */
function servedBy(target: TestGateway, reply: Reply): 'pipeline' | 'express' {
  const req = seen.get(target)?.get(reply.tag);
  if (!req) throw new Error(`the gateway never saw request ${reply.tag}`);
  return Object.getPrototypeOf(req) === IncomingMessage.prototype ? 'pipeline' : 'express';
}

/** The shared refusal assertion (test/helpers/rejection.ts) on this file's replies. */
function expectRejection(reply: Reply, status: number, code: ErrorCodeName): RejectionBody {
  return expectRejectionOf({ status: reply.status, text: reply.text, contentType: reply.headers['content-type'] as string | undefined }, status, code);
}

/** What must be equal between the two answers. */
function comparable(reply: Reply) {
  let body: unknown = reply.text;
  try {
    body = JSON.parse(reply.text) as unknown;
    // Replies carry the request's id, which differs between the two sends.
    if (body && typeof body === 'object' && 'result' in body) delete (body as { id?: unknown }).id;
  } catch {
    // not JSON ('Accepted'): compared as text
  }
  const h = reply.headers;
  return {
    status: reply.status,
    body,
    contentType: h['content-type'],
    wwwAuthenticate: h['www-authenticate'],
    retryAfter: h['retry-after'],
    allow: h['allow'],
    sessionId: h['mcp-session-id'],
  };
}

// ---------------------------------------------------------------------------------------
// Sessions opened over raw HTTP
// ---------------------------------------------------------------------------------------

interface RawSession {
  readonly kind: Kind;
  readonly id: string;
  readonly pid: number;
  /** The path a message for this session is POSTed to. */
  readonly path: string;
  /** Headers of a well-formed message POST (auth included), plus `extra`. */
  headers(extra?: Record<string, string>): Record<string, string>;
  /** SSE: resolves with the reply to request `id` once it arrived on the event stream. */
  streamedReply(id: number): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

function sessionPid(target: TestGateway, id: string): number {
  const session = target.gateway.sessions.all().find((s) => s.id === id);
  if (!session) throw new Error(`session ${id} is not live`);
  return session.bridge.child.pid;
}

async function sessionGone(target: TestGateway, id: string): Promise<void> {
  await waitFor(() => !target.gateway.sessions.all().some((s) => s.id === id), { message: `session ${id} removed` });
}

/** GET /<cmd>/sse on its own connection; the endpoint event names the session. */
async function openSse(target: TestGateway, key = ENV): Promise<RawSession> {
  const { hostname, port } = new URL(target.base);
  const req = httpRequest({
    host: hostname,
    port,
    path: `/${encodeURIComponent(key)}/sse`,
    headers: target.headers({ Accept: 'text/event-stream' }),
    agent: false,
  });
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
    req.end();
  });
  let text = '';
  res.setEncoding('utf8').on('data', (d: string) => (text += d));
  res.on('error', () => undefined); // destroyed by close()
  expect(res.statusCode).toBe(200);
  const endpoint = await waitFor(() => /^event: endpoint\ndata: (\S+)\n\n/.exec(text)?.[1], { message: 'the endpoint event' });
  const id = new URL(endpoint, target.base).searchParams.get('sessionId')!;
  const messages = () =>
    text
      .split('\n\n')
      .filter((event) => event.startsWith('event: message\n'))
      .map((event) => JSON.parse(event.slice(event.indexOf('data: ') + 6)) as Record<string, unknown>);
  return {
    kind: 'sse',
    id,
    pid: sessionPid(target, id),
    path: endpoint,
    headers: (extra = {}) => target.headers({ 'Content-Type': 'application/json', ...extra }),
    streamedReply: (replyId) => waitFor(() => messages().find((m) => m.id === replyId), { message: `the reply to ${replyId} on the event stream` }),
    close: async () => {
      res.destroy();
      req.destroy();
      await sessionGone(target, id);
    },
  };
}

/** POST initialize (answered as JSON), then notifications/initialized. */
async function openMcp(target: TestGateway, key = ENV): Promise<RawSession> {
  const path = `/${encodeURIComponent(key)}/mcp`;
  const init = await send(target, path, { headers: target.headers(MCP_ACCEPT), body: JSON.stringify(initializeBody()) });
  expect(init.status).toBe(200);
  const id = init.headers['mcp-session-id'] as string;
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  const headers = (extra: Record<string, string> = {}) => target.headers({ ...MCP_ACCEPT, 'Mcp-Session-Id': id, ...extra });
  const initialized = await send(target, path, { headers: headers(), body: '{"jsonrpc":"2.0","method":"notifications/initialized"}' });
  expect(initialized.status).toBe(202);
  return {
    kind: 'mcp',
    id,
    pid: sessionPid(target, id),
    path,
    headers,
    streamedReply: () => Promise.reject(new Error('a Streamable reply comes back on the POST')),
    close: async () => {
      if (target.gateway.sessions.all().some((s) => s.id === id)) {
        const reply = await send(target, path, { method: 'DELETE', headers: headers() });
        expect(reply.status).toBe(200);
      }
      await sessionGone(target, id);
    },
  };
}

const open = (target: TestGateway, kind: Kind) => (kind === 'sse' ? openSse(target) : openMcp(target));

let nextId = 100;
const ping = (id = nextId++) => JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' });
/** A ping request whose JSON text is exactly `bytes` long. */
function pingOfSize(bytes: number, id = nextId++): string {
  const base = JSON.stringify({ jsonrpc: '2.0', id, method: 'ping', params: { pad: '' } });
  const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'ping', params: { pad: 'p'.repeat(bytes - base.length) } });
  expect(Buffer.byteLength(body)).toBe(bytes);
  return body;
}

/** The answer a well-formed message gets: 202 on SSE, the reply as JSON on Streamable. */
function expectAccepted(reply: Reply, kind: Kind, id?: number): void {
  if (kind === 'sse') {
    expect({ status: reply.status, text: reply.text }).toEqual({ status: 202, text: 'Accepted' });
    return;
  }
  expect(reply.status).toBe(200);
  expect(reply.headers['content-type']).toBe('application/json');
  expect(JSON.parse(reply.text)).toEqual({ jsonrpc: '2.0', id: id ?? expect.any(Number), result: {} });
}

// ---------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------

/** Gateways started by one test; closed after it. */
const owned: TestGateway[] = [];
async function ownGateway(settings: Parameters<typeof startGateway>[1], commands: Record<string, unknown> = COMMANDS): Promise<TestGateway> {
  const gw = track(await startGateway(commands, settings));
  owned.push(gw);
  return gw;
}

/** Children of sessions a describe block shares across its tests (opened in its beforeAll). */
const sharedPids = new Set<number>();

afterEach(async () => {
  await Promise.allSettled(owned.splice(0).map((gw) => gw.close()));
  // after each test, no child of ours runs but those of the shared sessions
  try {
    await waitFor(() => descendantsOf(process.pid).every((pid) => sharedPids.has(pid)));
  } catch {
    throw new Error(`children beyond the shared sessions (${[...sharedPids].join(', ')}) remain:\n${describeDescendants(process.pid)}`);
  }
});

afterAll(async () => {
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000, message: 'the test process after fastLane.test.ts' });
});

// ---------------------------------------------------------------------------------------
// The same answers as the full stack
// ---------------------------------------------------------------------------------------

describe('Content-Length and chunked bodies get the same answer, from the pipeline alone', () => {
  let gw: TestGateway;
  const live: Partial<Record<Kind, RawSession>> = {};
  const session = (kind: Kind) => live[kind]!;
  const livePids = () => KINDS.map((k) => session(k).pid).sort((a, b) => a - b);

  beforeAll(async () => {
    gw = track(await startGateway(COMMANDS));
    [live.sse, live.mcp] = await Promise.all([openSse(gw), openMcp(gw)]);
    for (const k of KINDS) sharedPids.add(live[k]!.pid);
  });
  afterAll(async () => {
    await Promise.allSettled(KINDS.map((k) => live[k]?.close()));
    await gw?.close();
    sharedPids.clear();
    await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
  });
  afterEach(() => {
    // nothing here spawns or ends a child: exactly the two sessions' children run
    expect(descendantsOf(process.pid).sort((a, b) => a - b)).toEqual(livePids());
    expect(gw.gateway.sessions.size).toBe(2);
  });

  /**
   * The same message sent with a Content-Length (`sized`) and chunked; asserts that the
   * pipeline alone answered both (no Express), and that both
   * got the same answer.
   */
  async function both(kind: Kind, body: (id: number) => string, options: { headers?: Record<string, string>; path?: string } = {}) {
    const s = session(kind);
    const headers = options.headers ?? s.headers();
    const url = options.path ?? s.path;
    const ids = [nextId++, nextId++] as const;
    const sized = await send(gw, url, { headers, body: body(ids[0]) });
    const chunked = await send(gw, url, { headers, body: body(ids[1]), chunked: true });
    expect({ sized: servedBy(gw, sized), chunked: servedBy(gw, chunked) }).toEqual({ sized: 'pipeline', chunked: 'pipeline' });
    expect(comparable(sized)).toEqual(comparable(chunked));
    return { sized, chunked, ids };
  }

  describe.each(KINDS)('%s', (kind) => {
    it('a well-formed request: 202 (SSE) or its reply as application/json (Streamable), delivered to the child', async () => {
      const { sized, chunked, ids } = await both(kind, (id) => ping(id));
      expectAccepted(sized, kind, ids[0]);
      expectAccepted(chunked, kind, ids[1]);
      if (kind === 'sse') {
        for (const id of ids) expect(await session(kind).streamedReply(id)).toEqual({ jsonrpc: '2.0', id, result: {} });
      }
    });

    it('a notification: 202', async () => {
      const { sized } = await both(kind, () => '{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}');
      expect(sized.status).toBe(202);
    });

    it('Content-Type: application/json; charset=utf-8 is served like plain JSON', async () => {
      const { sized, ids } = await both(kind, (id) => ping(id), { headers: session(kind).headers({ 'Content-Type': 'application/json; charset=utf-8' }) });
      expectAccepted(sized, kind, ids[0]);
      if (kind === 'sse') await session(kind).streamedReply(ids[0]);
    });

    it.each([
      ['a body that is not JSON', '{"jsonrpc":"2.0",'],
      ['a JSON string', '"x"'],
      ['a JSON number', '42'],
      ['JSON null', 'null'],
      ['JSON true', 'true'],
    ])('%s: 400 parse_error', async (_name, text) => {
      const { sized } = await both(kind, () => text);
      const body = expectRejection(sized, 400, 'parse_error');
      expect(body.error.code).toBe(-32700);
    });

    it('an object that is no JSON-RPC message: 400 bad_request', async () => {
      const { sized } = await both(kind, () => '{"foo":1}');
      expectRejection(sized, 400, 'bad_request');
    });

    it('a wrong bearer token: 401 with WWW-Authenticate', async () => {
      const { sized } = await both(kind, (id) => ping(id), { headers: session(kind).headers({ Authorization: 'Bearer wrong-token' }) });
      expectRejection(sized, 401, 'unauthorized');
      expect(sized.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(sized.text).not.toContain(gw.secret);
    });

    it('no Authorization header: 401', async () => {
      const headers = session(kind).headers();
      delete headers.Authorization;
      const { sized } = await both(kind, (id) => ping(id), { headers });
      expectRejection(sized, 401, 'unauthorized');
    });

    it('an unknown session id: 404 session_not_found', async () => {
      const unknown = randomUUID();
      const options = kind === 'sse' ? { path: `/${ENV}/messages?sessionId=${unknown}` } : { headers: session(kind).headers({ 'Mcp-Session-Id': unknown }) };
      const { sized } = await both(kind, (id) => ping(id), options);
      expect(expectRejection(sized, 404, 'session_not_found').error.code).toBe(-32001);
    });

    it("the other transport's session id: 404 session_not_found", async () => {
      const other = session(kind === 'sse' ? 'mcp' : 'sse').id;
      const options = kind === 'sse' ? { path: `/${ENV}/messages?sessionId=${other}` } : { headers: session(kind).headers({ 'Mcp-Session-Id': other }) };
      const { sized } = await both(kind, (id) => ping(id), options);
      expectRejection(sized, 404, 'session_not_found');
    });

    it('a Host header that is not allowed: 403 forbidden_host', async () => {
      const port = new URL(gw.base).port;
      const { sized } = await both(kind, (id) => ping(id), { headers: session(kind).headers({ Host: `evil.example:${port}` }) });
      expectRejection(sized, 403, 'forbidden_host');
      // control: a loopback name is allowed
      const id = nextId++;
      expectAccepted(await send(gw, session(kind).path, { headers: session(kind).headers({ Host: `localhost:${port}` }), body: ping(id) }), kind, id);
    });

    it('an Origin that is not allowed: 403 forbidden_origin', async () => {
      const { sized } = await both(kind, (id) => ping(id), { headers: session(kind).headers({ Origin: 'http://evil.example' }) });
      expectRejection(sized, 403, 'forbidden_origin');
    });
  });

  describe('sse only', () => {
    it('a JSON array: 400 bad_request', async () => {
      const { sized } = await both('sse', (id) => `[${ping(id)}]`);
      expect(expectRejection(sized, 400, 'bad_request').error.message).toBe('Invalid Request: not a JSON-RPC message');
    });
  });

  describe('streamable only', () => {
    it('an empty batch: 400 bad_request', async () => {
      const { sized } = await both('mcp', () => '[]');
      expectRejection(sized, 400, 'bad_request');
    });

    it('initialize on an open session: 400 bad_request', async () => {
      const { sized } = await both('mcp', (id) => JSON.stringify(initializeBody(id)));
      expect(expectRejection(sized, 400, 'bad_request').error.message).toBe('Invalid Request: Server already initialized');
    });

    it('an Accept without text/event-stream: 406 not_acceptable', async () => {
      const { sized } = await both('mcp', (id) => ping(id), { headers: session('mcp').headers({ Accept: 'application/json' }) });
      expectRejection(sized, 406, 'not_acceptable');
    });

    it('an unsupported MCP-Protocol-Version: 400 bad_request', async () => {
      const { sized } = await both('mcp', (id) => ping(id), { headers: session('mcp').headers({ 'MCP-Protocol-Version': '1999-01-01' }) });
      expectRejection(sized, 400, 'bad_request');
    });

    it('a supported MCP-Protocol-Version is served', async () => {
      const { sized, ids } = await both('mcp', (id) => ping(id), { headers: session('mcp').headers({ 'MCP-Protocol-Version': '2025-06-18' }) });
      expectAccepted(sized, 'mcp', ids[0]);
    });
  });

  describe('a body that starts with a UTF-8 byte order mark', () => {
    // The body reader drops a leading byte order mark, whatever the framing.
    const bom = (id: number) => Buffer.from(`\ufeff${ping(id)}`, 'utf8');

    it.each(KINDS)('%s: is served, chunked or with a Content-Length', async (kind) => {
      const s = session(kind);
      for (const chunked of [true, false]) {
        const id = nextId++;
        const reply = await send(gw, s.path, { headers: s.headers(), body: bom(id), chunked });
        expectAccepted(reply, kind, id);
        expect(servedBy(gw, reply)).toBe('pipeline');
      }
    });
  });
});

// ---------------------------------------------------------------------------------------
// What the pipeline decides
// ---------------------------------------------------------------------------------------

describe('failed authentications are throttled, valid credentials never', () => {
  it.each(KINDS)('%s: 3 wrong tokens are recorded; the 4th wrong one gets 429, the right token is still served', async (kind) => {
    const gw = await ownGateway({ authFailuresPerWindow: 3 });
    const s = await open(gw, kind);
    // control: the right token is served before any failure
    const first = nextId++;
    expectAccepted(await send(gw, s.path, { headers: s.headers(), body: ping(first) }), kind, first);
    for (let i = 0; i < 3; i += 1) {
      const reply = await send(gw, s.path, { headers: s.headers({ Authorization: `Bearer wrong-${i}` }), body: ping() });
      expectRejection(reply, 401, 'unauthorized');
      expect(reply.headers['www-authenticate']).toMatch(/^Bearer /);
      expect(servedBy(gw, reply)).toBe('pipeline');
    }
    const refused = await send(gw, s.path, { headers: s.headers({ Authorization: 'Bearer wrong-3' }), body: ping() });
    const body = expectRejection(refused, 429, 'rate_limited');
    expect(servedBy(gw, refused)).toBe('pipeline');
    expect(body.error.data).toMatchObject({ limit: 'authFailuresPerAddress', max: 3 });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // the full stack gives the same answer
    const chunked = await send(gw, s.path, { headers: s.headers({ Authorization: 'Bearer wrong-4' }), body: ping(), chunked: true });
    expect(comparable(chunked)).toEqual({ ...comparable(refused), retryAfter: expect.any(String) });
    // a valid credential from the throttled address is never refused
    const served = nextId++;
    const ok = await send(gw, s.path, { headers: s.headers(), body: ping(served) });
    expectAccepted(ok, kind, served);
    expect(servedBy(gw, ok)).toBe('pipeline');
    expect(gw.gateway.sessions.size).toBe(1); // the session itself is untouched
  });
});

describe('per-session POSTs count against httpRequestsPerMinute', () => {
  it.each(KINDS)('%s: with a budget of 5, the requests that opened the session and the POSTs after them share it; the 6th gets 429', async (kind) => {
    const gw = await ownGateway({ httpRequestsPerMinute: 5 });
    // SSE: the GET costs 1. Streamable: initialize and notifications/initialized cost 2.
    const s = await open(gw, kind);
    const spent = kind === 'sse' ? 1 : 2;
    const statuses: number[] = [];
    let last: Reply | undefined;
    for (let i = 0; i < 6 - spent; i += 1) {
      last = await send(gw, s.path, { headers: s.headers(), body: ping() });
      statuses.push(last.status);
      expect(servedBy(gw, last)).toBe('pipeline');
    }
    const ok = kind === 'sse' ? 202 : 200;
    expect(statuses).toEqual([...Array<number>(5 - spent).fill(ok), 429]);
    const body = expectRejection(last!, 429, 'rate_limited');
    expect(body.error.data).toMatchObject({ limit: 'httpRequestsPerClient', max: 5 });
    expect(Number(last!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // the full stack refuses the same way
    const chunked = await send(gw, s.path, { headers: s.headers(), body: ping(), chunked: true });
    expect(comparable(chunked)).toEqual({ ...comparable(last!), retryAfter: expect.any(String) });
  });
});

describe('bodyLimitBytes', () => {
  const LIMIT = 2048;

  it.each(KINDS)('%s: a body of exactly the limit is served; one byte more gets 413 (both framings)', async (kind) => {
    const gw = await ownGateway({ bodyLimitBytes: LIMIT });
    const s = await open(gw, kind);
    for (const chunked of [false, true]) {
      const id = nextId++;
      const atLimit = await send(gw, s.path, { headers: s.headers(), body: pingOfSize(LIMIT, id), chunked });
      expectAccepted(atLimit, kind, id);
      if (kind === 'sse') await s.streamedReply(id);
      const over = await send(gw, s.path, { headers: s.headers(), body: pingOfSize(LIMIT + 1), chunked });
      expect(expectRejection(over, 413, 'payload_too_large').error.data).toMatchObject({ limitBytes: LIMIT });
      expect({ atLimit: servedBy(gw, atLimit), over: servedBy(gw, over) }).toEqual({ atLimit: 'pipeline', over: 'pipeline' });
    }
    expect(gw.gateway.sessions.size).toBe(1);
    await s.close();
  });
});

describe('under a policy', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-pipeline-'));
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ name: 'pipeline', default: 'allow' }));
    gw = track(await startGateway(COMMANDS, { policyFile }));
  });
  afterAll(async () => {
    await gw?.close();
  });

  it.each(KINDS)('%s: a body with a duplicate key gets 403 policy_denied; a plain one is served', async (kind) => {
    const s = await open(gw, kind);
    try {
      const duplicate = (id: number) => `{"jsonrpc":"2.0","id":${id},"method":"ping","method":"tools/list"}`;
      const lane = await send(gw, s.path, { headers: s.headers(), body: duplicate(nextId++) });
      const body = expectRejection(lane, 403, 'policy_denied');
      expect(servedBy(gw, lane)).toBe('pipeline');
      expect(body.error.data).toMatchObject({ reason: 'malformed_request', rule: 'shape', key: 'method' });
      const chunked = await send(gw, s.path, { headers: s.headers(), body: duplicate(nextId++), chunked: true });
      expect(comparable(chunked)).toEqual(comparable(lane));
      const id = nextId++;
      expectAccepted(await send(gw, s.path, { headers: s.headers(), body: ping(id) }), kind, id);
    } finally {
      await s.close();
    }
  });
});

// ---------------------------------------------------------------------------------------
// Drain
// ---------------------------------------------------------------------------------------

describe('while the gateway drains', () => {
  it('a session POST on a connection already open gets 503 draining; a new connection is refused', async () => {
    // The stubborn child takes the stop stages (stopEofMs + stopTermMs) to stop, so the drain
    // lasts long enough for the open connections to be answered before they are closed.
    const gw = await ownGateway({}, { ...COMMANDS, [STUBBORN]: fixtureEntry('stubborn-server.mjs') });
    const port = Number(new URL(gw.base).port);
    const [sse, mcp] = await Promise.all([openSse(gw), openMcp(gw)]);
    const stubborn = await openSse(gw, STUBBORN);
    expect(gw.gateway.sessions.size).toBe(3);

    // One connection per transport, each busy with a request whose body has not arrived,
    // so server.close() does not close it as idle.
    const host = `127.0.0.1:${port}`;
    const auth = `Authorization: Bearer ${gw.secret}`;
    const sockets = await Promise.all(
      KINDS.map(async (kind) => {
        const socket = net.connect(port, '127.0.0.1');
        await once(socket, 'connect');
        let received = '';
        socket.setEncoding('utf8').on('data', (d: string) => (received += d));
        const closed = once(socket, 'close');
        const probe = `drain-probe-${kind}`;
        const seen = new Promise<void>((resolve) => {
          const onRequest = (req: IncomingMessage) => {
            if (!req.url?.includes(probe)) return;
            gw.gateway.server.off('request', onRequest);
            resolve();
          };
          gw.gateway.server.on('request', onRequest);
        });
        socket.write(
          `POST /${ENV}/messages?sessionId=${probe} HTTP/1.1\r\nHost: ${host}\r\n${auth}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n`,
        );
        await seen;
        return { kind, socket, closed, received: () => received };
      }),
    );

    const closing = gw.gateway.close();
    // Right away: finish each probe and pipeline a well-formed message for a live session.
    for (const { kind, socket } of sockets) {
      const body = ping();
      const target = kind === 'sse' ? sse : mcp;
      const headers = Object.entries({ ...target.headers(), Host: host, 'Content-Length': String(Buffer.byteLength(body)) })
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('');
      socket.write(`{}POST ${target.path} HTTP/1.1\r\n${headers}\r\n${body}`);
    }
    // A new connection is not served at all: the listening socket closed with close().
    const fresh = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: sse.path, headers: { ...sse.headers(), 'Content-Length': '2' }, agent: false });
      req.once('response', (res) => {
        res.resume();
        resolve(`HTTP ${res.statusCode ?? 0}`);
      });
      req.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? String(error)));
      req.end('{}');
    });
    expect(fresh).toBe('ECONNREFUSED');

    await closing;
    for (const { kind, closed, received } of sockets) {
      await closed;
      const [probe, refused, ...more] = parseResponses(received());
      expect({ kind, probe: probe?.status, refused: refused?.status, more: more.length }).toEqual({ kind, probe: 404, refused: 503, more: 0 });
      expect(refused!.headers['retry-after']).toBe('1');
      expect(refused!.headers.connection).toBe('close');
      expect(JSON.parse(refused!.body)).toEqual({
        jsonrpc: '2.0',
        error: { code: ERROR_TABLE.draining.rpc, message: 'gateway is shutting down', data: { code: 'draining' } },
        id: null,
      });
    }
    expect(gw.gateway.sessions.size).toBe(0);
    await Promise.all([sse, mcp, stubborn].map((s) => sessionGone(gw, s.id)));
    await waitForNoDescendants(process.pid, { timeoutMs: 5_000 });
  });
});
