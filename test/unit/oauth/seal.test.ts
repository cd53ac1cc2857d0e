/**
 * Sealing: round trip, a purpose never opens as another, expiry is told apart from a
 * forgery, a tampered byte fails, and during a rotation the previous key opens (and its MACs
 * verify) while only the new key seals.
 */
import { describe, expect, it } from '@jest/globals';
import { Sealer } from '../../../src/oauth/seal.js';

const KEY = 'k'.repeat(40);
const OLD = 'o'.repeat(40);

describe('Sealer', () => {
  it('opens what it sealed, for the same purpose only', () => {
    const sealer = new Sealer(KEY);
    const sealed = sealer.seal('code', { a: 1 }, 60_000);
    expect(sealer.open('code', sealed)).toMatchObject({ ok: true, value: { a: 1 } });
    expect(sealer.open('access', sealed)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('tells an expired seal from a forged one', () => {
    let now = 1_000;
    const sealer = new Sealer(KEY, undefined, { now: () => now });
    const sealed = sealer.seal('access', 'x', 10);
    now = 1_011;
    expect(sealer.open('access', sealed)).toEqual({ ok: false, reason: 'expired' });
    const bytes = Buffer.from(sealed, 'base64url');
    bytes[bytes.length - 1]! ^= 1;
    expect(sealer.open('access', bytes.toString('base64url'))).toEqual({ ok: false, reason: 'invalid' });
    expect(sealer.open('access', 'not sealed at all')).toEqual({ ok: false, reason: 'invalid' });
  });

  it('refuses what another key sealed', () => {
    expect(new Sealer(KEY).open('code', new Sealer(OLD).seal('code', 1, 60_000))).toEqual({ ok: false, reason: 'invalid' });
  });

  it("during a rotation opens the previous key's seals and MACs, and seals with the new key only", () => {
    const before = new Sealer(OLD);
    const during = new Sealer(KEY, OLD);
    expect(during.open('refresh', before.seal('refresh', 'r', 60_000))).toMatchObject({ ok: true, value: 'r' });
    expect(during.macMatches('client-secret', 'id', before.mac('client-secret', 'id'))).toBe(true);
    expect(new Sealer(KEY).open('refresh', during.seal('refresh', 'n', 60_000))).toMatchObject({ ok: true, value: 'n' });
    expect(before.open('refresh', during.seal('refresh', 'n', 60_000))).toEqual({ ok: false, reason: 'invalid' });
    expect(during.macMatches('client-secret', 'id', 'wrong')).toBe(false);
  });

  it('refuses a key shorter than 32 characters', () => {
    expect(() => new Sealer('short')).toThrow(/at least 32 characters/);
  });
});
