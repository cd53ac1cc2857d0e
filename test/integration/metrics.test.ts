/**
 * GET /metrics: Prometheus text behind auth, or on its own port without auth.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectClient, EVERYTHING, initializeBody, MCP_ACCEPT, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitForNoDescendants } from '../helpers/procs.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { EmptyResultSchema, McpError } from '@modelcontextprotocol/sdk/types.js';

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
  await waitForNoDescendants(process.pid);
});

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('metrics', () => {
  it('needs the secret and counts sessions, spawns, requests and bytes', async () => {
    gw = await startGateway();
    const anonymous = await fetch(`${gw.base}/metrics`);
    expect(anonymous.status).toBe(401);

    const { client, transport } = await connectClient(gw, EVERYTHING, 'mcp');
    await client.callTool({ name: 'echo', arguments: { message: 'metrics' } });
    const res = await fetch(`${gw.base}/metrics`, { headers: gw.adminHeaders() });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    expect(value(text, `warden_sessions{transport="streamable",command="${EVERYTHING}"}`)).toBe(1);
    expect(value(text, `warden_children{command="${EVERYTHING}",state="live"}`)).toBe(1);
    expect(value(text, `warden_spawns_total{command="${EVERYTHING}"}`)).toBe(1);
    expect(value(text, 'warden_request_seconds_count{method="tools/call"}')).toBe(1);
    expect(value(text, 'warden_request_seconds_count{method="initialize"}')).toBe(1);
    expect(value(text, 'warden_connect_seconds_count{transport="streamable",pooled="false"}')).toBe(1);
    expect(value(text, 'warden_bytes_total{direction="in"}')).toBeGreaterThan(100);
    expect(value(text, 'warden_bytes_total{direction="out"}')).toBeGreaterThan(100);
    expect(text).toMatch(/warden_process_nodejs_eventloop_lag_seconds \d/);
    await (transport as StreamableHTTPClientTransport).terminateSession();
    await client.close();
  });

  it('counts a method outside the MCP specifications as "other", never under its own name', async () => {
    gw = await startGateway();
    const { client, transport } = await connectClient(gw, EVERYTHING, 'mcp');
    const junk = ['junk/method-one', 'junk/method-two', 'x'.repeat(2000)];
    for (const method of junk) {
      // The server answers "method not found"; the reply still closes a timed request.
      await expect(client.request({ method }, EmptyResultSchema)).rejects.toBeInstanceOf(McpError);
    }
    await client.ping();
    const text = await (await fetch(`${gw.base}/metrics`, { headers: gw.adminHeaders() })).text();
    expect(value(text, 'warden_request_seconds_count{method="other"}')).toBe(junk.length);
    expect(value(text, 'warden_request_seconds_count{method="ping"}')).toBe(1);
    expect(text).not.toContain('junk/method');
    expect(text).not.toContain('x'.repeat(100));
    await (transport as StreamableHTTPClientTransport).terminateSession();
    await client.close();
  });

  it('counts refusals by limit', async () => {
    gw = await startGateway(undefined, { maxSessionsPerClient: 1 });
    const first = await connectClient(gw, EVERYTHING, 'sse');
    const refused = await fetch(gw.url(EVERYTHING, 'sse'), { headers: gw.headers() });
    expect(refused.status).toBe(429);
    const text = await (await fetch(`${gw.base}/metrics`, { headers: gw.adminHeaders() })).text();
    expect(value(text, 'warden_rate_limited_total{limit="maxSessionsPerClient"}')).toBe(1);
    await first.client.close();
  });

  it('with a metrics port, serves /metrics there without auth and not on the main port', async () => {
    const metricsPort = await freePort();
    gw = await startGateway(undefined, { metricsPort });
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toContain('warden_spawns_total');
    // On the main port /metrics is an admin route that is not there.
    expect((await fetch(`${gw.base}/metrics`, { headers: gw.headers() })).status).toBe(403);
    expect((await fetch(`${gw.base}/metrics`, { headers: gw.adminHeaders() })).status).toBe(404);
    const other = await fetch(`http://127.0.0.1:${metricsPort}/status`);
    expect(other.status).toBe(404);
  });
});

describe('the admin credential', () => {
  it('opens /metrics; a client credential gets 403 naming the setting; the admin token opens no MCP endpoint', async () => {
    gw = await startGateway();
    const client = await fetch(`${gw.base}/metrics`, { headers: gw.headers() });
    expect(client.status).toBe(403);
    const body = (await client.json()) as { error: { message: string; data: { code: string } } };
    expect(body.error.data.code).toBe('forbidden');
    expect(body.error.message).toContain('WARDEN_ADMIN_TOKEN');
    expect((await fetch(`${gw.base}/metrics`, { headers: gw.adminHeaders() })).status).toBe(200);
    const mcp = await fetch(gw.url(EVERYTHING, 'mcp'), {
      method: 'POST',
      headers: { ...gw.adminHeaders(), ...MCP_ACCEPT },
      body: JSON.stringify(initializeBody()),
    });
    expect(mcp.status).toBe(401);
    await mcp.arrayBuffer();
  });

  it('can be a clients-file entry marked "admin": true, which in turn opens no MCP endpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-admin-'));
    const clientsFile = join(dir, 'clients.json');
    writeFileSync(clientsFile, JSON.stringify({ clients: [{ id: 'ops', admin: true, token: 'ops-admin-token-0123456789' }] }));
    gw = await startGateway(undefined, { clientsFile, adminToken: undefined });
    const ops = { Authorization: 'Bearer ops-admin-token-0123456789' };
    expect((await fetch(`${gw.base}/metrics`, { headers: ops })).status).toBe(200);
    expect((await fetch(`${gw.base}/metrics`, { headers: gw.adminHeaders() })).status).toBe(401);
    const mcp = await fetch(gw.url(EVERYTHING, 'mcp'), { method: 'POST', headers: { ...ops, ...MCP_ACCEPT }, body: JSON.stringify(initializeBody()) });
    expect(mcp.status).toBe(401);
    await mcp.arrayBuffer();
  });

  it('without any admin credential configured, /metrics is 403 for everyone and /status a summary', async () => {
    gw = await startGateway(undefined, { adminToken: undefined });
    expect((await fetch(`${gw.base}/metrics`, { headers: gw.headers() })).status).toBe(403);
    const status = (await (await fetch(`${gw.base}/status`, { headers: gw.headers() })).json()) as Record<string, unknown>;
    expect(Object.keys(status).sort()).toEqual(['details', 'status']);
  });
});
