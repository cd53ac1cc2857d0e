/**
 * The Bridge keeps the close contract (STYLE rule 9) with a real child: close() is
 * idempotent (twice at once, again later, after the client or the child already closed,
 * both ending at once), onclosing and onclose fire exactly once, in-flight requests get
 * their error before the client side closes, and the child's tree is gone.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { Bridge } from '../../../src/bridge/bridge.js';
import { ERROR_TABLE } from '../../../src/errors.js';
import type { ChildTransport } from '../../../src/process/childTransport.js';
import { captureLogger, spawnFixture } from '../../helpers/children.js';
import { FakeClient, withId } from '../../helpers/fakeTransports.js';
import { isAlive, waitForNoDescendants } from '../../helpers/procs.js';

afterEach(() => waitForNoDescendants(process.pid, { timeoutMs: 5_000 }));

interface Wired {
  readonly bridge: Bridge;
  readonly client: FakeClient;
  readonly child: ChildTransport;
  readonly closings: () => number;
  readonly closes: () => number;
  /** Settles when onclose fired. */
  readonly closed: Promise<void>;
}

async function wire(fixture: string): Promise<Wired> {
  const { logger } = captureLogger();
  const child = await spawnFixture(fixture, [], logger);
  const client = new FakeClient();
  const bridge = new Bridge(client, child, { logger, tags: { session: 'test' } });
  let closings = 0;
  let closes = 0;
  let fired!: () => void;
  const closed = new Promise<void>((resolve) => (fired = resolve));
  bridge.onclosing = () => (closings += 1);
  bridge.onclose = () => {
    closes += 1;
    fired();
  };
  await bridge.start();
  return { bridge, client, child, closings: () => closings, closes: () => closes, closed };
}

describe('Bridge close()', () => {
  it('called twice at once: one shutdown, in-flight answered first, both sides closed, callbacks once', async () => {
    const w = await wire('held-server.mjs');
    // Held by the server: still in flight when the session closes.
    w.client.receive({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'held' } } });
    expect(w.bridge.inFlight).toBe(1);

    const first = w.bridge.close('test');
    const second = w.bridge.close('test');
    expect(second).toBe(first);
    expect(w.closings()).toBe(1);
    await Promise.all([first, second]);

    // FakeClient refuses sends once closed: the answer arriving proves it came first.
    const answer = await w.client.sent.next(withId(1), 'the error for the in-flight call');
    expect(answer.message).toMatchObject({ error: { code: ERROR_TABLE.upstream_exited.rpc, data: { code: 'upstream_exited' } } });
    expect(answer.relatedRequestId).toBe(1);
    expect(w.client.closed).toBe(true);
    expect(isAlive(w.child.pid)).toBe(false);

    await w.bridge.close();
    expect([w.closings(), w.closes()]).toEqual([1, 1]);
  });

  it('after the client closed: the bridge closes itself once; a later close() resolves without firing again', async () => {
    const w = await wire('crash-server.mjs');
    await w.client.close();
    await w.closed;
    expect(isAlive(w.child.pid)).toBe(false);

    await Promise.all([w.bridge.close(), w.bridge.close()]);
    expect([w.closings(), w.closes()]).toEqual([1, 1]);
    expect(w.client.closeCalls).toBeGreaterThanOrEqual(1);
  });

  it('after the child exited: in-flight gets the exit as its error, callbacks once, later close() resolves', async () => {
    const w = await wire('crash-server.mjs');
    w.client.receive({ jsonrpc: '2.0', id: 'c', method: 'tools/call', params: { name: 'crash', arguments: {} } });
    await w.closed;
    const answer = await w.client.sent.next(withId('c'), 'the error for the crashed call');
    expect(answer.message).toMatchObject({ error: { code: ERROR_TABLE.upstream_exited.rpc, message: 'MCP server exited: code 3' } });
    expect(w.client.closed).toBe(true);

    await Promise.all([w.bridge.close(), w.bridge.close()]);
    expect([w.closings(), w.closes()]).toEqual([1, 1]);
  });

  it('client and child ending at the same moment: callbacks once', async () => {
    const w = await wire('crash-server.mjs');
    process.kill(w.child.pid, 'SIGKILL');
    const clientClosed = w.client.close();
    await Promise.all([clientClosed, w.closed, w.bridge.close()]);
    await w.child.exited;
    expect([w.closings(), w.closes()]).toEqual([1, 1]);
  });
});
