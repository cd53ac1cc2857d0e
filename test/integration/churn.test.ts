/**
 * Churn: ~300 sessions opened and ended every way a client can end them, 8 at a time,
 * against a fast-starting server with a warm pool. Afterwards nothing may be left but the
 * pool's two spares: no session, no extra child, no zombie. Then close() leaves nothing.
 * Waits on events or polls with deadlines; never sleeps for readiness.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { fixtureEntry, initializeBody, MCP_ACCEPT, startGateway, type TestGateway } from '../helpers/gateway.js';
import { descendantsOf, describeDescendants, isAlive, waitFor, waitForNoDescendants, zombiesUnder } from '../helpers/procs.js';

const ENV = 'env-server';
const TOTAL = 300;
const PARALLEL = 8;
const POOL_MIN = 2;
/**
 * Sessions a client abandons (no DELETE) are reaped after this. Short, but not 1 s: the
 * clients, the gateway and the reaper share this process's event loop, and on a busy
 * 2-core machine its delay reaches several hundred ms, which made a 1 s timeout reap
 * sessions between two messages of a live client.
 */
const IDLE_TIMEOUT_MS = 6_000;

const SCENARIOS = [
  'sse: connect, echo, close',
  'streamable: connect, echo, DELETE',
  'streamable: connect, close without DELETE (reaped when idle)',
  'sse: connect aborted',
  'streamable: initialize aborted',
  'mid-call disconnect',
] as const;
type Scenario = (typeof SCENARIOS)[number];

let gw: TestGateway | undefined;
afterAll(async () => {
  await gw?.close();
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

/** Fires the callback once the gateway has begun handling the request tagged `marker`. */
class RequestWatch {
  private readonly waiting = new Map<string, () => void>();
  constructor(gateway: TestGateway) {
    gateway.gateway.server.on('request', (req: IncomingMessage) => {
      const marker = new URL(req.url ?? '/', 'http://x').searchParams.get('churn');
      if (marker === null) return;
      const callback = this.waiting.get(marker);
      this.waiting.delete(marker);
      callback?.();
    });
  }
  on(marker: string, callback: () => void): void {
    this.waiting.set(marker, callback);
  }
  forget(marker: string): void {
    this.waiting.delete(marker);
  }
}

function textOf(result: unknown): string {
  const first = (result as { content?: { type: string; text?: string }[] }).content?.[0];
  if (first?.type !== 'text' || typeof first.text !== 'string') throw new Error(`not a text result: ${JSON.stringify(result)}`);
  return first.text;
}

describe('session churn', () => {
  it(`${TOTAL} sessions, ${PARALLEL} at a time, every way of ending one: only the ${POOL_MIN} warm spares remain`, async () => {
    gw = await startGateway(
      { [ENV]: fixtureEntry('env-server.mjs') },
      { poolMin: POOL_MIN, spawnConcurrency: 4, maxSessionsPerClient: 1000, maxChildren: 400, idleTimeoutMs: IDLE_TIMEOUT_MS },
    );
    const g = gw;
    const watch = new RequestWatch(g);
    const statusOf = async () => {
      const res = await fetch(`${g.base}/status`, { headers: g.adminHeaders() });
      return ((await res.json()) as { commands: Record<string, { warm: number; live: number; spawns: number; crashes: number; failures: number }> }).commands[
        ENV
      ]!;
    };
    await waitFor(async () => (await statusOf()).warm === POOL_MIN, { message: 'the pool warmed up' });

    const sseClient = (marker?: string) => {
      const url = g.url(ENV, 'sse');
      if (marker) url.searchParams.set('churn', marker);
      return new SSEClientTransport(url, { requestInit: { headers: g.headers() } });
    };
    const mcpClient = () =>
      new StreamableHTTPClientTransport(g.url(ENV, 'mcp'), {
        requestInit: { headers: g.headers() },
        reconnectionOptions: { maxReconnectionDelay: 1000, initialReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1, maxRetries: 0 },
      });
    /** Every client ever connected, closed at the end whatever happened (close() is idempotent). */
    const clients: Client[] = [];
    const connect = async (transport: SSEClientTransport | StreamableHTTPClientTransport) => {
      const client = new Client({ name: 'churn', version: '1.0.0' });
      clients.push(client);
      await client.connect(transport);
      return client;
    };

    /** Aborts the request once the gateway is handling it (odd n) or right after sending (even n). */
    const abortedRequest = async (n: number, url: URL, init: RequestInit): Promise<string> => {
      const marker = `n${n}`;
      url.searchParams.set('churn', marker);
      const controller = new AbortController();
      if (n % 2 === 1) watch.on(marker, () => controller.abort());
      else setImmediate(() => controller.abort());
      try {
        const res = await fetch(url, { ...init, signal: controller.signal });
        // Headers came back before the abort: drop the body now.
        controller.abort();
        await res.body?.cancel().catch(() => undefined);
        return `answered ${res.status}`;
      } catch (error) {
        if ((error as Error).name !== 'AbortError') throw error;
        return 'aborted';
      } finally {
        watch.forget(marker);
      }
    };

    const run = async (n: number, scenario: Scenario): Promise<string> => {
      switch (scenario) {
        case 'sse: connect, echo, close': {
          const client = await connect(sseClient());
          expect(textOf(await client.callTool({ name: 'echo', arguments: { message: `s${n}` } }))).toBe(`s${n}`);
          await client.close();
          return 'ok';
        }
        case 'streamable: connect, echo, DELETE': {
          const transport = mcpClient();
          const client = await connect(transport);
          expect(textOf(await client.callTool({ name: 'echo', arguments: { message: `m${n}` } }))).toBe(`m${n}`);
          await transport.terminateSession();
          await client.close();
          return 'ok';
        }
        case 'streamable: connect, close without DELETE (reaped when idle)': {
          const client = await connect(mcpClient());
          await client.ping();
          await client.close();
          return 'ok';
        }
        case 'sse: connect aborted':
          return abortedRequest(n, g.url(ENV, 'sse'), { headers: g.headers({ Accept: 'text/event-stream' }) });
        case 'streamable: initialize aborted':
          return abortedRequest(n, g.url(ENV, 'mcp'), { method: 'POST', headers: g.headers(MCP_ACCEPT), body: JSON.stringify(initializeBody()) });
        case 'mid-call disconnect': {
          const client = await connect(n % 2 === 0 ? sseClient() : mcpClient());
          const call = client.callTool({ name: 'echo', arguments: { message: `d${n}` } }).then(
            () => 'answered',
            () => 'cut off',
          );
          await client.close();
          return `call ${await call}`;
        }
      }
    };

    const started = performance.now();
    const outcomes = new Map<string, number>();
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      for (let n = next++; n < TOTAL; n = next++) {
        const scenario = SCENARIOS[n % SCENARIOS.length]!;
        try {
          const outcome = `${scenario} -> ${await run(n, scenario)}`;
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        } catch (error) {
          failures.push(`#${n} ${scenario}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    };
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    const churnMs = performance.now() - started;
    lag.disable();
    await Promise.allSettled(clients.map((c) => c.close()));
    const whys = new Map<string, number>();
    for (const e of g.logs.map((l) => JSON.parse(l) as { message: string; why?: string })) {
      if (e.message === 'reaping session' || e.message === 'closing session') whys.set(`${e.message}: ${e.why}`, (whys.get(`${e.message}: ${e.why}`) ?? 0) + 1);
    }
    process.stdout.write(
      `[churn] event loop delay max ${(lag.max / 1e6).toFixed(0)} ms, p99 ${(lag.percentile(99) / 1e6).toFixed(0)} ms\n${[...whys].map(([k, v]) => `  ${v} x ${k}`).join('\n')}\n`,
    );
    expect(failures).toEqual([]);

    // Every session ends: closed, deleted, or reaped when idle.
    await waitFor(() => g.gateway.sessions.size === 0, { timeoutMs: 15_000, message: 'every session ended' });
    const settledMs = performance.now() - started;
    // Exactly the warm spares remain, and nothing else: no leased child, no zombie.
    await waitFor(
      async () => descendantsOf(process.pid).length === POOL_MIN && (await statusOf()).warm === POOL_MIN && g.gateway.processes.total() === POOL_MIN,
      { timeoutMs: 15_000, message: `exactly ${POOL_MIN} descendants, the warm spares` },
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${describeDescendants(process.pid)}`);
    });
    const spares = descendantsOf(process.pid);
    expect(spares.every(isAlive)).toBe(true);
    expect(zombiesUnder(process.pid)).toEqual([]);
    const status = await statusOf();
    expect(status.live).toBe(0);
    expect(g.gateway.processes.liveCount).toBe(0);
    expect(status.crashes).toBe(0);
    expect(status.failures).toBe(0);
    // No request ended in an unexpected error.
    const errors = g.logs.map((l) => JSON.parse(l) as { level: string; message: string }).filter((e) => e.level === 'error');
    expect(errors).toEqual([]);

    await g.close();
    await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
    gw = undefined;
    const summary = [...outcomes].map(([k, v]) => `  ${v} x ${k}`).join('\n');
    process.stdout.write(
      `[churn] ${TOTAL} sessions (${PARALLEL} parallel) in ${(churnMs / 1000).toFixed(1)} s; all ended after ${(settledMs / 1000).toFixed(1)} s; ` +
        `${status.spawns} spawns; spares left: ${spares.join(', ')}\n${summary}\n`,
    );
  }, 120_000);
});
