/**
 * WarmPool.offer(): a child started elsewhere (ProcessManager.eraOf's probe child) is kept
 * as a spare only while its command's pool is short of one; otherwise the caller stops it.
 * And a spare that was probed for its era at its start is not pinged again.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { ChildTransport } from '../../../src/process/childTransport.js';
import { EraRegistry } from '../../../src/process/era.js';
import { WarmPool } from '../../../src/process/pool.js';
import { SpawnQueue } from '../../../src/process/spawnQueue.js';
import { Supervisor } from '../../../src/process/supervisor.js';
import { captureLogger, fixtureSpec, stderrLines, TEST_STOP } from '../../helpers/children.js';
import { waitFor, waitForNoDescendants } from '../../helpers/procs.js';

const pools: WarmPool[] = [];
const loose: ChildTransport[] = [];

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.closeAll()));
  await Promise.all(loose.splice(0).map((c) => c.close()));
  await waitForNoDescendants(process.pid, { timeoutMs: 5_000 });
});

const MODERN = fixtureSpec('modern-server.mjs');

function setup(room: () => boolean) {
  const { logger, entries } = captureLogger();
  const supervisor = new Supervisor({ logger, startupWindowMs: 100, child: { stopTimeouts: TEST_STOP }, eras: new EraRegistry({ logger, probeMs: 5_000 }) });
  const pool = new WarmPool({ logger, supervisor, queue: new SpawnQueue(2), spareTtlMs: 60_000, hasRoom: () => room() });
  pools.push(pool);
  return { pool, supervisor, entries };
}

describe('WarmPool.offer', () => {
  it('keeps a child while the pool is short of spares, and refuses one more', async () => {
    const { pool, supervisor } = setup(() => false); // the pool starts nothing of its own
    pool.setTarget(MODERN, 1);
    expect(pool.starting()).toBe(0);
    const first = await supervisor.start(MODERN, {});
    const second = await supervisor.start(MODERN, {});
    loose.push(second);
    expect(pool.offer(first)).toBe(true);
    expect(pool.offer(second)).toBe(false);
    expect(pool.count(MODERN.key)).toBe(1);
    expect(pool.take(MODERN, {})).toBe(first);
    loose.push(first);
  });

  it('refuses a child of a command without a pool target, or one already in use', async () => {
    const { pool, supervisor } = setup(() => false);
    const child = await supervisor.start(MODERN, {});
    loose.push(child);
    expect(pool.offer(child)).toBe(false);
    pool.setTarget(MODERN, 1);
    await child.start();
    expect(pool.offer(child)).toBe(false);
  });

  it('a spare probed at its start gets no warm-up ping; the next spare of the entry gets one', async () => {
    let room = true;
    const { pool, entries } = setup(() => room);
    pool.setTarget(MODERN, 1);
    await waitFor(() => pool.count(MODERN.key) === 1, { message: 'the first spare' });
    const first = pool.take(MODERN, {})!;
    loose.push(first);
    pool.refillAll();
    await waitFor(() => pool.count(MODERN.key) === 1, { message: 'the second spare' });
    room = false;
    const second = pool.take(MODERN, {})!;
    loose.push(second);
    const reads = (pid: number) =>
      stderrLines(entries, pid)
        .filter((l) => l.includes(' read '))
        .map((l) => l.replace(/^\[\d+\] modern-server read /, ''));
    expect([first.probed, second.probed]).toEqual([true, false]);
    expect([first.era, second.era]).toEqual(['modern', 'modern']);
    // stderr comes on its own pipe: wait for the lines, then compare them whole.
    await waitFor(() => reads(first.pid).length > 0 && reads(second.pid).length > 0, { message: 'both taps logged' });
    expect(reads(first.pid)).toEqual(['server/discover id="mcp-warden-era-probe"']);
    expect(reads(second.pid)).toEqual(['ping id="mcp-warden-warmup"']);
  });
});
