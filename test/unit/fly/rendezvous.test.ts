/**
 * Rendezvous hashing: every machine agrees on a key's owner whatever the order of its list;
 * keys spread over the machines; a machine leaving moves only its own keys, and one joining
 * takes keys only for itself.
 */
import { describe, expect, it } from '@jest/globals';
import { ownerOf } from '../../../src/fly/rendezvous.js';

const keys = Array.from({ length: 3000 }, (_, i) => `client:${i % 37}\u0000key-${i}\u0000fingerprint-${i * 7}`);
const three = ['683d479c1d6e98', 'e2865641be4e18', '3d8d9e5b0c7418'];

describe('ownerOf', () => {
  it('is the same whatever the order of the list', () => {
    for (const key of keys.slice(0, 200)) expect(ownerOf(key, [...three].reverse())).toBe(ownerOf(key, three));
  });

  it('spreads keys over the machines', () => {
    const counts = new Map<string, number>();
    for (const key of keys) counts.set(ownerOf(key, three)!, (counts.get(ownerOf(key, three)!) ?? 0) + 1);
    for (const machine of three) expect(counts.get(machine)).toBeGreaterThan(800);
  });

  it('moves only the keys of a machine that leaves', () => {
    const [gone, ...rest] = three as [string, string, string];
    let moved = 0;
    for (const key of keys) {
      const before = ownerOf(key, three);
      const after = ownerOf(key, rest);
      if (before === gone) {
        moved += 1;
        expect(rest).toContain(after);
      } else expect(after).toBe(before);
    }
    expect(moved).toBeGreaterThan(0);
  });

  it('gives a machine that joins only keys it now owns', () => {
    const joined = [...three, '9185340ec3d958'];
    for (const key of keys) {
      const after = ownerOf(key, joined);
      if (after !== '9185340ec3d958') expect(after).toBe(ownerOf(key, three));
    }
  });

  it('has no owner in an empty list', () => {
    expect(ownerOf('k', [])).toBeUndefined();
  });
});
