/**
 * Session ids that name the machine holding the session. On Fly.io a session lives in one
 * machine's memory, so its id says which: `<machine>.<random>.<mac>`, where the mac is an
 * HMAC (with a key derived from the deployment's shared secret, the same on every machine)
 * over the machine and the random part. A client can neither forge an id nor retarget one
 * to another machine, and the random part (128 bits) keeps ids unguessable. Outside Fly
 * (no machine id) ids stay plain random UUIDs.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

/** Letters, digits, `_` and `-`: what a Fly machine id is made of (never a dot). */
export const MACHINE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** A new session id: the gateway's one source of them. */
export type MintSessionId = () => string;

/** Outside Fly: a random UUID. */
export const plainSessionId: MintSessionId = () => randomUUID();

/** What an id says about where its session lives. */
export type SessionIdReading =
  /** Not shaped like a machine-bound id (a plain UUID, or anything else): an unknown session here. */
  | { readonly kind: 'plain' }
  /** Shaped like one, but the mac does not match: forged or tampered with. */
  | { readonly kind: 'forged' }
  | { readonly kind: 'bound'; readonly machine: string };

const RANDOM_BYTES = 16;
/** 22 base64url characters: 132 bits of the HMAC. */
const MAC_CHARS = 22;
const SHAPE = /^([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})$/;

export class MachineSessionIds {
  constructor(
    readonly machine: string,
    private readonly key: Buffer,
  ) {
    if (!MACHINE_ID.test(machine)) throw new TypeError('machine id must be 1-64 letters, digits, _ or -');
  }

  /** A new id naming this machine. */
  readonly mint: MintSessionId = () => {
    const random = randomBytes(RANDOM_BYTES).toString('base64url');
    return `${this.machine}.${random}.${this.mac(this.machine, random)}`;
  };

  read(id: string): SessionIdReading {
    const match = SHAPE.exec(id);
    if (!match) return { kind: 'plain' };
    const [, machine, random, mac] = match as unknown as [string, string, string, string];
    const expected = Buffer.from(this.mac(machine, random));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { kind: 'forged' };
    return { kind: 'bound', machine };
  }

  private mac(machine: string, random: string): string {
    return createHmac('sha256', this.key).update(`session ${machine}.${random}`).digest('base64url').slice(0, MAC_CHARS);
  }
}
