/**
 * The multiplexer on a real shared child (mux-server): one initialize for every session,
 * ids and progress tokens rewritten on the way in and restored on the way out,
 * cancellations mapped to the child's id, notifications broadcast, server requests and
 * tasks refused, and the child's death ending every session.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { ErrorCode, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { readFileSync } from 'node:fs';
import { ERROR_TABLE } from '../../../src/errors.js';
import type { Multiplexer } from '../../../src/process/multiplexer.js';
import { captureLogger, stderrLines } from '../../helpers/children.js';
import { withId } from '../../helpers/fakeTransports.js';
import { muxStats, openSession, startMux, textOf } from '../../helpers/mux.js';
import { waitFor, waitForNoDescendants } from '../../helpers/procs.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
const GATEWAY_ID = /^w\d+$/;

let mux: Multiplexer | undefined;

afterEach(async () => {
  await mux?.close();
  mux = undefined;
  await waitForNoDescendants(process.pid, { timeoutMs: 5_000 });
});

const paramsOf = (m: JSONRPCMessage) => (m as { params?: Record<string, unknown> }).params ?? {};
const methodOf = (m: JSONRPCMessage) => ('method' in m ? m.method : undefined);

describe('Multiplexer', () => {
  it('initializes the child once, announcing the package name and version; each session is answered from that', async () => {
    const { logger } = captureLogger();
    mux = await startMux(logger);
    const a = await openSession(mux);
    const b = await openSession(mux);

    await a.port.send({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 'a', version: '1' } } });
    await b.port.send({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: '1999-01-01', capabilities: {}, clientInfo: { name: 'b', version: '1' } } });
    const replyA = (await a.received.next(withId(0), 'initialize reply')) as unknown as { result: { protocolVersion: string; serverInfo: { name: string } } };
    const replyB = (await b.received.next(withId('init'), 'initialize reply')) as unknown as { result: { protocolVersion: string; capabilities: Record<string, unknown> } };
    expect(replyA.result.protocolVersion).toBe('2025-03-26');
    expect(replyA.result.serverInfo.name).toBe('mux-server');
    // An unsupported version gets the one the child agreed to; no task capability is offered.
    expect(replyB.result.protocolVersion).not.toBe('1999-01-01');
    expect(replyB.result.capabilities).not.toHaveProperty('tasks');

    const stats = await muxStats(a);
    expect(stats.initializes).toBe(1);
    expect(stats.clientInfo).toEqual({ name: pkg.name, version: pkg.version });
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
