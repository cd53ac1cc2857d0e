/**
 * Admission by memory, over real HTTP, with a fixture of known footprint (heavy-server
 * allocates 100 MB at start: ~145 MB resident) under a 500 MB budget with no reserve (the
 * gateway runs inside jest here, so its own memory is passed as 0): three children fit, a
 * fourth does not. Opening past the budget gives back warm spares first, then closes the
 * longest-idle sessions (never one with a call in flight), and refuses cleanly (503
 * limit_reached naming the budget, Retry-After) when nothing is idle. What the children use,
 * read from /proc here, never goes past the budget.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ERROR_TABLE } from '../../src/errors.js';
import { connectClient, fixtureEntry, initializeBody, MCP_ACCEPT, startGateway, type TestGateway } from '../helpers/gateway.js';
import { descendantsOf, isAlive, waitFor, waitForNoDescendants } from '../helpers/procs.js';

const HEAVY = 'heavy';
const BUDGET_MB = 500;
const MiB = 1024 * 1024;

const gateways: TestGateway[] = [];
const clients: Client[] = [];

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
  await waitForNoDescendants(process.pid, { timeoutMs: 15_000 });
});

async function start(pool: number, entry: Record<string, unknown> = {}): Promise<TestGateway> {
  const gw = await startGateway(
    { [HEAVY]: fixtureEntry('heavy-server.mjs', { pool: { min: pool }, ...entry }, ['100']) },
    { memoryBudgetMb: BUDGET_MB, memoryReserveMb: 0, memorySampleMs: 50, maxSessionsPerClient: 100, idleTimeoutMs: 0 },
    { gatewayRss: () => 0 },
  );
  gateways.push(gw);
  return gw;
}

/** Resident memory of everything below this process (the gateway's children), from /proc. */
function childrenRss(): number {
  let total = 0;
  for (const pid of descendantsOf(process.pid)) {
    try {
      total += Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** A session whose whoami answered, with its child's pid. */
async function open(gw: TestGateway, headers: Record<string, string> = {}): Promise<{ client: Client; pid: number; sessionId: string }> {
  const { client, transport } = await connectClient(gw, HEAVY, 'mcp', headers);
  clients.push(client);
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  const pid = Number((result.content as { text: string }[])[0]!.text);
  return { client, pid, sessionId: (transport as { sessionId?: string }).sessionId! };
}

/** Starts a call that never answers: the session has a call in flight from then on. */
async function holdCall(gw: TestGateway, client: Client, sessionId: string): Promise<void> {
  void client.callTool({ name: 'hold', arguments: {} }, undefined, { timeout: 60_000 }).catch(() => undefined);
  await waitFor(() => gw.gateway.sessions.all().find((s) => s.id === sessionId)!.bridge.inFlight === 1, { message: 'the held call at the child' });
}

const liveSessions = (gw: TestGateway) => new Set(gw.gateway.sessions.all().map((s) => s.id));

describe('a memory budget', () => {
  it('closes the longest-idle session for a new one, never one with a call in flight, then refuses with 503 naming the budget', async () => {
    const gw = await start(0);
    const a = await open(gw);
    const b = await open(gw);
    const c = await open(gw);
    // What a child costs is known by now (the most one tree used: the high-water mark).
    await waitFor(() => gw.gateway.capacity.sampler.highWater(HEAVY) > 100 * MiB, { message: 'a sample of a heavy child' });
    await holdCall(gw, b.client, b.sessionId);
    await holdCall(gw, c.client, c.sessionId);

    const d = await open(gw);
    // a was idle longest; b and c have calls in flight and stay.
    await waitFor(() => !isAlive(a.pid), { message: "the idle session's child stopped" });
    expect(liveSessions(gw)).toEqual(new Set([b.sessionId, c.sessionId, d.sessionId]));
    expect([isAlive(b.pid), isAlive(c.pid), isAlive(d.pid)]).toEqual([true, true, true]);
    expect(childrenRss()).toBeLessThanOrEqual(BUDGET_MB * MiB);

    await holdCall(gw, d.client, d.sessionId);
    const before = descendantsOf(process.pid).length;
    const refused = await fetch(gw.url(HEAVY, 'mcp'), { method: 'POST', headers: gw.headers(MCP_ACCEPT), body: JSON.stringify(initializeBody()) });
    expect(refused.status).toBe(503);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = (await refused.json()) as { error: { message: string; data: Record<string, unknown> } };
    expect(body.error.data).toMatchObject({ code: 'limit_reached', limit: 'memoryBudget', max: BUDGET_MB });
    expect(body.error.message).toContain('--memory-budget-mb');
    expect(descendantsOf(process.pid).length).toBe(before); // nothing was started for it
    expect(liveSessions(gw)).toEqual(new Set([b.sessionId, c.sessionId, d.sessionId]));
    expect(childrenRss()).toBeLessThanOrEqual(BUDGET_MB * MiB);
  });

  it('gives back a warm spare before any session', async () => {
    const gw = await start(1);
    const a = await open(gw); // takes the spare; a new one is started
    await waitFor(() => gw.gateway.processes.status(gw.gateway.registry.get(HEAVY)!).warm === 1, { message: 'a new warm spare' });
    const b = await open(gw);
    await waitFor(() => gw.gateway.processes.status(gw.gateway.registry.get(HEAVY)!).warm === 1, { message: 'another warm spare' });
    await waitFor(() => gw.gateway.capacity.sampler.command(HEAVY).samples >= 6, { message: 'samples of the heavy children' });
    const spare = descendantsOf(process.pid).find((pid) => pid !== a.pid && pid !== b.pid)!;

    // With ENV_* headers the session needs a fresh child: the spare (3 x ~145 MB in use) makes way.
    const c = await open(gw, { ENV_FLAVOUR: 'plain' });
    expect(isAlive(spare)).toBe(false);
    expect(liveSessions(gw)).toEqual(new Set([a.sessionId, b.sessionId, c.sessionId]));
    // No room for a spare now: none is started.
    expect(gw.gateway.processes.status(gw.gateway.registry.get(HEAVY)!).warm).toBe(0);
    expect(childrenRss()).toBeLessThanOrEqual(BUDGET_MB * MiB);
  });

  it('puts an idle session of a hibernating entry to sleep instead of closing it; a sleeping session costs nothing', async () => {
    const gw = await start(0, { idle: 'hibernate', hibernateAfterMs: 600_000 });
    const a = await open(gw);
    const b = await open(gw);
    const c = await open(gw);
    await waitFor(() => gw.gateway.capacity.sampler.highWater(HEAVY) > 100 * MiB, { message: 'a sample of a heavy child' });
    const d = await open(gw);
    // a made way: its child is gone, the session stays.
    await waitFor(() => !isAlive(a.pid), { message: 'a asleep' });
    expect(liveSessions(gw)).toEqual(new Set([a.sessionId, b.sessionId, c.sessionId, d.sessionId]));
    // a wakes: the least recently used of the others (b) goes to sleep for it.
    expect(Number(((await a.client.callTool({ name: 'whoami', arguments: {} })).content as { text: string }[])[0]!.text)).not.toBe(a.pid);
    await waitFor(() => !isAlive(b.pid), { message: 'b asleep' });
    expect([isAlive(c.pid), isAlive(d.pid)]).toEqual([true, true]);
    expect(liveSessions(gw).size).toBe(4);
    expect(childrenRss()).toBeLessThanOrEqual(BUDGET_MB * MiB);
  });

  it('answers a call that cannot wake its session for lack of memory with limit_reached; the session sleeps on and wakes later', async () => {
    const gw = await start(0, { idle: 'hibernate', hibernateAfterMs: 600_000 });
    const a = await open(gw);
    const b = await open(gw);
    const c = await open(gw);
    await waitFor(() => gw.gateway.capacity.sampler.highWater(HEAVY) > 100 * MiB, { message: 'a sample of a heavy child' });
    const d = await open(gw);
    await waitFor(() => !isAlive(a.pid), { message: 'a asleep' });
    for (const busy of [b, c, d]) await holdCall(gw, busy.client, busy.sessionId);

    const refused = await a.client.callTool({ name: 'whoami', arguments: {} }).then(
      () => undefined,
      (error: unknown) => error as { code: number; message: string },
    );
    expect(refused?.code).toBe(ERROR_TABLE.limit_reached.rpc);
    expect(refused?.message).toContain('memoryBudget');
    expect(liveSessions(gw)).toEqual(new Set([a.sessionId, b.sessionId, c.sessionId, d.sessionId]));

    await gw.gateway.sessions
      .all()
      .find((s) => s.id === d.sessionId)!
      .close('test: make room');
    const woken = Number(((await a.client.callTool({ name: 'whoami', arguments: {} })).content as { text: string }[])[0]!.text);
    expect(isAlive(woken)).toBe(true);
    expect(childrenRss()).toBeLessThanOrEqual(BUDGET_MB * MiB);
  });
});
