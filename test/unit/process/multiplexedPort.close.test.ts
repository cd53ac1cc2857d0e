/**
 * A session's port on a shared child keeps the Transport close contract (STYLE rule 9):
 * close() is idempotent (twice at once, again later, after the child died) and onclose
 * fires exactly once, also when the child dies after the session closed. A real
 * mux-server is the child.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { Multiplexer } from '../../../src/process/multiplexer.js';
import { captureLogger } from '../../helpers/children.js';
import { muxStats, openSession, startMux, textOf } from '../../helpers/mux.js';
import { waitFor, waitForNoDescendants } from '../../helpers/procs.js';

let mux: Multiplexer | undefined;

afterEach(async () => {
  await mux?.close();
  mux = undefined;
  await waitForNoDescendants(process.pid, { timeoutMs: 5_000 });
});

describe('MultiplexedPort close()', () => {
  it('called twice at once: onclose once, its call cancelled once at the child, the other session unaffected', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const leaving = await openSession(mux);
    const staying = await openSession(mux);
    await leaving.send(1, 'slow', { tag: 'left behind' });
    await waitFor(async () => (await muxStats(staying)).waiting.includes('left behind'), { message: 'the slow call at the child' });

    await Promise.all([leaving.port.close(), leaving.port.close()]);
    expect(leaving.closes.count()).toBe(1);
    expect(leaving.port.closeError).toBeUndefined();
    expect(mux.sessions).toBe(1);
    await waitFor(async () => (await muxStats(staying)).cancelled.length > 0, { message: 'the cancellation at the child' });

    await leaving.port.close();
    expect(leaving.closes.count()).toBe(1);
    expect((await muxStats(staying)).cancelled).toHaveLength(1);
    expect(textOf(await staying.call(2, 'echo', { message: 'on' }))).toBe('on');
    await expect(leaving.call(3, 'echo', { message: 'x' })).rejects.toMatchObject({ code: 'upstream_exited' });
  });

  it('after the child died: resolves (twice at once), onclose stays at one, the reason stays', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const session = await openSession(mux);
    await session.send(1, 'crash');
    await session.closes.fired;
    expect(session.port.closeError?.code).toBe('upstream_exited');

    await Promise.all([session.port.close(), session.port.close()]);
    await session.port.close();
    expect(session.closes.count()).toBe(1);
    expect(session.port.closeError?.code).toBe('upstream_exited');
  });

  it('closed first, then the child dies: no second onclose', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const closed = await openSession(mux);
    const crasher = await openSession(mux);
    await closed.port.close();
    await crasher.send(1, 'crash');
    await crasher.closes.fired;
    expect(closed.closes.count()).toBe(1);
    expect(crasher.closes.count()).toBe(1);
  });
});
