/**
 * What the memory sampling shows: the budget and where it came from in the start log and in
 * /status (admin details), per command the mean and high-water mark of one child tree, what
 * a new child is planned at and how many sessions sleep; the same as gauges on /metrics,
 * labelled by command only.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { connectClient, fixtureEntry, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

let gw: TestGateway;
let client: Client;

beforeAll(async () => {
  gw = await startGateway(
    { heavy: fixtureEntry('heavy-server.mjs', { maxMemoryMb: 400, idle: 'hibernate', hibernateAfterMs: 100 }, ['20']) },
    { memorySampleMs: 50, memoryBudgetMb: 2048 },
  );
  ({ client } = await connectClient(gw, 'heavy', 'mcp'));
  await client.callTool({ name: 'echo', arguments: { message: 'x' } });
});

afterAll(async () => {
  await client.close();
  await gw.close();
  await waitForNoDescendants(process.pid);
});

describe('memory figures', () => {
  it('the start log names the budget and where it came from', () => {
    const line = gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'memory budget');
    expect(line).toMatchObject({ budgetMb: 2048, source: '--memory-budget-mb', reserveMb: 160, sampleMs: 50 });
  });

  it('/status shows the budget, and per command what a child tree costs', async () => {
    type Status = { memory: Record<string, unknown>; commands: { heavy: { hibernated: number; memory: Record<string, number> } } };
    const status = async () => (await (await fetch(`${gw.base}/status`, { headers: gw.adminHeaders() })).json()) as Status;
    // The session goes to sleep after 100 ms: a tree was sampled by then. Its child counts
    // as live until the kill of its tree completes, so wait for both.
    await waitFor(
      async () => {
        const heavy = (await status()).commands.heavy;
        return heavy.hibernated === 1 && heavy.memory.trees === 0;
      },
      { message: 'the session asleep and its child gone' },
    );
    const { memory, commands } = await status();
    expect(memory).toMatchObject({ budgetMb: 2048, source: '--memory-budget-mb', reserveMb: 160 });
    expect(memory.availableMb).toBeLessThan(2048 - 160);
    const heavy = commands.heavy.memory;
    expect(heavy.highWaterMb).toBeGreaterThan(20);
    expect(heavy.meanMb).toBeGreaterThan(0);
    expect(heavy.meanMb).toBeLessThanOrEqual(heavy.highWaterMb!);
    expect(heavy.expectedMb).toBe(heavy.highWaterMb);
    expect(heavy).toMatchObject({ trees: 0, liveMb: 0, limitMb: 400 });
  });

  it('/metrics has the same figures, labelled by command', async () => {
    const text = await (await fetch(`${gw.base}/metrics`, { headers: gw.adminHeaders() })).text();
    expect(text).toMatch(/^warden_memory_budget_bytes 2147483648$/m);
    expect(text).toMatch(/^warden_child_memory_high_water_bytes\{command="heavy"\} [1-9]\d+$/m);
    expect(text).toMatch(/^warden_child_memory_mean_bytes\{command="heavy"\} [1-9]/m);
    expect(text).toMatch(/^warden_hibernated_sessions\{command="heavy"\} 1$/m);
    expect(text).toMatch(/^warden_hibernations_total\{command="heavy"\} 1$/m);
    expect(text).toMatch(/^warden_gateway_memory_bytes [1-9]/m);
  });
});
