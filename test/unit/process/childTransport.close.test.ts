/**
 * ChildTransport keeps the Transport close contract (STYLE rule 9) with real children:
 * close() is idempotent (twice at once, again after it finished, after the child already
 * exited, while the child dies mid-stop) and onclose fires exactly once.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ERROR_TABLE } from '../../../src/errors.js';
import type { ChildTransport } from '../../../src/process/childTransport.js';
import { captureLogger, countCloses, spawnFixture, stderrLines } from '../../helpers/children.js';
import { MessageLog, withId } from '../../helpers/fakeTransports.js';
import { descendantsOf, isAlive, waitFor, waitForNoDescendants } from '../../helpers/procs.js';

afterEach(() => waitForNoDescendants(process.pid, { timeoutMs: 5_000 }));

/** Starts `child` and collects what it writes. */
async function started(child: ChildTransport): Promise<MessageLog<JSONRPCMessage>> {
  const log = new MessageLog<JSONRPCMessage>();
  child.onmessage = (message) => log.push(message);
  await child.start();
  return log;
}

describe('ChildTransport close()', () => {
  it('called twice at once: one stop, both resolve, onclose fires once, the process is gone', async () => {
    const { logger } = captureLogger();
    const child = await spawnFixture('crash-server.mjs', [], logger);
    const closes = countCloses(child);
    await started(child);

    const first = child.close();
    const second = child.close();
    expect(second).toBe(first);
    await Promise.all([first, second]);
    await closes.fired;
    expect(isAlive(child.pid)).toBe(false);
    expect((await child.exited).reason).toBe('stopped');

    await child.close();
    expect(closes.count()).toBe(1);
  });

  it('called three times while a stubborn tree needs SIGKILL: onclose once, the grandchild gone too', async () => {
    const { logger } = captureLogger();
    const child = await spawnFixture('stubborn-server.mjs', [], logger);
    const closes = countCloses(child);
    const replies = await started(child);
    // It answers only once its SIGTERM-proof grandchild is up.
    await child.send({ jsonrpc: '2.0', id: 1, method: 'ping' });
    await replies.next(withId(1), 'ping reply');
    const tree = descendantsOf(child.pid);
    expect(tree.length).toBeGreaterThan(0);

    await Promise.all([child.close(), child.close(), child.close()]);
    expect(closes.count()).toBe(1);
    expect(isAlive(child.pid)).toBe(false);
    for (const pid of tree) expect(isAlive(pid)).toBe(false);
  });

  it('after the child exited on its own: resolves (twice at once), onclose stays at one, the reason is kept', async () => {
    const { logger } = captureLogger();
    const child = await spawnFixture('crash-server.mjs', [], logger);
    const closes = countCloses(child);
    await started(child);
    await child.send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'crash', arguments: {} } });
    await closes.fired;
    expect(child.closed).toBe(true);
    expect(child.closeError?.code).toBe('upstream_exited');
    expect((await child.exited).reason).toBe('exited');

    await Promise.all([child.close(), child.close()]);
    await child.close();
    expect(closes.count()).toBe(1);
    await expect(child.send({ jsonrpc: '2.0', id: 2, method: 'ping' })).rejects.toMatchObject({ code: 'upstream_exited' });
    expect(child.closeError?.rpcCode).toBe(ERROR_TABLE.upstream_exited.rpc);
  });

  it('the child dies while close() waits in its EOF stage: close resolves, onclose fires once', async () => {
    const { logger, entries } = captureLogger();
    // Deaf: ignores stdin EOF, so close() sits in its EOF stage until the kill below.
    const child = await spawnFixture('deaf-server.mjs', [], logger, { stopTimeouts: { eofMs: 10_000, termMs: 500, killMs: 2_000 } });
    const closes = countCloses(child);
    await started(child);
    await waitFor(() => stderrLines(entries, child.pid).some((l) => l.includes('ready')), { message: 'deaf-server ready' });

    const closing = child.close();
    process.kill(child.pid, 'SIGKILL');
    await Promise.all([closing, child.close()]);
    expect(closes.count()).toBe(1);
    expect((await child.exited).signal).toBe('SIGKILL');
    await child.close();
    expect(closes.count()).toBe(1);
  });
});
