/**
 * Rendezvous (highest random weight) hashing: each key is owned by the machine whose
 * hash of (machine, key) is highest. Every machine that sees the same list agrees on the
 * owner without talking to the others, and a machine leaving moves only the keys it owned
 * (each to its own runner-up); a machine joining takes only the keys it now wins.
 */
import { createHash } from 'node:crypto';

function weight(machine: string, key: string): bigint {
  return createHash('sha256').update(machine).update('\u0000').update(key).digest().readBigUInt64BE(0);
}

/** The owner of `key` among `machines` (undefined for an empty list). Ties go to the smaller id. */
export function ownerOf(key: string, machines: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1n;
  for (const machine of machines) {
    const w = weight(machine, key);
    if (w > bestWeight || (w === bestWeight && best !== undefined && machine < best)) {
      best = machine;
      bestWeight = w;
    }
  }
  return best;
}
