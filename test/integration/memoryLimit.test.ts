/**
 * A child tree over its memory limit (`maxMemoryMb` of its entry, else
 * `--max-child-memory-mb`) is stopped: the calls its session has in flight get a JSON-RPC
 * error (`memory_exceeded`) naming the limit and the setting, the session ends, and a
 * neighbour session is untouched. The fixture's `grow` tool allocates 20 MB per 100 ms.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { ERROR_TABLE } from '../../src/errors.js';
import { connectClient, fixtureEntry, startGateway, type Kind, type TestGateway } from '../helpers/gateway.js';
import { isAlive, waitFor, waitForNoDescendants } from '../helpers/procs.js';

const gateways: TestGateway[] = [];
const clients: Client[] = [];

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
  await waitForNoDescendants(process.pid, { timeoutMs: 15_000 });
});

async function open(gw: TestGateway, key: string, kind: Kind): Promise<{ client: Client; pid: number; sessionId: string }> {
  const { client } = await connectClient(gw, key, kind);
  clients.push(client);
  const pid = Number(((await client.callTool({ name: 'whoami', arguments: {} })).content as { text: string }[])[0]!.text);
  const session = gw.gateway.sessions.all().find((s) => s.bridge.child.pid === pid)!;
  return { client, pid, sessionId: session.id };
}

async function growUntilStopped(client: Client): Promise<McpError> {
  try {
    await client.callTool({ name: 'grow', arguments: {} }, undefined, { timeout: 30_000 });
  } catch (error) {
    return error as McpError;
  }
  throw new Error('grow answered');
}

describe.each<Kind>(['mcp', 'sse'])('a child over its memory limit (%s)', (kind) => {
  it('is stopped; its call gets memory_exceeded naming maxMemoryMb; a neighbour is untouched', async () => {
    const gw = await startGateway({ heavy: fixtureEntry('heavy-server.mjs', { maxMemoryMb: 120 }) }, { memorySampleMs: 50 });
    gateways.push(gw);
    const greedy = await open(gw, 'heavy', kind);
    const neighbour = await open(gw, 'heavy', kind);

    const error = await growUntilStopped(greedy.client);
    expect(error.code).toBe(ERROR_TABLE.memory_exceeded.rpc);
    expect(error.message).toContain('over its limit of 120 MB (maxMemoryMb of this whitelist entry)');
    expect(error.data).toMatchObject({ code: 'memory_exceeded', limitMb: 120, setting: 'maxMemoryMb of this whitelist entry' });
    await waitFor(() => !isAlive(greedy.pid), { message: 'the greedy child gone' });
    await waitFor(() => !gw.gateway.sessions.all().some((s) => s.id === greedy.sessionId), { message: 'its session ended' });

    expect(isAlive(neighbour.pid)).toBe(true);
    expect((await neighbour.client.callTool({ name: 'echo', arguments: { message: 'still here' } })).content).toEqual([{ type: 'text', text: 'still here' }]);
  });
});

describe('--max-child-memory-mb', () => {
  it('applies to an entry without maxMemoryMb, and names itself', async () => {
    const gw = await startGateway({ heavy: fixtureEntry('heavy-server.mjs') }, { memorySampleMs: 50, maxChildMemoryMb: 100 });
    gateways.push(gw);
    const greedy = await open(gw, 'heavy', 'mcp');
    const error = await growUntilStopped(greedy.client);
    expect(error.data).toMatchObject({ code: 'memory_exceeded', limitMb: 100, setting: '--max-child-memory-mb' });
    await waitFor(() => !isAlive(greedy.pid), { message: 'the greedy child gone' });
  });
});
