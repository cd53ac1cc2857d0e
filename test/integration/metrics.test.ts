/**
 * GET /metrics: Prometheus text behind auth, or on its own port without auth.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createServer } from 'node:net';
import { connectClient, EVERYTHING, startGateway, type TestGateway } from '../helpers/gateway.js';
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
    const res = await fetch(`${gw.base}/metrics`, { headers: gw.headers() });
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
    const text = await (await fetch(`${gw.base}/metrics`, { headers: gw.headers() })).text();
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
    const text = await (await fetch(`${gw.base}/metrics`, { headers: gw.headers() })).text();
    expect(value(text, 'warden_rate_limited_total{limit="maxSessionsPerClient"}')).toBe(1);
    await first.client.close();
  });

  it('with a metrics port, serves /metrics there without auth and not on the main port', async () => {
    const metricsPort = await freePort();
    gw = await startGateway(undefined, { metricsPort });
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toContain('warden_spawns_total');
    const main = await fetch(`${gw.base}/metrics`, { headers: gw.headers() });
    expect(main.status).toBe(404);
    const other = await fetch(`http://127.0.0.1:${metricsPort}/status`);
    expect(other.status).toBe(404);
  });
});
