/**
 * Sealing: what the authorization server hands out (authorization codes, access and refresh
 * tokens, consent forms, dynamic registrations) is encrypted and authenticated with
 * AES-256-GCM under a key derived from WARDEN_OAUTH_KEY, with its expiry inside. Any machine
 * holding the key opens what another sealed, so nothing but refresh-token state and
 * revocations needs a shared store.
 *
 * Each purpose has its own derived key and is bound as additional data, so a code never opens
 * as a token and a consent form never opens as a code. WARDEN_OAUTH_KEY_PREVIOUS opens (and
 * verifies MACs) during a rotation; it never seals.
 *
 * Wire form: base64url(version 1 | key id (4) | iv (12) | tag (16) | ciphertext), where the
 * plaintext is JSON `{ v: value, x: expiry in ms since the epoch }`.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

export type SealPurpose = 'code' | 'access' | 'refresh' | 'consent' | 'csrf' | 'client' | 'replay' | 'client-secret';

export type Opened<T> = { readonly ok: true; readonly value: T; readonly expiresAt: number } | { readonly ok: false; readonly reason: 'invalid' | 'expired' };

const VERSION = 1;
const SALT = 'mcp-warden oauth v1';
const HEADER = 1 + 4 + 12 + 16;

interface DerivedKey {
  readonly id: Buffer;
  readonly secret: string;
  readonly keys: Map<SealPurpose, Buffer>;
}

function derive(secret: string, info: string, length = 32): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), SALT, info, length));
}

function keyFor(key: DerivedKey, purpose: SealPurpose): Buffer {
  let found = key.keys.get(purpose);
  if (!found) {
    found = derive(key.secret, `seal ${purpose}`);
    key.keys.set(purpose, found);
  }
  return found;
}

export interface SealerOptions {
  /** The clock, ms since the epoch. @default Date.now */
  readonly now?: () => number;
}

export class Sealer {
  private readonly current: DerivedKey;
  private readonly previous: DerivedKey | undefined;
  private readonly now: () => number;

  /** @throws {TypeError} when a key is shorter than 32 characters. */
  constructor(key: string, previousKey?: string, options: SealerOptions = {}) {
    for (const [name, value] of [
      ['WARDEN_OAUTH_KEY', key],
      ['WARDEN_OAUTH_KEY_PREVIOUS', previousKey],
    ] as const) {
      if (value !== undefined && (typeof value !== 'string' || value.length < 32)) throw new TypeError(`${name} must be at least 32 characters`);
    }
    const make = (secret: string): DerivedKey => ({ id: derive(secret, 'key id', 4), secret, keys: new Map() });
    this.current = make(key);
    this.previous = previousKey === undefined ? undefined : make(previousKey);
    this.now = options.now ?? Date.now;
  }

  /** Seals `value` for `purpose`, valid for `ttlMs`. */
  seal(purpose: SealPurpose, value: unknown, ttlMs: number): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', keyFor(this.current, purpose), iv);
    cipher.setAAD(Buffer.from(purpose, 'utf8'));
    const plain = Buffer.from(JSON.stringify({ v: value, x: this.now() + ttlMs }), 'utf8');
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), this.current.id, iv, cipher.getAuthTag(), body]).toString('base64url');
  }

  /** Opens what `seal` made for the same purpose, with either key; says whether it expired or never was ours. */
  open<T>(purpose: SealPurpose, text: string): Opened<T> {
    if (typeof text !== 'string' || text.length > 16_384 || !/^[A-Za-z0-9_-]+$/.test(text)) return { ok: false, reason: 'invalid' };
    const raw = Buffer.from(text, 'base64url');
    if (raw.length <= HEADER || raw[0] !== VERSION) return { ok: false, reason: 'invalid' };
    const id = raw.subarray(1, 5);
    const key = id.equals(this.current.id) ? this.current : this.previous && id.equals(this.previous.id) ? this.previous : undefined;
    if (!key) return { ok: false, reason: 'invalid' };
    let parsed: { v: T; x: number };
    try {
      const decipher = createDecipheriv('aes-256-gcm', keyFor(key, purpose), raw.subarray(5, 17));
      decipher.setAAD(Buffer.from(purpose, 'utf8'));
      decipher.setAuthTag(raw.subarray(17, 33));
      const plain = Buffer.concat([decipher.update(raw.subarray(HEADER)), decipher.final()]);
      parsed = JSON.parse(plain.toString('utf8')) as { v: T; x: number };
    } catch {
      return { ok: false, reason: 'invalid' };
    }
    if (typeof parsed.x !== 'number' || this.now() > parsed.x) return { ok: false, reason: 'expired' };
    return { ok: true, value: parsed.v, expiresAt: parsed.x };
  }

  /** HMAC-SHA256 of `text` under the current key (e.g. a confidential client's secret). */
  mac(purpose: SealPurpose, text: string): string {
    return createHmac('sha256', keyFor(this.current, purpose)).update(text, 'utf8').digest('base64url');
  }

  /** True when `mac` is `text`'s MAC under the current or the previous key (constant time per key). */
  macMatches(purpose: SealPurpose, text: string, mac: string): boolean {
    const presented = Buffer.from(String(mac), 'utf8');
    let match = false;
    for (const key of [this.current, this.previous]) {
      if (!key) continue;
      const expected = Buffer.from(createHmac('sha256', keyFor(key, purpose)).update(text, 'utf8').digest('base64url'), 'utf8');
      if (expected.length === presented.length && timingSafeEqual(expected, presented)) match = true;
    }
    return match;
  }
}

/** A random identifier: `prefix` + 128 bits, base64url. */
export function randomId(prefix: string, bytes = 16): string {
  return `${prefix}${randomBytes(bytes).toString('base64url')}`;
}
