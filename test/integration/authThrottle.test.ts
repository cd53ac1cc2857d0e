/**
 * The failed-login throttle counts failures per address and refuses only failures: a valid
 * credential is never turned away, so bad tokens from a shared address (a NAT, a reverse
 * proxy) cannot lock its owners out. Whose address counts is the socket's peer unless the
 * admin names a trusted proxy (`fly`, or CIDRs whose X-Forwarded-For is believed).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { EVERYTHING, initializeBody, MCP_ACCEPT, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitForNoDescendants } from '../helpers/procs.js';

const gateways: TestGateway[] = [];
afterEach(async () => {
  await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
  await waitForNoDescendants(process.pid);
});

async function start(settings: Parameters<typeof startGateway>[1]): Promise<TestGateway> {
  const gw = await startGateway(undefined, settings);
  gateways.push(gw);
  return gw;
}

const mcp = (gw: TestGateway) => gw.url(EVERYTHING, 'mcp');

async function post(gw: TestGateway, token: string, extra: Record<string, string> = {}, body: unknown = initializeBody()): Promise<Response> {
  return fetch(mcp(gw), { method: 'POST', headers: { ...MCP_ACCEPT, Authorization: `Bearer ${token}`, ...extra }, body: JSON.stringify(body) });
}

async function statusOf(res: Response): Promise<number> {
  await res.arrayBuffer();
  return res.status;
}

describe('failed-login throttle', () => {
  it('refuses further bad tokens from the address, never the valid secret (new session or live session)', async () => {
    const gw = await start({ authFailuresPerWindow: 3 });
    const init = await post(gw, gw.secret);
    expect(init.status).toBe(200);
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.arrayBuffer();
    for (let i = 0; i < 3; i += 1) expect(await statusOf(await post(gw, 'wrong-token-value'))).toBe(401);
    expect(await statusOf(await post(gw, 'wrong-token-value'))).toBe(429);
    // The owner of the secret, from the same address:
    const live = await post(gw, gw.secret, { 'Mcp-Session-Id': sessionId }, { jsonrpc: '2.0', id: 2, method: 'ping' });
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ jsonrpc: '2.0', id: 2, result: {} });
    expect(await statusOf(await post(gw, gw.secret))).toBe(200);
    const status = await fetch(`${gw.base}/status`, { headers: gw.headers() });
    expect(status.status).toBe(200);
  });

  it('without a trusted proxy, X-Forwarded-For and Fly-Client-IP change nothing: one address', async () => {
    const gw = await start({ authFailuresPerWindow: 2 });
    for (let i = 0; i < 2; i += 1) expect(await statusOf(await post(gw, 'wrong-token-value', { 'X-Forwarded-For': '198.51.100.1' }))).toBe(401);
    expect(await statusOf(await post(gw, 'wrong-token-value', { 'X-Forwarded-For': '198.51.100.2', 'Fly-Client-IP': '198.51.100.3' }))).toBe(429);
  });

  it('behind a trusted proxy CIDR, each forwarded client address has its own budget', async () => {
    const gw = await start({ authFailuresPerWindow: 2, trustedProxy: '127.0.0.0/8' });
    for (let i = 0; i < 2; i += 1) expect(await statusOf(await post(gw, 'wrong-token-value', { 'X-Forwarded-For': '198.51.100.1' }))).toBe(401);
    expect(await statusOf(await post(gw, 'wrong-token-value', { 'X-Forwarded-For': '198.51.100.1' }))).toBe(429);
    // A client that forged a first hop is still known by the hop the trusted proxy added.
    expect(await statusOf(await post(gw, 'wrong-token-value', { 'X-Forwarded-For': '198.51.100.1, 198.51.100.2' }))).toBe(401);
    expect(await statusOf(await post(gw, 'wrong-token-value', { 'X-Forwarded-For': '198.51.100.9' }))).toBe(401);
  });

  it('with trusted proxy "fly", Fly-Client-IP names the client and X-Forwarded-For is ignored', async () => {
    const gw = await start({ authFailuresPerWindow: 1, trustedProxy: 'fly' });
    expect(await statusOf(await post(gw, 'wrong-token-value', { 'Fly-Client-IP': '203.0.113.7' }))).toBe(401);
    expect(await statusOf(await post(gw, 'wrong-token-value', { 'Fly-Client-IP': '203.0.113.7', 'X-Forwarded-For': '203.0.113.99' }))).toBe(429);
    expect(await statusOf(await post(gw, 'wrong-token-value', { 'Fly-Client-IP': '203.0.113.8' }))).toBe(401);
  });
});
