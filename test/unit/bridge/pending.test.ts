import { describe, expect, it } from '@jest/globals';
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';
import { PendingRequests } from '../../../src/bridge/pending.js';

function request(id: string | number, progressToken?: unknown): JSONRPCRequest {
  const params = progressToken === undefined ? { name: 'echo' } : { name: 'echo', _meta: { progressToken } };
  return { jsonrpc: '2.0', id, method: 'tools/call', params } as JSONRPCRequest;
}

describe('PendingRequests', () => {
  it('starts empty', () => {
    const pending = new PendingRequests();
    expect(pending.size).toBe(0);
    expect(pending.drain()).toEqual([]);
    expect(pending.byProgressToken('t')).toBeUndefined();
    expect(pending.byProgressToken(undefined)).toBeUndefined();
  });

  it('counts requests by id, string and number ids alike', () => {
    const pending = new PendingRequests();
    pending.add(request(1));
    pending.add(request('1'));
    pending.add(request('abc'));
    expect(pending.size).toBe(3); // 1 and '1' are different JSON-RPC ids
  });

  it('maps string and number progress tokens (0 included) to their request', () => {
    const pending = new PendingRequests();
    pending.add(request(1, 'tok-a'));
    pending.add(request('two', 42));
    pending.add(request(3, 0));
    expect(pending.byProgressToken('tok-a')).toBe(1);
    expect(pending.byProgressToken(42)).toBe('two');
    expect(pending.byProgressToken(0)).toBe(3);
    expect(pending.byProgressToken('42')).toBeUndefined(); // no type coercion
  });

  it('ignores progress tokens that are neither strings nor numbers', () => {
    const pending = new PendingRequests();
    pending.add(request(1, { nested: true }));
    pending.add(request(2, null));
    pending.add(request(3, true));
    expect(pending.size).toBe(3);
    expect(pending.byProgressToken('[object Object]')).toBeUndefined();
    expect(pending.byProgressToken(1)).toBeUndefined();
  });

  it('a request without params or _meta is tracked without a token', () => {
    const pending = new PendingRequests();
    pending.add({ jsonrpc: '2.0', id: 7, method: 'ping' } as JSONRPCRequest);
    expect(pending.size).toBe(1);
    expect(pending.delete(7)).toBe(true);
    expect(pending.size).toBe(0);
  });

  it('delete removes the request and its token; true only the first time', () => {
    const pending = new PendingRequests();
    pending.add(request(1, 'tok'));
    pending.add(request(2, 'other'));
    expect(pending.delete(1)).toBe(true);
    expect(pending.size).toBe(1);
    expect(pending.byProgressToken('tok')).toBeUndefined();
    expect(pending.byProgressToken('other')).toBe(2);
    expect(pending.delete(1)).toBe(false);
    expect(pending.delete('1')).toBe(false);
    expect(pending.delete(99)).toBe(false);
    expect(pending.size).toBe(1);
  });

  it('drain returns every pending id once and leaves nothing behind', () => {
    const pending = new PendingRequests();
    pending.add(request(1, 'a'));
    pending.add(request('x', 5));
    pending.add(request(3));
    expect(pending.drain().sort((a, b) => String(a).localeCompare(String(b)))).toEqual([1, 3, 'x']);
    expect(pending.size).toBe(0);
    expect(pending.byProgressToken('a')).toBeUndefined();
    expect(pending.byProgressToken(5)).toBeUndefined();
    expect(pending.drain()).toEqual([]);
    expect(pending.delete(1)).toBe(false);
  });

  it('is usable again after a drain', () => {
    const pending = new PendingRequests();
    pending.add(request(1, 'a'));
    pending.drain();
    pending.add(request(1, 'b'));
    expect(pending.size).toBe(1);
    expect(pending.byProgressToken('b')).toBe(1);
    expect(pending.byProgressToken('a')).toBeUndefined();
  });

  // Progress tokens MUST be unique among a session's active requests (MCP spec), so this
  // only matters for a misbehaving client; a one-line fix keeps one client's mistake from
  // misrouting another request's progress: delete the token only if it still maps to `id`.
  it('deleting a request does not unmap a token that a later request reused', () => {
    const pending = new PendingRequests();
    pending.add(request(1, 'shared'));
    pending.add(request(2, 'shared')); // the token now belongs to request 2
    expect(pending.byProgressToken('shared')).toBe(2);
    pending.delete(1);
    expect(pending.byProgressToken('shared')).toBe(2);
  });

  it('keeps a cancelled id taken until its late reply, which is then marked cancelled', () => {
    const pending = new PendingRequests();
    pending.add(request(7, 'tok'));
    expect(pending.cancel(7)).toBe(true);
    expect(pending.cancel(7)).toBe(false);
    expect(pending.has(7)).toBe(true);
    expect(pending.size).toBe(0);
    expect(pending.byProgressToken('tok')).toBeUndefined();
    expect(pending.take(7)).toMatchObject({ method: 'tools/call', cancelled: true });
    expect(pending.has(7)).toBe(false);
  });

  it('tells 1 and "1" apart', () => {
    const pending = new PendingRequests();
    pending.add(request(1, undefined));
    expect(pending.has(1)).toBe(true);
    expect(pending.has('1')).toBe(false);
  });

  it('remembers at most 1024 cancelled requests, forgetting the oldest', () => {
    const pending = new PendingRequests();
    for (let id = 0; id < 1025; id += 1) {
      pending.add(request(id, undefined));
      pending.cancel(id);
    }
    expect(pending.has(0)).toBe(false);
    expect(pending.has(1)).toBe(true);
    expect(pending.has(1024)).toBe(true);
    expect(pending.drain()).toEqual([]);
  });
});
