/**
 * The era probe with real children: what each kind of server makes of `server/discover`
 * and the verdict the registry draws (legacy fixtures and the reference v1 server answer
 * -32601; the v2 fixture answers a DiscoverResult, with or without `--modern-only`; a deaf
 * server times out; a server that exits on any request before `initialize` exits), the
 * probe's answer never reaching the child's reader, the cache per entry (a second child is
 * not probed, a changed entry is), and the verdict rules on their own.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { buildChildEnv, defaultChildEnvBase } from '../../../src/commands/env.js';
import type { CommandSpec } from '../../../src/commands/types.js';
import { ChildTransport, ERA_PROBE_ID, type OwnReply } from '../../../src/process/childTransport.js';
import { MODERN_VERSION } from '../../../src/modern/protocol.js';
import { EraRegistry, verdictOf } from '../../../src/process/era.js';
import { spawnChild } from '../../../src/process/spawn.js';
import { captureLogger, fixtureSpec, stderrLines, TEST_STOP, type LogEntry } from '../../helpers/children.js';
import { waitFor, waitForNoDescendants } from '../../helpers/procs.js';

const children: ChildTransport[] = [];

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.close()));
  await waitForNoDescendants(process.pid, { timeoutMs: 5_000 });
});

const EVERYTHING: CommandSpec = {
  ...fixtureSpec('crash-server.mjs'),
  key: 'everything',
  args: [join(process.cwd(), 'node_modules/@modelcontextprotocol/server-everything/dist/index.js'), 'stdio'],
};
const MODERN = fixtureSpec('modern-server.mjs');

/** Generous for a loaded machine: every answering server here answers well within it. */
const PROBE_MS = 5_000;

function setup(probeMs = PROBE_MS): { eras: EraRegistry; entries: LogEntry[]; spawn: (spec: CommandSpec) => Promise<ChildTransport> } {
  const { logger, entries } = captureLogger();
  const spawn = async (spec: CommandSpec): Promise<ChildTransport> => {
    const spawned = await spawnChild(spec, buildChildEnv(spec, {}, defaultChildEnvBase()), logger);
    const child = new ChildTransport(spawned, spec, logger, { stopTimeouts: TEST_STOP });
    children.push(child);
    return child;
  };
  return { eras: new EraRegistry({ logger, probeMs }), entries, spawn };
}

/** Starts the child's reader and sends a legacy initialize; resolves with everything it read once the answer came. */
async function initialize(child: ChildTransport): Promise<JSONRPCMessage[]> {
  const seen: JSONRPCMessage[] = [];
  const answered = new Promise<void>((resolve) => {
    child.onmessage = (message) => {
      seen.push(message);
      if ('id' in message && message.id === 1) resolve();
    };
  });
  await child.start();
  await child.send({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'era-test', version: '0' } },
  });
  await answered;
  return seen;
}

const probesSeen = (entries: readonly LogEntry[]): number => stderrLines(entries).filter((l) => l.includes(`read server/discover id="${ERA_PROBE_ID}"`)).length;

describe('EraRegistry.probe with real servers', () => {
  it.each([
    ['a lib/stdio-server fixture (-32601)', fixtureSpec('crash-server.mjs')],
    ['server-everything, the v1 reference server (-32601)', EVERYTHING],
  ])('%s: legacy, and the child then serves a legacy session', async (_name, spec) => {
    const { eras, entries, spawn } = setup();
    const child = await spawn(spec);
    expect(await eras.probe(child)).toEqual({ era: 'legacy' });
    expect([child.era, child.probed, eras.era(spec), eras.discover(spec)]).toEqual(['legacy', true, 'legacy', undefined]);
    expect(entries.find((e) => e.message === 'era probe')).toMatchObject({ era: 'legacy', outcome: 'answer', code: -32601 });
    const seen = await initialize(child);
    expect(seen.map((m) => ('id' in m ? m.id : undefined))).not.toContain(ERA_PROBE_ID);
    expect(seen.at(-1)).toMatchObject({ id: 1, result: { protocolVersion: expect.any(String) } });
  });

  it('the v2 fixture: modern, with its DiscoverResult; a legacy initialize still works after the probe', async () => {
    const { eras, spawn } = setup();
    const child = await spawn(MODERN);
    const verdict = await eras.probe(child);
    expect(verdict.era).toBe('modern');
    expect(verdict.discover).toMatchObject({
      supportedVersions: [MODERN_VERSION],
      capabilities: { tools: { listChanged: true }, resources: { subscribe: true, listChanged: true } },
      instructions: expect.stringContaining('fixture'),
      _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'modern-server', version: '1.0.0' } },
    });
    expect([child.era, eras.era(MODERN), eras.discover(MODERN)]).toEqual(['modern', 'modern', verdict.discover]);
    const seen = await initialize(child);
    expect(seen.map((m) => ('id' in m ? m.id : undefined))).toEqual([1]);
  });

  it('the v2 fixture with --modern-only: modern', async () => {
    const { eras, spawn } = setup();
    const spec = fixtureSpec('modern-server.mjs', ['--modern-only']);
    const verdict = await eras.probe(await spawn(spec));
    expect(verdict).toMatchObject({ era: 'modern', discover: { supportedVersions: [MODERN_VERSION] } });
  });

  it('a server that never reads stdin: legacy once the probe times out; the child is left running', async () => {
    const { eras, entries, spawn } = setup(300);
    const child = await spawn(fixtureSpec('deaf-server.mjs'));
    expect(await eras.probe(child)).toEqual({ era: 'legacy' });
    expect(entries.find((e) => e.message === 'era probe')).toMatchObject({ era: 'legacy', outcome: 'timeout' });
    expect(child.closed).toBe(false);
  });

  it('a server that exits on any request before initialize: legacy, and the child is gone', async () => {
    const { eras, entries, spawn } = setup();
    const child = await spawn(fixtureSpec('init-first-server.mjs'));
    expect(await eras.probe(child)).toEqual({ era: 'legacy' });
    expect(entries.find((e) => e.message === 'era probe')).toMatchObject({ era: 'legacy', outcome: 'exited' });
    expect(await child.exited).toMatchObject({ code: 1, reason: 'exited' });
  });

  it('an answer that comes after the timeout never reaches the reader either', async () => {
    const { eras, spawn } = setup(100);
    // Reads nothing for 600 ms, then answers the probe (-32601) before the initialize behind it.
    const child = await spawn(fixtureSpec('slow-start-server.mjs', ['600']));
    expect(await eras.probe(child)).toEqual({ era: 'legacy' });
    const seen = await initialize(child);
    expect(seen.map((m) => ('id' in m ? m.id : undefined))).toEqual([1]);
  });
});

describe('EraRegistry cache', () => {
  it('a second child of the entry is not probed: it only gets the era stamped', async () => {
    const { eras, entries, spawn } = setup();
    await eras.probe(await spawn(MODERN));
    const second = await spawn(MODERN);
    expect((await eras.probe(second)).era).toBe('modern');
    expect([second.era, second.probed]).toEqual(['modern', false]);
    // The second child's first request is a session's: proof it received no probe.
    await initialize(second);
    const reads = () => stderrLines(entries, second.pid).filter((l) => l.includes(' read '));
    await waitFor(() => reads().length > 0, { message: 'the tap line of its first request' }); // stderr has its own pipe
    expect(reads()).toEqual([expect.stringContaining('read initialize id=1')]);
    expect(probesSeen(entries)).toBe(1);
  });

  it('children of one entry starting together share one probe', async () => {
    const { eras, entries, spawn } = setup();
    const [a, b] = await Promise.all([spawn(MODERN), spawn(MODERN)]);
    const verdicts = await Promise.all([eras.probe(a), eras.probe(b)]);
    expect(verdicts.map((v) => v.era)).toEqual(['modern', 'modern']);
    expect([a.probed, b.probed]).toEqual([true, false]);
    await Promise.all([initialize(a), initialize(b)]);
    expect(probesSeen(entries)).toBe(1);
  });

  it('an entry whose command line changed is probed again; forget() makes the next child probed', async () => {
    const { eras, spawn } = setup();
    await eras.probe(await spawn(MODERN));
    const changed = { ...MODERN, args: [...MODERN.args, '--modern-only'] };
    expect(eras.era(changed)).toBeUndefined();
    const other = await spawn(changed);
    await eras.probe(other);
    expect(other.probed).toBe(true);

    eras.forget(MODERN);
    expect(eras.era(MODERN)).toBeUndefined();
    const again = await spawn(MODERN);
    await eras.probe(again);
    expect([again.probed, again.era]).toEqual([true, 'modern']);
  });

  it('probeMs 0: no probe, every entry legacy', async () => {
    const { eras, entries, spawn } = setup(0);
    expect(eras.era(MODERN)).toBe('legacy');
    const child = await spawn(MODERN);
    expect(await eras.probe(child)).toEqual({ era: 'legacy' });
    expect([child.era, child.probed]).toEqual(['legacy', false]);
    await initialize(child);
    expect(probesSeen(entries)).toBe(0);
  });
});

describe('verdictOf', () => {
  const answer = (body: Record<string, unknown>): OwnReply => ({ outcome: 'answer', message: { jsonrpc: '2.0', id: ERA_PROBE_ID, ...body } as JSONRPCMessage });
  const discover = { supportedVersions: [MODERN_VERSION], capabilities: { tools: {} } };

  it.each<[string, string, OwnReply]>([
    ['a DiscoverResult listing 2026-07-28', 'modern', answer({ result: discover })],
    [
      'a DiscoverResult without resultType, ttlMs, cacheScope',
      'modern',
      answer({ result: { ...discover, supportedVersions: ['2099-01-01', MODERN_VERSION] } }),
    ],
    [
      '-32022 whose data.supported lists 2026-07-28',
      'modern',
      answer({ error: { code: -32022, message: 'Unsupported', data: { supported: [MODERN_VERSION], requested: 'x' } } }),
    ],
    ['a DiscoverResult listing only other versions', 'legacy', answer({ result: { ...discover, supportedVersions: ['2099-01-01'] } })],
    ['a result without capabilities', 'legacy', answer({ result: { supportedVersions: [MODERN_VERSION] } })],
    ['a result whose supportedVersions is not an array', 'legacy', answer({ result: { supportedVersions: MODERN_VERSION, capabilities: {} } })],
    ['an empty result', 'legacy', answer({ result: {} })],
    ['-32022 without data', 'legacy', answer({ error: { code: -32022, message: 'Unsupported' } })],
    ['-32022 listing only other versions', 'legacy', answer({ error: { code: -32022, message: 'Unsupported', data: { supported: ['2025-11-25'] } } })],
    ['-32601', 'legacy', answer({ error: { code: -32601, message: 'Method not found' } })],
    ['-32602', 'legacy', answer({ error: { code: -32602, message: 'Invalid params' } })],
    ['-32600 with data.supported (not the modern code)', 'legacy', answer({ error: { code: -32600, message: 'x', data: { supported: [MODERN_VERSION] } } })],
    ['no answer in time', 'legacy', { outcome: 'timeout' }],
    ['an exit', 'legacy', { outcome: 'exited' }],
  ])('%s: %s', (_name, era, reply) => {
    expect(verdictOf(reply).era).toBe(era);
  });

  it('keeps the DiscoverResult (capabilities, instructions, serverInfo) of a modern answer', () => {
    const result = { ...discover, instructions: 'hi', _meta: { 'io.modelcontextprotocol/serverInfo': { name: 's', version: '1' } } };
    expect(verdictOf(answer({ result })).discover).toEqual(result);
    expect(verdictOf(answer({ error: { code: -32022, message: 'x', data: { supported: [MODERN_VERSION] } } })).discover).toBeUndefined();
  });
});
