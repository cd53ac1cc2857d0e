/**
 * Principals are one caller only when both kind and id agree. A clients-file entry whose
 * id equals the shared-secret principal's (the loader refuses one; here it is built by
 * hand, as a future grant or a loader bug could) must not reach a session opened with the
 * shared secret, nor share its per-client limits.
 */
import { describe, expect, it } from '@jest/globals';
import { SHARED_SECRET_ID, digest, samePrincipal, sharedSecretPrincipal, type Principal } from '../../../src/auth/bearer.js';
import { multiTokenVerifier } from '../../../src/auth/clients.js';
import type { Bridge } from '../../../src/bridge/bridge.js';
import { clientKey } from '../../../src/http/clientAddress.js';
import { Session, SessionStore } from '../../../src/transports/sessions.js';
import type { StreamableSessionTransport } from '../../../src/transports/streamableSession.js';

const SHARED = 'the-shared-secret-value-42';
const COLLIDING_TOKEN = 'colliding-client-token-0001';
const colliding: Principal = Object.freeze({ kind: 'client', clientId: SHARED_SECRET_ID, role: 'admin' });

/** A session record for lookups only: find() never touches its bridge. */
function sessionOf(id: string, principal: Principal): Session {
  return new Session(id, 'streamable', 'cmd', principal, 'key', {} as StreamableSessionTransport, {} as Bridge);
}

describe('principal identity is kind and id', () => {
  it('samePrincipal compares kind and id, not role', () => {
    const shared = sharedSecretPrincipal('admin');
    expect(samePrincipal(shared, sharedSecretPrincipal('reader'))).toBe(true);
    expect(samePrincipal(shared, colliding)).toBe(false);
    expect(samePrincipal(colliding, { kind: 'client', clientId: SHARED_SECRET_ID, role: 'user' })).toBe(true);
    expect(samePrincipal(colliding, { kind: 'client', clientId: 'other', role: 'admin' })).toBe(false);
  });

  it('a session opened with the shared secret is not found for a client whose id collides', () => {
    const verify = multiTokenVerifier(SHARED, 'admin', [{ digest: digest(COLLIDING_TOKEN), principal: colliding }]);
    const owner = verify(SHARED)!;
    const intruder = verify(COLLIDING_TOKEN)!;
    expect(owner.kind).toBe('shared-secret');
    expect(intruder).toEqual({ kind: 'client', clientId: SHARED_SECRET_ID, role: 'admin' });

    const store = new SessionStore();
    store.add(sessionOf('sess-shared', owner));
    store.add(sessionOf('sess-client', intruder));
    expect(store.find('sess-shared', 'streamable', 'cmd', owner)?.id).toBe('sess-shared');
    expect(store.find('sess-shared', 'streamable', 'cmd', intruder)).toBeUndefined();
    expect(store.find('sess-client', 'streamable', 'cmd', intruder)?.id).toBe('sess-client');
    expect(store.find('sess-client', 'streamable', 'cmd', owner)).toBeUndefined();
  });

  it('per-client limits count a colliding client apart from shared-secret callers', () => {
    expect(clientKey(sharedSecretPrincipal('admin'))).toBe(`shared-secret:${SHARED_SECRET_ID}`);
    expect(clientKey(colliding)).toBe(`client:${SHARED_SECRET_ID}`);
    expect(clientKey({ kind: 'client', clientId: 'bob', role: 'user' })).toBe('client:bob');
  });
});
