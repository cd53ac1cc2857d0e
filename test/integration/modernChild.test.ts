/**
 * A 2026-07-28 stdio server behind the gateway (test/fixtures/modern-server.mjs, on the v2
 * server SDK): the era probe finds it modern, and 2026-07-28 clients get their requests
 * passed through (ids and progress tokens rewritten), listens and the server's own multi
 * round-trip requests included. A 2025 client still works where the server also serves 2025;
 * where it serves only 2026-07-28, the client is told so and its session ends.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport, LOG_LEVEL_META_KEY } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1StreamableTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { connectClient, fixtureEntry, sseConnectOnce, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const MODERN = 'modern';
const MODERN_ONLY = 'modern-only';
let gw: TestGateway;
const clients: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  gw = await startGateway(
    { [MODERN]: fixtureEntry('modern-server.mjs'), [MODERN_ONLY]: fixtureEntry('modern-server.mjs', {}, ['--modern-only']) },
    { poolMin: 1 },
  );
  await waitFor(
    () =>
      gw.gateway.processes.eras.era(gw.gateway.registry.get(MODERN)!) === 'modern' &&
      gw.gateway.processes.eras.era(gw.gateway.registry.get(MODERN_ONLY)!) === 'modern',
    { message: 'both entries probed modern', timeoutMs: 20_000 },
  );
});
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await gw.close();
  await waitForNoDescendants(process.pid);
});

async function modernClient(key: string, capabilities: Record<string, unknown> = {}): Promise<V2Client> {
  const client = new V2Client({ name: 'modern-child-test', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } }, capabilities });
  await client.connect(new V2Transport(gw.url(key, 'mcp'), { requestInit: { headers: gw.headers() } }));
  clients.push(client);
  return client;
}

describe.each([MODERN, MODERN_ONLY])('a 2026-07-28 client, %s child', (key) => {
  it('discovers the server, lists and calls its tools', async () => {
    const client = await modernClient(key);
    const discover = await client.discover();
    expect(discover.capabilities.tools).toEqual({ listChanged: true });
    expect(discover.instructions).toContain('A fixture of mcp-warden');
    expect(client.getServerVersion()).toMatchObject({ name: 'modern-server' });
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'slow', 'confirm']));
    expect((await client.callTool({ name: 'echo', arguments: { text: 'through' } })).content).toEqual([{ type: 'text', text: 'through' }]);
  });

  it('gets progress and its log lines on the request, and can cancel', async () => {
    const client = await modernClient(key);
    const progress: number[] = [];
    const logs: unknown[] = [];
    client.setNotificationHandler('notifications/message', (n) => void logs.push(n.params.data));
    await client.callTool(
      { name: 'slow', arguments: { steps: 3 }, _meta: { [LOG_LEVEL_META_KEY]: 'info' } },
      { onprogress: (p) => void progress.push(p.progress) },
    );
    expect(progress).toEqual([1, 2, 3]);
    expect(logs).toEqual(['step 1', 'step 2', 'step 3']);
    const abort = new AbortController();
    const call = client.callTool({ name: 'slow', arguments: { steps: 200 } }, { signal: abort.signal, onprogress: () => abort.abort('stop') });
    await expect(call).rejects.toThrow();
    await waitFor(() => gw.logs.some((l) => l.includes('modern-server slow cancelled at step')), { message: 'the cancel at the child' });
  });

  it('passes the server’s own multi round-trip requests through', async () => {
    const client = await modernClient(key, { elicitation: { form: {} } });
    client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { ok: true } }));
    expect((await client.callTool({ name: 'confirm', arguments: { what: 'deploy' } })).content).toEqual([{ type: 'text', text: 'ok=true' }]);
  });

  it('passes listens through: list changes arrive tagged for the client', async () => {
    const client = await modernClient(key);
    let changed = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => void (changed += 1));
    const sub = await client.listen({ toolsListChanged: true });
    expect(sub.honoredFilter).toMatchObject({ toolsListChanged: true });
    await client.callTool({ name: 'change_tools', arguments: {} });
    await waitFor(() => changed > 0, { message: 'a list change on the listen' });
    await sub.close();
  });
});

describe('a 2025 client', () => {
  it('works with a server that serves both eras', async () => {
    const { client, transport } = await connectClient(gw, MODERN, 'mcp');
    clients.push({
      close: async () => {
        await (transport as V1StreamableTransport).terminateSession();
        await client.close();
      },
    });
    expect((await client.callTool({ name: 'echo', arguments: { text: 'legacy' } })).content).toEqual([{ type: 'text', text: 'legacy' }]);
  });

  it.each(['mcp', 'sse'] as const)(
    'over %s, is told that a server speaking only 2026-07-28 needs a 2026-07-28 client; the session and its child end',
    async (kind) => {
      const spec = gw.gateway.registry.get(MODERN_ONLY)!;
      // Sessions and children of this entry now: the 2026-07-28 conversation of the tests above.
      const held = () => [gw.gateway.sessions.countByCommand(MODERN_ONLY), gw.gateway.processes.status(spec).live].join();
      const before = held();
      const requestInit = { headers: gw.headers() };
      const transport =
        kind === 'sse' ? sseConnectOnce(gw.url(MODERN_ONLY, 'sse'), requestInit) : new V1StreamableTransport(gw.url(MODERN_ONLY, 'mcp'), { requestInit });
      const client = new V1Client({ name: 'legacy-client', version: '1' });
      clients.push(client);
      const refused = await client.connect(transport).then(
        () => undefined,
        (error: unknown) => error as Error,
      );
      expect(refused?.message).toMatch(/-32022/);
      expect(refused?.message).toMatch(/speaks only protocol revision 2026-07-28/);
      expect(refused?.message).toMatch(/v2 SDK client/);
      // The refused session is gone, and with it the child it had.
      await waitFor(() => held() === before, { message: 'the refused session and its child ended' });
    },
  );
});
