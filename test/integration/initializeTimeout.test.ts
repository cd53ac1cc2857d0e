/**
 * A child that never answers `initialize`: the client gets a JSON-RPC error naming the
 * setting once --initialize-timeout-ms passed, and the child is stopped at once (it does
 * not linger until the idle timeout because the client never learned a session id).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { fixtureEntry, sseConnectOnce, startGateway, type Kind, type TestGateway } from '../helpers/gateway.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const DEAF = 'deaf';
let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ [DEAF]: fixtureEntry('deaf-server.mjs') }, { initializeTimeoutMs: 400 });
});

afterAll(async () => {
  await gw.close();
  await waitForNoDescendants(process.pid);
});

describe.each<Kind>(['sse', 'mcp'])('over %s', (kind) => {
  it('answers the initialize with an error naming the setting and stops the child', async () => {
    const requestInit = { headers: gw.headers() };
    const transport =
      kind === 'sse' ? sseConnectOnce(gw.url(DEAF, 'sse'), requestInit) : new StreamableHTTPClientTransport(gw.url(DEAF, 'mcp'), { requestInit });
    const client = new Client({ name: 'timeout-test', version: '1' });
    const error = await client.connect(transport, { timeout: 20_000 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    await client.close().catch(() => undefined);
    expect(error).toBeInstanceOf(Error);
    expect(error!.message).toContain('did not answer initialize');
    expect(error!.message).toContain('--initialize-timeout-ms');
    await waitFor(() => gw.gateway.sessions.size === 0, { message: 'the session closed' });
    await waitForNoDescendants(process.pid, { message: 'the deaf child stopped' });
    expect(gw.logs.some((l) => l.includes('"why":"initialize timeout"'))).toBe(true);
  });
});
