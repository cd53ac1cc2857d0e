/**
 * The bridge's message logic with in-memory transports on both sides (a fake client and a
 * fake child): attribution of replies, refusal of ids already in flight, cancellation and
 * late replies, progress routing, the child's own requests, the guard's answers and
 * ordering, the initialize bound, and a child that ends with requests in flight.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { JSONRPCMessage, JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import { Bridge, type BridgeOptions } from '../../../src/bridge/bridge.js';
import { DuplicateRequestIdError, ERROR_TABLE, UpstreamExitedError } from '../../../src/errors.js';
import { DROP, FORWARD, type InboundResult, type MessageGuard } from '../../../src/policy/guard.js';
import { captureLogger, type LogEntry } from '../../helpers/children.js';
import { FakeChild, FakeClient, withId } from '../../helpers/fakeTransports.js';
import { waitFor } from '../../helpers/procs.js';

interface Wired {
  readonly bridge: Bridge;
  readonly client: FakeClient;
  readonly child: FakeChild;
  readonly entries: LogEntry[];
}

const open: Bridge[] = [];

afterEach(async () => {
  jest.useRealTimers();
  await Promise.all(open.splice(0).map((b) => b.close()));
});

async function wire(options: Partial<BridgeOptions> = {}): Promise<Wired> {
  const { logger, entries } = captureLogger();
  const client = new FakeClient();
  const child = new FakeChild();
  const bridge = new Bridge(client, child, { logger, tags: { session: 'test' }, ...options });
  open.push(bridge);
  await bridge.start();
  return { bridge, client, child, entries };
}

const call = (id: string | number, name = 'echo', meta?: Record<string, unknown>): JSONRPCRequest => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: {}, ...(meta ? { _meta: meta } : {}) },
});
const result = (id: string | number, text = 'ok'): JSONRPCMessage => ({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text }] } });
const progress = (token: string | number, n = 1): JSONRPCMessage => ({
  jsonrpc: '2.0',
  method: 'notifications/progress',
  params: { progressToken: token, progress: n },
});
const cancelled = (requestId: string | number): JSONRPCMessage => ({
  jsonrpc: '2.0',
  method: 'notifications/cancelled',
  params: { requestId, reason: 'user' },
});
const dropLogs = (entries: readonly LogEntry[]) => entries.filter((e) => e.message.startsWith('dropped ')).map((e) => e.message);

describe('Bridge', () => {
  it('forwards requests as they are and answers each on its own request stream, in whatever order the child replies', async () => {
    const activity = jest.fn();
    const observed: [string, number][] = [];
    const w = await wire({ onActivity: activity, requestSeconds: { observe: (l, s) => observed.push([l.method, s]) } });
    w.client.receive(call(1));
    w.client.receive(call('two', 'other'));
    expect(w.child.received.items).toEqual([call(1), call('two', 'other')]);
    expect(w.bridge.inFlight).toBe(2);

    w.child.emit(result('two', 'second'));
    w.child.emit(result(1, 'first'));
    expect(w.client.sent.items).toEqual([
      { message: result('two', 'second'), relatedRequestId: 'two' },
      { message: result(1, 'first'), relatedRequestId: 1 },
    ]);
    expect(w.bridge.inFlight).toBe(0);
    expect(observed.map(([method]) => method)).toEqual(['tools/call', 'tools/call']);
    expect(activity).toHaveBeenCalledTimes(4);
  });

  it('drops, and logs, a reply that matches no request in flight and a client response to no server request', async () => {
    const w = await wire();
    w.child.emit(result(99));
    w.client.receive(result('srv-1'));
    expect(w.client.sent.items).toEqual([]);
    expect(w.child.received.items).toEqual([]);
    expect(dropLogs(w.entries)).toEqual([
      'dropped a reply that matches no request in flight',
      'dropped a client response that matches no request of the server',
    ]);
  });

  it('admit() refuses an id in flight or repeated within a batch, and frees an id once it is answered', async () => {
    const w = await wire();
    w.client.receive(call(1));
    expect(() => w.bridge.admit([call(1)])).toThrow(DuplicateRequestIdError);
    expect(() => w.bridge.admit([call(2), call(2)])).toThrow(DuplicateRequestIdError);
    // Notifications and responses carry no id to reserve; distinct new ids pass.
    expect(() => w.bridge.admit([call(2), call(3), cancelled(1), result(1)])).not.toThrow();

    w.child.emit(result(1));
    expect(() => w.bridge.admit([call(1)])).not.toThrow();
  });

  it('answers a repeated id that got past admit() with an error on the stream; the child never sees it', async () => {
    const w = await wire();
    w.client.receive(call(1, 'first'));
    w.client.receive(call(1, 'second'));
    expect(w.child.received.items).toEqual([call(1, 'first')]);
    expect(w.client.sent.items).toHaveLength(1);
    expect(w.client.sent.items[0]!.message).toMatchObject({
      id: 1,
      error: { code: ERROR_TABLE.duplicate_request_id.rpc, data: { code: 'duplicate_request_id' } },
    });

    // The first request is still the one the reply belongs to.
    w.child.emit(result(1, 'for first'));
    expect(w.client.sent.items[1]).toEqual({ message: result(1, 'for first'), relatedRequestId: 1 });
  });

  it('cancel: forwarded to the child; its progress and late reply are dropped; the id stays taken until that reply', async () => {
    const w = await wire();
    w.client.receive(call(5, 'slow', { progressToken: 'p5' }));
    w.client.receive(cancelled(5));
    expect(w.child.received.items).toEqual([call(5, 'slow', { progressToken: 'p5' }), cancelled(5)]);
    expect(w.bridge.inFlight).toBe(0);

    w.child.emit(progress('p5'));
    // A new request may not reuse the id while the cancelled one can still be answered.
    expect(() => w.bridge.admit([call(5)])).toThrow(DuplicateRequestIdError);
    w.child.emit(result(5, 'late'));
    expect(w.client.sent.items).toEqual([]);
    expect(dropLogs(w.entries)).toEqual(['dropped progress for no request in flight', 'dropped a late reply to a cancelled request']);

    expect(() => w.bridge.admit([call(5)])).not.toThrow();
  });

  it('routes progress to the stream of the request whose token it carries; progress for an unknown token is dropped', async () => {
    const w = await wire();
    w.client.receive(call(1, 'a', { progressToken: 'ta' }));
    w.client.receive(call(2, 'b', { progressToken: 7 }));
    w.child.emit(progress(7));
    w.child.emit(progress('ta'));
    w.child.emit(progress('nobody'));
    expect(w.client.sent.items).toEqual([
      { message: progress(7), relatedRequestId: 2 },
      { message: progress('ta'), relatedRequestId: 1 },
    ]);
    expect(dropLogs(w.entries)).toEqual(['dropped progress for no request in flight']);

    // Once answered, its token no longer routes.
    w.child.emit(result(2));
    w.child.emit(progress(7, 2));
    expect(w.client.sent.items.map((d) => d.message)).toEqual([progress(7), progress('ta'), result(2)]);
  });

  it("passes the child's own request to the client and the client's answer back once", async () => {
    const w = await wire();
    const roots: JSONRPCMessage = { jsonrpc: '2.0', id: 'srv-1', method: 'roots/list', params: {} };
    w.child.emit(roots);
    expect(w.client.sent.items).toEqual([{ message: roots, relatedRequestId: undefined }]);
    const answer: JSONRPCMessage = { jsonrpc: '2.0', id: 'srv-1', result: { roots: [] } };
    w.client.receive(answer);
    w.client.receive(answer);
    expect(w.child.received.items).toEqual([answer]);
    expect(dropLogs(w.entries)).toEqual(['dropped a client response that matches no request of the server']);
  });

  describe('with a guard', () => {
    /** A guard whose inbound decision is `decide`; the rest passes messages through, recording them. */
    function guard(decide: (m: JSONRPCMessage) => InboundResult | Promise<InboundResult>) {
      const outbound: [JSONRPCMessage, string | undefined][] = [];
      const g: MessageGuard & { outbound: MessageGuard['outbound']; closed: number; seen: typeof outbound } = {
        inbound: decide,
        outbound: (m, method) => {
          outbound.push([m, method]);
          return m;
        },
        outboundOther: (m) => ('method' in m && m.method === 'sampling/createMessage' ? undefined : m),
        close: () => void (g.closed += 1),
        closed: 0,
        seen: outbound,
      };
      return g;
    }

    it("delivers the guard's reply on the request's stream; the child never sees the request; the id is free again", async () => {
      const denial = (id: string | number): JSONRPCMessage => ({ jsonrpc: '2.0', id, error: { code: ERROR_TABLE.policy_denied.rpc, message: 'denied' } });
      const g = guard((m) => ('id' in m && m.id === 'no' ? { reply: denial('no') } : FORWARD));
      const w = await wire({ guard: g });
      w.client.receive(call('no', 'secret_tool'));
      w.client.receive(call('yes'));
      expect(w.child.received.items).toEqual([call('yes')]);
      expect(w.client.sent.items).toEqual([{ message: denial('no'), relatedRequestId: 'no' }]);
      expect(() => w.bridge.admit([call('no')])).not.toThrow();

      w.child.emit(result('yes'));
      expect(g.seen).toEqual([[result('yes'), 'tools/call']]);
      await w.bridge.close();
      expect(g.closed).toBe(1);
    });

    it('applies asynchronous decisions in arrival order; a failed decision answers its request with an internal error', async () => {
      let decideFirst!: (r: InboundResult) => void;
      let decideSecond!: (r: InboundResult) => void;
      const first = new Promise<InboundResult>((resolve) => (decideFirst = resolve));
      const second = new Promise<InboundResult>((resolve) => (decideSecond = resolve));
      const g = guard((m) => {
        if ('id' in m && m.id === 1) return first;
        if ('id' in m && m.id === 2) return second;
        if ('id' in m && m.id === 3) return Promise.reject(new Error('policy store down'));
        return FORWARD;
      });
      const w = await wire({ guard: g });
      w.client.receive(call(1));
      w.client.receive(call(2));
      w.client.receive(call(3));
      // Decided at once, but waits behind the calls before it.
      w.client.receive({ jsonrpc: '2.0', method: 'notifications/roots/list_changed' });
      expect(w.child.received.items).toEqual([]);

      decideFirst(FORWARD);
      await w.child.received.next(withId(1), 'call 1');
      await new Promise((resolve) => setImmediate(resolve)); // call 1's decision fully settled
      // Arrives while call 2 is still undecided: it queues too.
      w.client.receive(call(4));
      decideSecond(FORWARD);
      const failed = await w.client.sent.next(withId(3), 'the error for the failed decision');
      expect(failed.message).toMatchObject({ error: { code: ERROR_TABLE.internal.rpc, message: 'internal error' } });
      await w.child.received.next(withId(4), 'call 4');
      expect(w.child.received.items.map((m) => ('id' in m ? m.id : 'method' in m ? m.method : undefined))).toEqual([
        1,
        2,
        'notifications/roots/list_changed',
        4,
      ]);
      expect(w.entries.some((e) => e.message === 'policy check failed')).toBe(true);
    });

    it('drops what the guard drops; a server request it withholds is answered to the child with an error', async () => {
      const w = await wire({ guard: guard((m) => ('method' in m && m.method === 'notifications/cancelled' ? DROP : FORWARD)) });
      w.client.receive(cancelled(1));
      expect(w.child.received.items).toEqual([]);

      const sampling: JSONRPCMessage = { jsonrpc: '2.0', id: 'srv-9', method: 'sampling/createMessage', params: {} };
      w.child.emit(sampling);
      expect(w.client.sent.items).toEqual([]);
      const refusal = await w.child.received.next(withId('srv-9'), 'the refusal to the child');
      expect(refusal).toMatchObject({ error: { code: ERROR_TABLE.upstream_protocol.rpc } });
      // Withheld from the client, so a client "answer" to it is not forwarded either.
      w.client.receive({ jsonrpc: '2.0', id: 'srv-9', result: {} });
      expect(w.child.received.items).toEqual([refusal]);
    });
  });

  describe('initialize bound', () => {
    const initialize: JSONRPCRequest = {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    };

    it('an initialize the child never answers fails with upstream_timeout naming the setting; the session ends', async () => {
      jest.useFakeTimers();
      const w = await wire({ initializeTimeoutMs: 1_000 });
      let closed = false;
      w.bridge.onclose = () => (closed = true);
      w.client.receive(initialize);
      jest.advanceTimersByTime(999);
      expect(w.client.sent.items).toEqual([]);
      jest.advanceTimersByTime(1);

      const reply = await w.client.sent.next(withId(0), 'the timeout error');
      expect(reply.message).toMatchObject({ error: { code: ERROR_TABLE.upstream_timeout.rpc, data: { code: 'upstream_timeout' } } });
      expect((reply.message as { error: { message: string } }).error.message).toContain('--initialize-timeout-ms');
      await w.bridge.close();
      expect(closed).toBe(true);
      expect(w.child.closed).toBe(true);
      expect(w.client.closed).toBe(true);
    });

    it('an initialize answered in time leaves the session open after the bound', async () => {
      jest.useFakeTimers();
      const w = await wire({ initializeTimeoutMs: 1_000 });
      w.client.receive(initialize);
      w.child.emit({ jsonrpc: '2.0', id: 0, result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 's', version: '1' } } });
      jest.advanceTimersByTime(5_000);
      expect(w.client.sent.items).toHaveLength(1);
      expect(w.child.closed).toBe(false);
      expect(w.client.closed).toBe(false);
    });

    it('an error answer to initialize reaches the client unchanged, then the session ends', async () => {
      const w = await wire();
      let closed = false;
      w.bridge.onclose = () => (closed = true);
      w.client.receive(initialize);
      const refusal = { jsonrpc: '2.0' as const, id: 0, error: { code: -32602, message: 'Unsupported protocol version', data: { supported: ['2024-11-05'] } } };
      w.child.emit(refusal);
      expect((await w.client.sent.next(withId(0), 'the refusal')).message).toEqual(refusal);
      await waitFor(() => closed, { message: 'the session closed' });
      expect(w.child.closed).toBe(true);
      expect(w.client.closed).toBe(true);
    });

    it('a -32022 naming only 2026 revisions says that the server needs a 2026-07-28 client; code and data stay', async () => {
      const w = await wire();
      w.client.receive(initialize);
      const data = { supported: ['2026-07-28'], requested: '2025-06-18' };
      w.child.emit({ jsonrpc: '2.0', id: 0, error: { code: -32022, message: 'Unsupported protocol version', data } });
      const { error } = (await w.client.sent.next(withId(0), 'the refusal')).message as unknown as { error: { code: number; message: string; data: unknown } };
      expect(error.code).toBe(-32022);
      expect(error.data).toEqual(data);
      expect(error.message).toMatch(/^Unsupported protocol version \(this MCP server speaks only protocol revision 2026-07-28, /);
      expect(error.message).toContain('the gateway does not translate a 2025 session');
    });
  });

  it("answers every request in flight with the child's reason when the child ends; cancelled ones get nothing", async () => {
    const w = await wire();
    let closes = 0;
    w.bridge.onclose = () => (closes += 1);
    w.client.receive(call(1));
    w.client.receive(call('b'));
    w.client.receive(call(3));
    w.client.receive(cancelled(3));
    w.child.die(new UpstreamExitedError('code 3'));
    await w.bridge.close();

    const errors = w.client.sent.items.map((d) => [d.relatedRequestId, (d.message as { error?: { message: string } }).error?.message]);
    expect(errors).toEqual([
      [1, 'MCP server exited: code 3'],
      ['b', 'MCP server exited: code 3'],
    ]);
    expect(closes).toBe(1);
    expect(w.client.closed).toBe(true);
  });
});
