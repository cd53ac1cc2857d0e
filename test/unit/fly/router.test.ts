/**
 * Where the router sends a 2026-07-28 request: the owner of its conversation by rendezvous
 * hashing, or, for the retry of a held request, the machine its sealed requestState names
 * while that machine is live; never anywhere once replayed, nor before a list is known; an
 * oversized or chunked body gets its explicit answer instead of a replay.
 */
import { describe, expect, it } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import { FlyRouter } from '../../../src/fly/router.js';
import { ownerOf } from '../../../src/fly/rendezvous.js';
import { MachineSessionIds } from '../../../src/fly/sessionIds.js';
import { deploymentKey } from '../../../src/modern/conversations.js';
import { RequestStateSealer } from '../../../src/modern/requestState.js';
import type { RoutedRequest } from '../../../src/transports/routed.js';

const SECRET = 'deployment-secret-0123';
const machines = ['m1', 'm2', 'm3'];
const sealer = new RequestStateSealer(deploymentKey(SECRET, 'request state'));
let live: readonly string[] | undefined = machines;
const router = new FlyRouter({ sessionIds: new MachineSessionIds('m1', deploymentKey(SECRET, 'session id')), machines: { current: () => live }, sealer });

function request(headers: Record<string, string> = {}, params: Record<string, unknown> = {}): RoutedRequest {
  return { req: { headers } as unknown as IncomingMessage, body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params } } as RoutedRequest;
}

/** A conversation key owned by `machine` among `among`. */
function keyOwnedBy(machine: string, among = machines): string {
  for (let i = 0; ; i += 1) if (ownerOf(`k${i}`, among) === machine) return `k${i}`;
}

const sealed = (machine: string | undefined) =>
  sealer.seal({ nonce: 'n', principal: 'p', method: 'tools/call', digest: 'd', expires: Date.now() + 60_000, ...(machine ? { machine } : {}) });

describe('FlyRouter.modern', () => {
  it('serves a conversation it owns, replays one another machine owns', () => {
    live = machines;
    expect(router.modern(request(), () => keyOwnedBy('m1'))).toBeUndefined();
    const elsewhere = router.modern(request(), () => keyOwnedBy('m3'));
    expect(elsewhere?.code).toBe('misdirected');
    expect(elsewhere?.headers['fly-replay']).toBe('instance=m3;fallback=force_self');
  });

  it('sends a retry to the machine its requestState names while it is live, else to the owner', () => {
    live = machines;
    const owned = keyOwnedBy('m1');
    expect(router.modern(request({}, { requestState: sealed('m2') }), () => owned)?.headers['fly-replay']).toBe('instance=m2;fallback=force_self');
    expect(router.modern(request({}, { requestState: sealed('m9') }), () => owned)).toBeUndefined();
    expect(router.modern(request({}, { requestState: sealed(undefined) }), () => owned)).toBeUndefined();
    // A state this deployment did not seal names nothing.
    const forged = sealed('m2').replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    expect(router.modern(request({}, { requestState: forged }), () => owned)).toBeUndefined();
  });

  it('serves here what was already replayed, what it cannot name, and everything before a list is known', () => {
    live = machines;
    const other = keyOwnedBy('m2');
    expect(router.modern(request({ 'fly-replay-src': 'instance=m2' }), () => other)).toBeUndefined();
    expect(router.modern(request({ 'fly-replay-failed': 'instance=m2;reason=timeout' }), () => other)).toBeUndefined();
    expect(
      router.modern(request(), () => {
        throw new Error('env refused');
      }),
    ).toBeUndefined();
    live = undefined;
    expect(router.modern(request(), () => other)).toBeUndefined();
  });

  it('answers 413 or 411 instead of replaying a body Fly cannot replay', () => {
    live = machines;
    const other = keyOwnedBy('m2');
    expect(router.modern(request({ 'content-length': '1000001' }), () => other)?.code).toBe('payload_too_large');
    expect(router.modern(request({ 'content-length': '1000000' }), () => other)?.code).toBe('misdirected');
    expect(router.modern(request({ 'transfer-encoding': 'chunked' }), () => other)?.code).toBe('length_required');
  });

  it('rebalances when a machine leaves: its keys move, the others stay', () => {
    live = ['m1', 'm3'];
    expect(router.modern(request(), () => keyOwnedBy('m2'))?.headers['fly-replay'] ?? 'here').toMatch(/^(here|instance=m3;fallback=force_self)$/);
    const m3Key = keyOwnedBy('m3');
    expect(router.modern(request(), () => m3Key)?.headers['fly-replay']).toBe('instance=m3;fallback=force_self');
  });
});
