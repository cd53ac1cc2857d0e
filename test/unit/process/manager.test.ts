/**
 * ProcessManager's one path for fresh children (a session's lease, a shared child), with
 * real fixture children: a start counts against the limits while it runs and stops
 * counting once it failed; closeAll() during a start stops what it produced; and starts
 * still waiting for a spawn slot (behind spawnConcurrency) are settled by closeAll()
 * instead of being left pending forever (which also hung closeAll() itself).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { DrainingError, LimitReachedError, UpstreamFailedError } from '../../../src/errors.js';
import { ProcessManager, type ProcessManagerOptions } from '../../../src/process/manager.js';
import { within } from '../../../src/process/within.js';
import { captureLogger, fixtureSpec, TEST_STOP } from '../../helpers/children.js';
import { waitFor, waitForNoDescendants } from '../../helpers/procs.js';

const managers: ProcessManager[] = [];

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.closeAll()));
  await waitForNoDescendants(process.pid, { timeoutMs: 5_000 });
});

function manager(limits: ProcessManagerOptions['limits'], options: Partial<ProcessManagerOptions> = {}): ProcessManager {
  const { logger } = captureLogger();
  const m = new ProcessManager({
    logger,
    startAttempts: 1,
    startupWindowMs: 100,
    child: { stopTimeouts: TEST_STOP },
    limits: { poolMin: 0, ...limits },
    ...options,
  });
  managers.push(m);
  return m;
}

/** Never answers during a test: its start is "under way" for as long as the test needs. */
const SLOW = fixtureSpec('slow-start-server.mjs', ['60000']);
const SHARED_SLOW = fixtureSpec('slow-start-server.mjs', ['60000'], { key: 'shared slow', mode: 'shared' });
const CRASH_ON_START = fixtureSpec('crash-server.mjs', ['--crash-on-start']);
/** How long closeAll() may take here: the stop stages of a few children, with room for a loaded machine. */
const CLOSE_BOUND_MS = 8_000;

describe('ProcessManager fresh starts', () => {
  it('a start under way counts against maxChildren; a failed one stops counting', async () => {
    const m = manager({ maxChildren: 1 });
    const leased = m.lease(SLOW, {});
    expect(m.total()).toBe(1);
    await expect(m.lease(fixtureSpec('crash-server.mjs'), {})).rejects.toBeInstanceOf(LimitReachedError);
    const child = await leased;
    expect(m.total()).toBe(1);
    await child.close();
    await waitFor(() => m.total() === 0, { message: 'the slot free again' });

    await expect(m.lease(CRASH_ON_START, {})).rejects.toBeInstanceOf(UpstreamFailedError);
    expect(m.total()).toBe(0);
  });

  it('a shared child being started counts too, and a failed shared start frees its slot', async () => {
    const m = manager({ maxChildren: 1 });
    const sharedCrash = { ...CRASH_ON_START, key: 'shared crash', mode: 'shared' as const };
    await expect(m.lease(sharedCrash, {})).rejects.toBeInstanceOf(UpstreamFailedError);
    expect(m.total()).toBe(0);

    const leased = m.lease(SHARED_SLOW, {}).catch((e: unknown) => e);
    expect(m.total()).toBe(1);
    await expect(m.lease(fixtureSpec('crash-server.mjs'), {})).rejects.toBeInstanceOf(LimitReachedError);
    await m.closeAll();
    expect(await leased).toBeInstanceOf(DrainingError);
  });

  it('closeAll() during a running start: the lease gets DrainingError and the child is stopped', async () => {
    const m = manager({ spawnConcurrency: 1 });
    const leased = m.lease(SLOW, {}).catch((e: unknown) => e);
    await waitFor(() => m.total() === 1, { message: 'the start under way' });
    expect(await within(m.closeAll(), CLOSE_BOUND_MS)).toBe(true);
    expect(await leased).toBeInstanceOf(DrainingError);
  });

  it('closeAll() settles leases and shared starts still waiting for a spawn slot, and returns', async () => {
    const m = manager({ spawnConcurrency: 1 });
    const running = m.lease(SLOW, {}).catch((e: unknown) => e);
    const waitingLease = m.lease(SLOW, {}).catch((e: unknown) => e);
    const waitingShared = m.lease(SHARED_SLOW, {}).catch((e: unknown) => e);
    expect(m.total()).toBe(3);

    expect(await within(m.closeAll(), CLOSE_BOUND_MS)).toBe(true);
    expect(await within(Promise.all([running, waitingLease, waitingShared]), 1_000)).toBe(true);
    expect(await running).toBeInstanceOf(DrainingError);
    expect(await waitingLease).toBeInstanceOf(DrainingError);
    expect(await waitingShared).toBeInstanceOf(DrainingError);
    expect(m.total()).toBe(0);
  });

  it('closeAll() returns while warm spares are still waiting for a spawn slot', async () => {
    const m = manager({ spawnConcurrency: 1, poolMin: 3 });
    m.warm([SLOW]);
    expect(await within(m.closeAll(), CLOSE_BOUND_MS)).toBe(true);
    expect(m.total()).toBe(0);
  });
});
