/**
 * The request pipeline (src/http/pipeline.ts with the checks of src/http/checks.ts) on a
 * real node:http server on a random port, with stub handlers that echo what the checks
 * established: the order of the checks, credentials and the failed-login throttle, the
 * request rate limit, CORS, and the one error writer.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { adminVerifier } from '../../../src/auth/admin.js';
import { digest } from '../../../src/auth/bearer.js';
import { multiTokenVerifier } from '../../../src/auth/clients.js';
import { CommandRegistry } from '../../../src/commands/registry.js';
import type { CommandSpec } from '../../../src/commands/types.js';
import { ERROR_TABLE, WardenError } from '../../../src/errors.js';
import { buildChecks } from '../../../src/http/checks.js';
import { defaultHostGuard, hostCheck } from '../../../src/http/hostGuard.js';
import { createPipeline } from '../../../src/http/pipeline.js';
import { createLogger } from '../../../src/logging/logger.js';
import { takeRequest } from '../../../src/ratelimit/httpLimits.js';
import { createLimiterStore, type Limiter, type LimiterStore } from '../../../src/ratelimit/limiter.js';

const SECRET = 'shared-secret-0123456789';
const CLIENT_TOKEN = 'client-token-abcdefghijkl';
const ADMIN_TOKEN = 'admin-token-abcdefghijkl';
const spec: CommandSpec = { key: 'echo server', command: 'node', args: [], cwd: '/', env: {}, allowedEnv: undefined, description: undefined };

let server: Server;
let port: number;
let store: LimiterStore;
let draining = false;
let limiter: Limiter | undefined;
const throttled = new Set<string>();
const failures: { address: string; path: string; reason: string }[] = [];
const failedAddresses: string[] = [];

beforeAll(async () => {
  store = await createLimiterStore({ logger: createLogger('error') });
  server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  const checks = buildChecks({
    isDraining: () => draining,
    hostCheck: hostCheck(defaultHostGuard('127.0.0.1', port)),
    registry: new CommandRegistry([spec]),
    verify: multiTokenVerifier(SECRET, 'admin', [{ digest: digest(CLIENT_TOKEN), principal: { kind: 'client', clientId: 'app', role: 'user' } }]),
    verifyAdmin: adminVerifier(ADMIN_TOKEN, []),
    addressOf: (req) => String(req.headers['x-test-address'] ?? 'peer'),
    authThrottle: {
      check: async (address) => {
        if (throttled.has(address)) throw new WardenError('rate_limited', 'too many failed authentications', { retryAfter: 30 });
      },
      fail: async (address) => void failedAddresses.push(address),
    },
    onAuthFailure: (req, path, reason) => failures.push({ address: String(req.headers['x-test-address'] ?? 'peer'), path, reason }),
    takeRequest: (key) => (limiter ? takeRequest(limiter, key) : Promise.resolve(undefined)),
    bodyLimitBytes: 1000,
    policyActive: () => false,
    // Stand-ins for the Fly.io router (src/fly/router.ts), keyed on a test header.
    sessionMachine: (ctx) =>
      ctx.req.headers['x-test-elsewhere'] ? new WardenError('misdirected', 'held elsewhere', { headers: { 'fly-replay': 'instance=m2' } }) : undefined,
    drainHeaders: (ctx) => (ctx.req.headers['x-test-elsewhere'] ? { 'fly-replay': 'elsewhere=true' } : undefined),
  });
  server.on(
    'request',
    createPipeline({
      logger: createLogger('error'),
      checks,
      isDraining: () => draining,
      messages: ({ res, spec: routed, endpoint, principal, sessionId, body }) => {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ key: routed.key, endpoint, principal, sessionId, body }));
      },
      pages: (req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ page: req.url, access: req.access })),
    }),
  );
});

beforeEach(() => {
  draining = false;
  limiter = undefined;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await store.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, any>;
}

const MCP = `/${encodeURIComponent(spec.key)}/mcp`;

function send(
  path: string,
  { method = 'GET', headers = {}, body }: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false, headers: { Host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        let json: Record<string, any> = {};
        try {
          json = JSON.parse(text) as Record<string, any>;
        } catch {
          // empty (204) or not JSON
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const auth = (token = SECRET) => ({ Authorization: `Bearer ${token}` });
const jsonPost = (token = SECRET) => ({
  method: 'POST',
  headers: { ...auth(token), 'Content-Type': 'application/json' },
  body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
});

function expectError(answer: Answer, code: keyof typeof ERROR_TABLE): Record<string, any> {
  expect({ status: answer.status, code: answer.json.error?.data?.code }).toEqual({ status: ERROR_TABLE[code].status, code });
  expect(answer.headers['x-warden-error']).toMatch(new RegExp(`^${code}: `));
  return answer.json.error;
}

describe('routing and handing over', () => {
  it('hands an MCP request to the transports with the spec, principal, session id and parsed body', async () => {
    const answer = await send(MCP, { ...jsonPost(), headers: { ...jsonPost().headers, 'Mcp-Session-Id': 'abc' } });
    expect(answer.json).toEqual({
      key: spec.key,
      endpoint: 'mcp',
      principal: { kind: 'shared-secret', clientId: 'shared-secret', role: 'admin' },
      sessionId: 'abc',
      body: { jsonrpc: '2.0', id: 1, method: 'ping' },
    });
    const sse = await send(`/${encodeURIComponent(spec.key)}/messages?sessionId=s1`, jsonPost(CLIENT_TOKEN));
    expect(sse.json).toMatchObject({ endpoint: 'messages', sessionId: 's1', principal: { kind: 'client', clientId: 'app' } });
  });

  it('answers /health with no check at all', async () => {
    expect(await send('/health', { headers: { Host: 'anything.example' } })).toMatchObject({ status: 200, json: { status: 'ok' } });
  });
});

describe('the order of the checks', () => {
  it('drain comes first: 503 even without credentials and with a foreign Host', async () => {
    draining = true;
    const answer = await send(MCP, { headers: { Host: 'evil.example' } });
    expectError(answer, 'draining');
    expect(answer.headers['retry-after']).toBe('1');
  });

  it('Host and Origin before credentials', async () => {
    expectError(await send(MCP, { headers: { Host: 'evil.example' } }), 'forbidden_host');
    expectError(await send(MCP, { headers: { Origin: 'http://evil.example' } }), 'forbidden_origin');
  });

  it('credentials before the command: an unknown key without credentials is 401, with them 404', async () => {
    expectError(await send('/nope/mcp'), 'unauthorized');
    expectError(await send('/nope/mcp', { headers: auth() }), 'unknown_command');
    expectError(await send('/not/an/mcp/path', { headers: auth() }), 'unknown_command');
  });

  it('command before method, method before body: 405 names what is allowed, the body is never read', async () => {
    expectError(await send('/nope/sse', { method: 'DELETE', headers: auth() }), 'unknown_command');
    const answer = await send(MCP, { method: 'PUT', headers: { ...auth(), 'Content-Type': 'text/plain' }, body: 'x' });
    expectError(answer, 'method_not_allowed');
    expect(answer.headers.allow).toBe('GET, POST, DELETE');
  });

  it('the body last: a bad body is only looked at for an authenticated, known, allowed request', async () => {
    expectError(await send(MCP, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{' }), 'unauthorized');
    expectError(await send(MCP, { method: 'POST', headers: { ...auth(), 'Content-Type': 'application/json' }, body: '{' }), 'parse_error');
  });
});

describe('credentials', () => {
  it('401 with WWW-Authenticate and the JSON-RPC body, never echoing the token; the failure is recorded', async () => {
    const wrong = 'wrong-token-value-xyz';
    const answer = await send(MCP, { headers: { ...auth(wrong), 'X-Test-Address': 'a1' } });
    const error = expectError(answer, 'unauthorized');
    expect(answer.headers['www-authenticate']).toBe('Bearer realm="mcp-warden"');
    expect(error).toEqual({ code: ERROR_TABLE.unauthorized.rpc, message: 'invalid bearer token', data: { code: 'unauthorized' } });
    expect(answer.text).not.toContain(wrong);
    expect(failures.at(-1)).toEqual({ address: 'a1', path: MCP, reason: 'invalid bearer token' });
    expect(failedAddresses.at(-1)).toBe('a1');
  });

  it('refuses a token in the query string, even the right one', async () => {
    const answer = await send(`${MCP}?access_token=${encodeURIComponent(SECRET)}`);
    expect(expectError(answer, 'unauthorized').message).toBe('credentials in the query string are not accepted; send Authorization: Bearer <token>');
    expect(answer.text).not.toContain(SECRET);
  });

  it('a throttled address is refused for a wrong token, never for the right one', async () => {
    throttled.add('blocked');
    const refused = await send(MCP, { headers: { ...auth('wrong-token-value'), 'X-Test-Address': 'blocked' } });
    expectError(refused, 'rate_limited');
    expect(refused.headers['retry-after']).toBe('30');
    expect((await send(MCP, { ...jsonPost(), headers: { ...jsonPost().headers, 'X-Test-Address': 'blocked' } })).status).toBe(200);
  });

  it('the admin token opens admin routes only; a client credential sees /status as a client, /metrics not at all', async () => {
    expectError(await send(MCP, { headers: auth(ADMIN_TOKEN) }), 'unauthorized');
    expect((await send('/metrics', { headers: auth(ADMIN_TOKEN) })).json).toEqual({ page: '/metrics', access: 'admin' });
    expect((await send('/status', { headers: auth() })).json).toEqual({ page: '/status', access: 'client' });
    expectError(await send('/metrics', { headers: auth() }), 'forbidden');
    expectError(await send('/status'), 'unauthorized');
  });
});

describe('request rate limit', () => {
  it('429 with Retry-After and the limit once the budget is used; each principal has its own', async () => {
    limiter = store.create('pipeline-test', { points: 2, durationSeconds: 30 });
    for (let i = 0; i < 2; i += 1) expect((await send(MCP, jsonPost())).status).toBe(200);
    const limited = await send(MCP, jsonPost());
    expect(expectError(limited, 'rate_limited').data).toEqual({ code: 'rate_limited', limit: 'httpRequestsPerClient', max: 2 });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await send(MCP, jsonPost(CLIENT_TOKEN))).status).toBe(200);
  });

  it('a limiter failure (not a refusal) is a 500 that says nothing of the cause', async () => {
    const fail = (): Promise<never> => Promise.reject(new Error('store exploded'));
    limiter = { rule: { points: 1, durationSeconds: 1 }, consume: fail, peek: fail, reward: fail };
    const answer = await send(MCP, jsonPost());
    expectError(answer, 'internal');
    expect(answer.headers['retry-after']).toBeUndefined();
    expect(answer.text).not.toContain('store exploded');
  });
});

describe('the machine check (Fly.io)', () => {
  const elsewhere = () => ({ ...jsonPost(), headers: { ...jsonPost().headers, 'X-Test-Elsewhere': '1' } });

  it('runs after the credentials and before the rate limit: a replay is never charged', async () => {
    limiter = store.create('pipeline-machine', { points: 1, durationSeconds: 30 });
    expectError(await send(MCP, { ...elsewhere(), headers: { 'X-Test-Elsewhere': '1' } }), 'unauthorized');
    for (let i = 0; i < 3; i += 1) {
      const answer = await send(MCP, elsewhere());
      expectError(answer, 'misdirected');
      expect(answer.headers['fly-replay']).toBe('instance=m2');
    }
    expect((await send(MCP, jsonPost())).status).toBe(200);
    expectError(await send(MCP, jsonPost()), 'rate_limited');
  });

  it("gives the drain's 503 the extra headers it asks for", async () => {
    draining = true;
    const answer = await send(MCP, elsewhere());
    expectError(answer, 'draining');
    expect(answer.headers['fly-replay']).toBe('elsewhere=true');
    expect((await send(MCP, jsonPost())).headers['fly-replay']).toBeUndefined();
  });
});

describe('CORS', () => {
  const origin = () => `http://localhost:${port}`;

  it('answers a preflight from an allowed origin with the endpoint methods and the MCP request headers it asked for', async () => {
    const answer = await send(MCP, {
      method: 'OPTIONS',
      headers: {
        Origin: origin(),
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization, content-type, mcp-session-id, mcp-protocol-version, env_api_key, x-evil',
      },
    });
    expect(answer.status).toBe(204);
    expect(answer.headers['access-control-allow-origin']).toBe(origin());
    expect(answer.headers['access-control-allow-methods']).toBe('GET, POST, DELETE, OPTIONS');
    expect(answer.headers['access-control-allow-headers']).toBe('authorization, content-type, mcp-session-id, mcp-protocol-version, env_api_key');
    expect(answer.headers.vary).toBe('Origin');
  });

  it('refuses a preflight from an origin that is not allowed', async () => {
    const answer = await send(MCP, { method: 'OPTIONS', headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' } });
    expectError(answer, 'forbidden_origin');
    expect(answer.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('lets an allowed origin read answers and errors, and the headers MCP clients need', async () => {
    const ok = await send(MCP, { ...jsonPost(), headers: { ...jsonPost().headers, Origin: origin() } });
    expect(ok.headers['access-control-allow-origin']).toBe(origin());
    const refused = await send(MCP, { headers: { Origin: origin() } });
    expect(refused.status).toBe(401);
    expect(refused.headers['access-control-allow-origin']).toBe(origin());
    expect(String(refused.headers['access-control-expose-headers'])).toMatch(/Mcp-Session-Id.*WWW-Authenticate/);
  });
});
