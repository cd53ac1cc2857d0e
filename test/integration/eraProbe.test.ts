/**
 * The era probe through a real gateway: a warm spare is probed before any session uses it,
 * the probe's answer (even one that comes after the probe gave up) never reaches the
 * session, which works as before; the verdict is cached, so the spare that replaces a
 * leased one is not probed; /status shows each command's era; a server that exits on the
 * probe is replaced at once and serves its session; eraOf() probes a command nobody used yet.
 * Waits on events or polls with deadlines; never sleeps.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ERA_PROBE_ID } from '../../src/process/childTransport.js';
import { EVERYTHING, EVERYTHING_ENTRY, fixtureEntry, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const MODERN = 'modern-server';
const SLOW = 'slow-start-server';
const INIT_FIRST = 'init-first-server';

const gateways: TestGateway[] = [];
const clients: Client[] = [];

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

async function start(commands: Record<string, unknown>, settings: Parameters<typeof startGateway>[1] = {}): Promise<TestGateway> {
  const gw = await startGateway(commands, settings);
  gateways.push(gw);
  return gw;
}

interface CommandStatus {
  era: string;
  warm: number;
  spawns: number;
  restarts: number;
  failures: number;
  circuit: string;
}

async function commandStatus(gw: TestGateway, key: string): Promise<CommandStatus> {
  const res = await fetch(`${gw.base}/status`, { headers: gw.adminHeaders() });
  const body = (await res.json()) as { commands: Record<string, CommandStatus> };
  return body.commands[key]!;
}

/** An SDK client on `key` over Streamable HTTP that records every message it receives, from the first. */
async function connect(gw: TestGateway, key: string): Promise<{ client: Client; seen: JSONRPCMessage[] }> {
  const seen: JSONRPCMessage[] = [];
  const transport = new StreamableHTTPClientTransport(gw.url(key, 'mcp'), { requestInit: { headers: gw.headers() } });
  const startTransport = transport.start.bind(transport);
  transport.start = async () => {
    // Client.connect() has set onmessage by now: record, then hand on.
    const handler = transport.onmessage;
    transport.onmessage = (message) => {
      seen.push(message);
      handler?.(message);
    };
    return startTransport();
  };
  const client = new Client({ name: 'era-test', version: '1.0.0' });
  clients.push(client);
  await client.connect(transport);
  return { client, seen };
}

const echo = async (client: Client, message: string): Promise<unknown> =>
  ((await client.callTool({ name: 'echo', arguments: { message, text: message } })) as { content: { text: string }[] }).content[0]!.text;

const ids = (seen: readonly JSONRPCMessage[]): unknown[] => seen.map((m) => ('id' in m ? m.id : undefined));

/** The era probes the modern fixture read, from its stderr tap as the gateway logged it. */
const probesRead = (gw: TestGateway): number =>
  gw.logs.filter((l) => l.includes('child stderr') && l.includes(`read server/discover id=\\"${ERA_PROBE_ID}\\"`)).length;

describe('the era probe through the gateway', () => {
  it('a warm spare is probed before any session; no probe answer reaches the session, which works', async () => {
    const gw = await start({ [MODERN]: fixtureEntry('modern-server.mjs'), [EVERYTHING]: EVERYTHING_ENTRY }, { poolMin: 1 });
    await waitFor(async () => (await commandStatus(gw, MODERN)).warm === 1 && (await commandStatus(gw, EVERYTHING)).warm === 1, {
      message: 'both spares ready',
    });
    expect((await commandStatus(gw, MODERN)).era).toBe('modern');
    expect((await commandStatus(gw, EVERYTHING)).era).toBe('legacy');

    for (const key of [MODERN, EVERYTHING]) {
      const { client, seen } = await connect(gw, key);
      expect(await echo(client, `via ${key}`)).toContain(`via ${key}`);
      expect(ids(seen)).not.toContain(ERA_PROBE_ID);
      expect(seen.length).toBeGreaterThan(0);
    }
    const [session] = gw.gateway.sessions.all().filter((s) => s.commandKey === MODERN);
    expect((session?.bridge.child as { era?: string; pooled?: boolean }).era).toBe('modern');
  });

  it('an answer that comes after the probe gave up never reaches the session either', async () => {
    // Reads nothing for 1.5 s: the probe (100 ms) times out, the spare is offered, and the
    // server answers the probe only once it reads, just before the session's initialize.
    const gw = await start({ [SLOW]: fixtureEntry('slow-start-server.mjs', {}, ['1500']) }, { poolMin: 1, eraProbeMs: 100 });
    await waitFor(async () => (await commandStatus(gw, SLOW)).warm === 1, { message: 'the spare offered' });
    expect((await commandStatus(gw, SLOW)).era).toBe('legacy');
    const { client, seen } = await connect(gw, SLOW);
    expect(await echo(client, 'late')).toBe('late');
    expect(ids(seen)).not.toContain(ERA_PROBE_ID);
  });

  it('the verdict is cached: the spare replacing a leased one is not probed', async () => {
    const gw = await start({ [MODERN]: fixtureEntry('modern-server.mjs') }, { poolMin: 1 });
    await waitFor(async () => (await commandStatus(gw, MODERN)).warm === 1, { message: 'the first spare' });
    const { client } = await connect(gw, MODERN);
    expect(await echo(client, 'one')).toBe('one');
    // The replacement spare: a second spawn, offered once warmed by a ping.
    await waitFor(
      async () => {
        const cmd = await commandStatus(gw, MODERN);
        return cmd.spawns === 2 && cmd.warm === 1;
      },
      { message: 'the replacement spare' },
    );
    const second = await connect(gw, MODERN);
    expect(await echo(second.client, 'two')).toBe('two');
    expect(probesRead(gw)).toBe(1);
    expect(gw.logs.filter((l) => l.includes('"message":"era probe"'))).toHaveLength(1);
  });

  it('/status: unknown until a child of the command was probed', async () => {
    const gw = await start({ [MODERN]: fixtureEntry('modern-server.mjs'), [EVERYTHING]: EVERYTHING_ENTRY });
    expect((await commandStatus(gw, MODERN)).era).toBe('unknown');
    const { client } = await connect(gw, EVERYTHING);
    expect(await echo(client, 'x')).toBe('Echo: x');
    expect((await commandStatus(gw, EVERYTHING)).era).toBe('legacy');
    expect((await commandStatus(gw, MODERN)).era).toBe('unknown');
  });

  it('a server that exits on the probe counts as legacy, is replaced at once and serves the session', async () => {
    const gw = await start({ [INIT_FIRST]: fixtureEntry('init-first-server.mjs') });
    const { client } = await connect(gw, INIT_FIRST);
    expect(await echo(client, 'survived')).toBe('survived');
    expect(await commandStatus(gw, INIT_FIRST)).toMatchObject({ era: 'legacy', spawns: 2, restarts: 1, failures: 0, circuit: 'closed' });
    // Known now: the next session's child is not probed, so it lives.
    const second = await connect(gw, INIT_FIRST);
    expect(await echo(second.client, 'again')).toBe('again');
    expect((await commandStatus(gw, INIT_FIRST)).spawns).toBe(3);
  });

  it('eraOf() probes a command nobody used yet, counting the child, and stops it when no spare is wanted', async () => {
    const gw = await start({ [MODERN]: fixtureEntry('modern-server.mjs') });
    const spec = gw.gateway.registry.get(MODERN)!;
    const verdict = await gw.gateway.processes.eraOf(spec);
    expect(verdict).toMatchObject({ era: 'modern', discover: { capabilities: { tools: { listChanged: true } } } });
    expect(gw.gateway.processes.total()).toBe(0);
    expect(await gw.gateway.processes.eraOf(spec)).toBe(verdict);
    expect(await commandStatus(gw, MODERN)).toMatchObject({ era: 'modern', spawns: 1, warm: 0 });
  });
});
