/**
 * Helpers that a server starts in a process group of its own (`spawn(..., {detached: true})`,
 * as browser-automation servers start Chrome) must not outlive its session: ending the
 * session, closing the gateway and a server that crashes after its helpers were seen all
 * leave none of them running. Polls with deadlines; never sleeps.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { performance } from 'node:perf_hooks';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { ChildTransport } from '../../src/process/childTransport.js';
import { connectClient, fixtureEntry, startGateway, type Kind, type TestGateway } from '../helpers/gateway.js';
import { isAlive, waitFor, waitForNoDescendants } from '../helpers/procs.js';

const EXITS_ON_EOF = 'detached-server';
const IGNORES_EOF = 'detached-server --ignore-eof';
const COMMANDS = {
  [EXITS_ON_EOF]: fixtureEntry('detached-server.mjs'),
  [IGNORES_EOF]: fixtureEntry('detached-server.mjs', {}, ['--ignore-eof']),
};
const STOP = { stopEofMs: 200, stopTermMs: 300, stopKillMs: 1000 };
/** Slack on top of the stop stages: process exits, reaping, polling on a loaded machine. */
const STOP_MARGIN_MS = 1500;
const KINDS = ['plain', 'stubborn', 'parent'] as const;

/** Every helper pid a test started: whatever the gateway left behind, the suite kills. */
const started = new Set<number>();
const gateways: TestGateway[] = [];

afterEach(async () => {
  await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
  for (const pid of started) {
    try {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    } catch {
      // exited in the meantime
    }
  }
  started.clear();
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

async function gateway(): Promise<TestGateway> {
  const gw = await startGateway(COMMANDS, STOP);
  gateways.push(gw);
  return gw;
}

interface Conn {
  readonly client: Client;
  readonly transport: SSEClientTransport | StreamableHTTPClientTransport;
  readonly sessionId: string;
  /** The session's dedicated child. */
  readonly child: ChildTransport;
}

/** Connects an SDK client and finds the one session it opened (callers connect one at a time). */
async function open(gw: TestGateway, key: string, kind: Kind): Promise<Conn> {
  const before = new Set(gw.gateway.sessions.all().map((s) => s.id));
  const { client, transport } = await connectClient(gw, key, kind);
  const added = gw.gateway.sessions.all().filter((s) => !before.has(s.id));
  expect(added).toHaveLength(1);
  const child = added[0]!.bridge.child;
  if (!(child instanceof ChildTransport)) throw new Error('expected a dedicated child');
  return { client, transport, sessionId: added[0]!.id, child };
}

/** Ends the session from the client: DELETE on Streamable HTTP, closing the stream on SSE. */
async function end(conn: Conn): Promise<void> {
  if (conn.transport instanceof StreamableHTTPClientTransport) await conn.transport.terminateSession();
  await conn.client.close();
}

/** Asks the server to start one helper of each kind; returns every pid it started. */
async function spawnHelpers(conn: Conn): Promise<number[]> {
  const pids: number[] = [];
  for (const kind of KINDS) {
    const result = (await conn.client.callTool({ name: 'spawn_helper', arguments: { kind } })) as {
      content: { type: string; text: string }[];
    };
    const reply = JSON.parse(result.content[0]!.text) as { server: number; pids: number[] };
    expect(reply.server).toBe(conn.child.pid);
    for (const pid of reply.pids) started.add(pid);
    pids.push(...reply.pids);
  }
  expect(pids).toHaveLength(4);
  expect(pids.filter(isAlive)).toEqual(pids);
  return pids;
}

const alive = (pids: readonly number[]): number[] => pids.filter(isAlive);

describe.each<Kind>(['mcp', 'sse'])('ending a session over %s', (kind) => {
  it.each([
    ['exits on stdin EOF', EXITS_ON_EOF],
    ['ignores stdin EOF, dies on SIGTERM', IGNORES_EOF],
  ])('stops the detached helpers of a server that %s, within the stop stages', async (_, key) => {
    const gw = await gateway();
    const conn = await open(gw, key, kind);
    const helpers = await spawnHelpers(conn);

    const ending = performance.now();
    await end(conn);
    await waitFor(() => alive(helpers).length === 0 && !isAlive(conn.child.pid), {
      timeoutMs: STOP.stopEofMs + STOP.stopTermMs + STOP.stopKillMs + STOP_MARGIN_MS,
      message: `helpers ${helpers.join(', ')} gone; still alive: ${alive(helpers).join(', ')}`,
    });
    // The stubborn helper ignores SIGTERM: it took the SIGKILL stage, and no longer than that.
    expect(performance.now() - ending).toBeLessThan(STOP.stopEofMs + STOP.stopTermMs + STOP_MARGIN_MS);
    await waitFor(() => gw.gateway.sessions.size === 0, { message: 'session removed' });
  });
});

describe('gateway close()', () => {
  it('resolves only once every session tree is gone, detached helpers included', async () => {
    const gw = await gateway();
    const conns = [await open(gw, EXITS_ON_EOF, 'sse'), await open(gw, IGNORES_EOF, 'mcp')];
    const helpers = (await Promise.all(conns.map(spawnHelpers))).flat();

    await gw.close();
    expect(alive(helpers)).toEqual([]);
    expect(conns.map((c) => isAlive(c.child.pid))).toEqual([false, false]);
    await expect(gw.close()).resolves.toBeUndefined();
    await expect(Promise.all(conns.map((c) => c.child.close()))).resolves.toEqual([undefined, undefined]);
    await Promise.allSettled(conns.map((c) => c.client.close()));
  });
});

describe('a server that exits on its own', () => {
  // Covered: helpers the gateway listed before the exit (output from the child schedules a
  // listing within treeSampleMs), and anything left in the child's own group. Not covered:
  // a helper started and orphaned between two listings (nothing links it to the child then).
  it('takes the detached helpers it was seen to start with it', async () => {
    const gw = await gateway();
    const conn = await open(gw, EXITS_ON_EOF, 'mcp');
    const helpers = await spawnHelpers(conn);
    await waitFor(() => helpers.every((pid) => conn.child.knownDescendants.includes(pid)), {
      timeoutMs: 5_000,
      message: 'the helpers listed below the child',
    });

    await expect(conn.client.callTool({ name: 'crash' })).rejects.toThrow(/MCP server exited: code 3/);
    await waitFor(() => alive(helpers).length === 0, {
      timeoutMs: STOP.stopTermMs + STOP.stopKillMs + STOP_MARGIN_MS,
      message: `helpers ${helpers.join(', ')} gone; still alive: ${alive(helpers).join(', ')}`,
    });
    await waitFor(() => gw.gateway.sessions.size === 0, { message: 'session removed' });
    await conn.client.close();
  });
});
