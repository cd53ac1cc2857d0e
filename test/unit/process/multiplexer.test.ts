/**
 * The multiplexer on a real shared child (mux-server): one initialize for every session,
 * ids and progress tokens rewritten on the way in and restored on the way out,
 * cancellations mapped to the child's id, notifications broadcast, server requests and
 * tasks refused, and the child's death ending every session.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { ErrorCode, LATEST_PROTOCOL_VERSION, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { readFileSync } from 'node:fs';
import { ERROR_TABLE } from '../../../src/errors.js';
import type { Multiplexer } from '../../../src/process/multiplexer.js';
import { captureLogger, stderrLines } from '../../helpers/children.js';
import { withId } from '../../helpers/fakeTransports.js';
import { muxStats, openSession, startMux, textOf, type MuxSession } from '../../helpers/mux.js';
import { waitFor, waitForNoDescendants } from '../../helpers/procs.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
const GATEWAY_ID = /^w\d+$/;

let mux: Multiplexer | undefined;

afterEach(async () => {
  await mux?.close();
  mux = undefined;
  await waitForNoDescendants(process.pid, { timeoutMs: 5_000 });
});

const initialize = (id: RequestId, protocolVersion: string): JSONRPCMessage => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion, capabilities: {}, clientInfo: { name: 'unit', version: '1' } },
});
const paramsOf = (m: JSONRPCMessage) => (m as { params?: Record<string, unknown> }).params ?? {};
const methodOf = (m: JSONRPCMessage) => ('method' in m ? m.method : undefined);

describe('Multiplexer', () => {
  it('initializes the child once, announcing the package name and version; each session is answered from that', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const a = await openSession(mux);
    const b = await openSession(mux);

    await a.port.send(initialize(0, LATEST_PROTOCOL_VERSION));
    await b.port.send(initialize('init', '2025-06-18'));
    const replyA = (await a.received.next(withId(0), 'initialize reply')) as unknown as { result: { protocolVersion: string; serverInfo: { name: string } } };
    const replyB = (await b.received.next(withId('init'), 'initialize reply')) as unknown as {
      result: { protocolVersion: string; capabilities: Record<string, unknown> };
    };
    // The child echoes what the gateway asked for: the latest version. No task capability is offered.
    expect(replyA.result.protocolVersion).toBe(LATEST_PROTOCOL_VERSION);
    expect(replyA.result.serverInfo.name).toBe('mux-server');
    expect(replyB.result.protocolVersion).toBe(LATEST_PROTOCOL_VERSION);
    expect(replyB.result.capabilities).not.toHaveProperty('tasks');

    const stats = await muxStats(a);
    expect(stats.initializes).toBe(1);
    expect(stats.clientInfo).toEqual({ name: pkg.name, version: pkg.version });
  });

  it('answers every session with the version the child negotiated, whatever the session asked for', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger, ['--protocol-version', '2025-06-18']);
    const versions: string[] = [];
    for (const asked of ['2025-03-26', LATEST_PROTOCOL_VERSION, '2025-06-18', '1999-01-01']) {
      const s = await openSession(mux);
      await s.port.send(initialize(1, asked));
      versions.push(
        ((await s.received.next(withId(1), `initialize reply (${asked})`)) as unknown as { result: { protocolVersion: string } }).result.protocolVersion,
      );
    }
    expect(versions).toEqual(['2025-06-18', '2025-06-18', '2025-06-18', '2025-06-18']);
  });

  it('rewrites colliding request ids: each session gets its own reply under its own id', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const a = await openSession(mux);
    const b = await openSession(mux);
    const observer = await openSession(mux);

    await a.send(1, 'slow', { tag: 'from-a' });
    await b.send(1, 'slow', { tag: 'from-b' });
    await waitFor(async () => (await muxStats(observer)).waiting.length === 2, { message: 'both slow calls at the child' });
    const seen = Object.keys((await muxStats(observer)).slow);
    expect(seen).toHaveLength(2);
    for (const id of seen) expect(id).toMatch(GATEWAY_ID);

    expect(textOf(await observer.call('r', 'release'))).toBe('2');
    expect(textOf(await a.received.next(withId(1), 'reply of a'))).toBe('released from-a');
    expect(textOf(await b.received.next(withId(1), 'reply of b'))).toBe('released from-b');
    expect(a.received.items.filter(withId(1))).toHaveLength(1);
    expect(b.received.items.filter(withId(1))).toHaveLength(1);
  });

  it('rewrites progress tokens: the child sees a gateway token, each session its own token and only its own progress', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const a = await openSession(mux);
    const b = await openSession(mux);

    // Same id, same token, at the child together (n: 2 gathers both calls first).
    const [replyA, replyB] = await Promise.all([
      a.call(5, 'progress', { tag: 'A', count: 2, n: 2 }, { progressToken: 'tok' }),
      b.call(5, 'progress', { tag: 'B', count: 3, n: 2 }, { progressToken: 'tok' }),
    ]);
    const childTokenA = (JSON.parse(textOf(replyA)) as { token: string }).token;
    const childTokenB = (JSON.parse(textOf(replyB)) as { token: string }).token;
    expect(childTokenA).toMatch(GATEWAY_ID);
    expect(childTokenB).toMatch(GATEWAY_ID);
    expect(childTokenA).not.toBe(childTokenB);

    const progress = (items: readonly JSONRPCMessage[]) => items.filter((m) => methodOf(m) === 'notifications/progress').map(paramsOf);
    expect(progress(a.received.items)).toEqual([
      { progressToken: 'tok', progress: 1, total: 2, message: 'A' },
      { progressToken: 'tok', progress: 2, total: 2, message: 'A' },
    ]);
    expect(progress(b.received.items).map((p) => [p.progressToken, p.message])).toEqual([
      ['tok', 'B'],
      ['tok', 'B'],
      ['tok', 'B'],
    ]);
  });

  it("maps a session's cancellation to the child's id; the session gets no reply for it; an unknown id sends nothing", async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const a = await openSession(mux);
    const observer = await openSession(mux);

    await a.send(7, 'slow', { tag: 'to-cancel' });
    await waitFor(async () => (await muxStats(observer)).waiting.includes('to-cancel'), { message: 'the slow call at the child' });
    const childId = Object.entries((await muxStats(observer)).slow).find(([, tag]) => tag === 'to-cancel')![0];

    await a.port.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7, reason: 'user' } });
    await a.port.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'never-sent' } });
    await waitFor(async () => (await muxStats(observer)).cancelled.length > 0, { message: 'the cancellation at the child' });
    expect((await muxStats(observer)).cancelled).toEqual([childId]);

    // The session goes on; nothing ever answers id 7.
    expect(textOf(await a.call(8, 'echo', { message: 'still here' }))).toBe('still here');
    expect(a.received.items.filter(withId(7))).toEqual([]);
  });

  it('sends notifications of the server to every session', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const a = await openSession(mux);
    const b = await openSession(mux);

    expect(textOf(await a.call(1, 'change'))).toBe('changed');
    const listChanged = (m: JSONRPCMessage) => methodOf(m) === 'notifications/tools/list_changed';
    await a.received.next(listChanged, 'list_changed at a');
    await b.received.next(listChanged, 'list_changed at b');
  });

  it("refuses the server's own requests with MethodNotFound (ping is answered); no session sees them", async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const a = await openSession(mux);
    const b = await openSession(mux);

    const refused = JSON.parse(textOf(await a.call(1, 'ask', { method: 'sampling/createMessage' }))) as { error: { code: number; message: string } };
    expect(refused.error.code).toBe(ErrorCode.MethodNotFound);
    expect(refused.error.message).toBe('sampling/createMessage is not available through a shared server');
    const pong = JSON.parse(textOf(await a.call(2, 'ask', { method: 'ping' }))) as { result: unknown };
    expect(pong.result).toEqual({});
    for (const s of [a, b]) expect(s.received.items.filter((m) => methodOf(m) !== undefined)).toEqual([]);
  });

  it('refuses tasks (tasks/* and task-augmented tools/call) without reaching the child', async () => {
    const { logger, entries } = captureLogger();
    mux = await startMux(logger);
    const a = await openSession(mux);

    await a.port.send({ jsonrpc: '2.0', id: 1, method: 'tasks/list', params: {} });
    await a.port.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'slow', arguments: { tag: 'task' }, task: { ttl: 1000 } } });
    const list = (await a.received.next(withId(1), 'tasks/list refusal')) as { error: { code: number; message: string } };
    const call = (await a.received.next(withId(2), 'task call refusal')) as { error: { code: number; message: string } };
    expect(list.error.code).toBe(ErrorCode.MethodNotFound);
    expect(list.error.message).toMatch(/^tasks\/list is not available through a shared server/);
    expect(call.error.code).toBe(ErrorCode.InvalidParams);
    expect(call.error.message).toMatch(/call the tool without "task"/);

    // Proof by order: the child logs what it reads in stdin order; a later call shows up, the refused ones never did.
    await a.call(3, 'stats');
    const received = () => stderrLines(entries).filter((l) => l.includes('recv '));
    await waitFor(() => received().some((l) => l.includes('recv tools/call stats')), { message: 'the later call in the child log' });
    expect(received().filter((l) => l.includes('tasks/') || l.includes('recv tools/call slow'))).toEqual([]);
  });

  it('ends every session when the child dies: onclose once each, later sends fail with the reason', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const a = await openSession(mux);
    const b = await openSession(mux);
    const idle = await openSession(mux);
    await a.send(1, 'slow', { tag: 'pending' });
    expect(mux.sessions).toBe(3);

    await b.send(1, 'crash');
    await Promise.all([a.closes.fired, b.closes.fired, idle.closes.fired]);
    for (const s of [a, b, idle]) {
      expect(s.closes.count()).toBe(1);
      expect(s.port.closeError?.code).toBe('upstream_exited');
      await expect(s.call(9, 'echo', { message: 'x' })).rejects.toMatchObject({ rpcCode: ERROR_TABLE.upstream_exited.rpc });
    }
    expect(mux.sessions).toBe(0);
    expect(mux.closed).toBe(true);
    // What was in flight is not answered by the multiplexer (the bridge answers it with closeError).
    expect(a.received.items.filter(withId(1))).toEqual([]);
  });
});

const LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/** Sends a request on a session's port and resolves with its reply. */
async function ask(s: MuxSession, id: RequestId, method: string, params: Record<string, unknown>): Promise<JSONRPCMessage> {
  await s.port.send({ jsonrpc: '2.0', id, method, params });
  return s.received.next(withId(id), `reply to ${method} (id ${String(id)})`);
}
const updatesOf = (s: MuxSession) => s.received.items.filter((m) => methodOf(m) === 'notifications/resources/updated').map((m) => paramsOf(m).uri);
const logOf = (s: MuxSession, tag: string) =>
  s.received.items.filter((m) => methodOf(m) === 'notifications/message' && String(paramsOf(m).data).startsWith(`${tag} `)).map((m) => paramsOf(m).level);

describe('Multiplexer: resources/subscribe per session', () => {
  it('notifications/resources/updated reaches only the sessions subscribed to its uri', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const [a, b, c] = [await openSession(mux), await openSession(mux), await openSession(mux)];
    expect(await ask(a, 1, 'resources/subscribe', { uri: 'file:///x' })).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    expect(await ask(c, 1, 'resources/subscribe', { uri: 'file:///y' })).toEqual({ jsonrpc: '2.0', id: 1, result: {} });

    // The child writes each notification before its reply: by the reply, every session has it or never will.
    expect(textOf(await b.call(2, 'updated', { uri: 'file:///x' }))).toBe('sent');
    expect(textOf(await b.call(3, 'updated', { uri: 'file:///y' }))).toBe('sent');
    expect(updatesOf(a)).toEqual(['file:///x']);
    expect(updatesOf(b)).toEqual([]);
    expect(updatesOf(c)).toEqual(['file:///y']);
  });

  it('counts subscribers per uri: the child sees the first subscribe and the last unsubscribe', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const [a, b] = [await openSession(mux), await openSession(mux)];
    await ask(a, 1, 'resources/subscribe', { uri: 'file:///x' });
    expect(await ask(b, 1, 'resources/subscribe', { uri: 'file:///x' })).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    expect(await ask(a, 2, 'resources/subscribe', { uri: 'file:///x' })).toEqual({ jsonrpc: '2.0', id: 2, result: {} });
    expect((await muxStats(a)).subscribes).toEqual(['file:///x']);

    expect(await ask(a, 3, 'resources/unsubscribe', { uri: 'file:///x' })).toEqual({ jsonrpc: '2.0', id: 3, result: {} });
    expect(await ask(a, 4, 'resources/unsubscribe', { uri: 'file:///x' })).toEqual({ jsonrpc: '2.0', id: 4, result: {} });
    expect((await muxStats(a)).unsubscribes).toEqual([]);
    expect(textOf(await a.call(5, 'updated', { uri: 'file:///x' }))).toBe('sent');
    expect(updatesOf(a)).toEqual([]);
    expect(updatesOf(b)).toEqual(['file:///x']);

    expect(await ask(b, 6, 'resources/unsubscribe', { uri: 'file:///x' })).toEqual({ jsonrpc: '2.0', id: 6, result: {} });
    const stats = await muxStats(a);
    expect(stats.subscribes).toEqual(['file:///x']);
    expect(stats.unsubscribes).toEqual(['file:///x']);
    expect(stats.subscribed).toEqual([]);
  });

  it('a session leaving gives up its subscriptions; the last one to leave unsubscribes the child', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const [a, b, observer] = [await openSession(mux), await openSession(mux), await openSession(mux)];
    await ask(a, 1, 'resources/subscribe', { uri: 'file:///x' });
    await ask(b, 1, 'resources/subscribe', { uri: 'file:///x' });

    await a.port.close();
    expect(textOf(await observer.call(2, 'updated', { uri: 'file:///x' }))).toBe('sent');
    expect(updatesOf(b)).toEqual(['file:///x']);
    expect((await muxStats(observer)).unsubscribes).toEqual([]);

    await b.port.close();
    await waitFor(async () => (await muxStats(observer)).unsubscribes.length > 0, { message: 'the unsubscribe at the child' });
    const stats = await muxStats(observer);
    expect(stats.subscribes).toEqual(['file:///x']);
    expect(stats.unsubscribes).toEqual(['file:///x']);
    expect(updatesOf(observer)).toEqual([]);
  });

  it('a session that leaves while its subscribe is at the child leaves the child unsubscribed', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const [a, observer] = [await openSession(mux), await openSession(mux)];
    await a.port.send({ jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'file:///x' } });
    await a.port.close();
    await waitFor(async () => (await muxStats(observer)).unsubscribes.length > 0, { message: 'the unsubscribe at the child' });
    expect(await muxStats(observer)).toMatchObject({ subscribes: ['file:///x'], unsubscribes: ['file:///x'], subscribed: [] });
  });

  it("a refused subscribe gets the child's error, for every session that asked, and counts nobody", async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const [a, b] = [await openSession(mux), await openSession(mux)];
    const refusals = await Promise.all([ask(a, 1, 'resources/subscribe', { uri: 'refuse:x' }), ask(b, 1, 'resources/subscribe', { uri: 'refuse:x' })]);
    for (const refusal of refusals)
      expect(refusal).toEqual({ jsonrpc: '2.0', id: 1, error: { code: ErrorCode.InvalidParams, message: 'no such resource: refuse:x' } });
    expect((await muxStats(a)).subscribes).toEqual([]);
    expect(await ask(a, 2, 'resources/subscribe', { uri: 'file:///x' })).toEqual({ jsonrpc: '2.0', id: 2, result: {} });
  });

  it('a cancelled subscribe gets no reply; the session goes on', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const a = await openSession(mux);
    await a.port.send({ jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'file:///x' } });
    await a.port.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } });
    await waitFor(async () => (await muxStats(a)).subscribes.length === 1, { message: 'the subscribe at the child' });
    expect(textOf(await a.call(2, 'echo', { message: 'on' }))).toBe('on');
    expect(a.received.items.filter(withId(1))).toEqual([]);
  });

  it('holds at most maxSubscriptions uris per session', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger, [], { maxSubscriptions: 2 });
    const [a, b] = [await openSession(mux), await openSession(mux)];
    await ask(a, 1, 'resources/subscribe', { uri: 'file:///x' });
    await ask(a, 2, 'resources/subscribe', { uri: 'file:///y' });
    const refused = (await ask(a, 3, 'resources/subscribe', { uri: 'file:///z' })) as { error: { code: number; message: string } };
    expect(refused.error.code).toBe(ERROR_TABLE.limit_reached.rpc);
    expect(refused.error.message).toBe('limit reached: resources/subscribe uris per session (2)');
    expect(await ask(a, 4, 'resources/subscribe', { uri: 'file:///x' })).toEqual({ jsonrpc: '2.0', id: 4, result: {} });
    expect(await ask(b, 1, 'resources/subscribe', { uri: 'file:///z' })).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    await ask(a, 5, 'resources/unsubscribe', { uri: 'file:///y' });
    expect(await ask(a, 6, 'resources/subscribe', { uri: 'file:///z' })).toEqual({ jsonrpc: '2.0', id: 6, result: {} });
  });
});

describe('Multiplexer: logging/setLevel per session', () => {
  it('each session gets notifications/message at its own level; the child follows the most verbose level asked', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const [a, b, c] = [await openSession(mux), await openSession(mux), await openSession(mux)];
    // Nobody asked: the child keeps its default (it sends everything) and every session gets it.
    await c.call(1, 'log', { tag: 't0' });
    for (const s of [a, b, c]) expect(logOf(s, 't0')).toEqual(LEVELS);

    expect(await ask(a, 1, 'logging/setLevel', { level: 'error' })).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    expect(await ask(b, 1, 'logging/setLevel', { level: 'debug' })).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    expect((await muxStats(c)).levels).toEqual(['error', 'debug']);
    await c.call(2, 'log', { tag: 't1' });
    expect(logOf(a, 't1')).toEqual(['error', 'critical', 'alert', 'emergency']);
    expect(logOf(b, 't1')).toEqual(LEVELS);
    expect(logOf(c, 't1')).toEqual(LEVELS); // never set a level: what the child sends

    // The most verbose session leaves: the child goes back to the least verbose level still asked.
    await b.port.close();
    await waitFor(async () => (await muxStats(c)).levels.length === 3, { message: 'the child set back to error' });
    expect((await muxStats(c)).levels).toEqual(['error', 'debug', 'error']);
    await c.call(3, 'log', { tag: 't2' });
    expect(logOf(a, 't2')).toEqual(['error', 'critical', 'alert', 'emergency']);
    expect(logOf(c, 't2')).toEqual(['error', 'critical', 'alert', 'emergency']);

    // A change that leaves the minimum where it is is not sent.
    await ask(c, 4, 'logging/setLevel', { level: 'error' });
    await ask(a, 2, 'logging/setLevel', { level: 'critical' });
    expect((await muxStats(c)).levels).toEqual(['error', 'debug', 'error']);
    await c.call(5, 'log', { tag: 't3', levels: ['error', 'critical'] });
    expect(logOf(a, 't3')).toEqual(['critical']);
    expect(logOf(c, 't3')).toEqual(['error', 'critical']);
  });

  it('refuses a level that is not one of the eight with InvalidParams; nothing changes', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const a = await openSession(mux);
    const refused = (await ask(a, 1, 'logging/setLevel', { level: 'loud' })) as { error: { code: number; message: string } };
    expect(refused.error).toEqual({
      code: ErrorCode.InvalidParams,
      message: 'logging/setLevel: "level" must be one of debug, info, notice, warning, error, critical, alert, emergency',
    });
    await a.call(2, 'log', { tag: 't' });
    expect(logOf(a, 't')).toEqual(LEVELS);
    expect((await muxStats(a)).levels).toEqual([]);
  });
});
