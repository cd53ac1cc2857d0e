/**
 * The text of one audit line: `{"ts":ISO-8601,"seq":n,"event":"<name>",...fields,"prev":"<64 hex>"}`,
 * safe to print (secret-like keys replaced, terminal controls escaped, long strings cut),
 * and the chain hash that links each line to the next.
 */
import { createHash, createHmac } from 'node:crypto';

/** `prev` of the first line of a chain. */
export const GENESIS_PREV = '0'.repeat(64);

/** Longest string value written, in UTF-16 code units; longer ones are cut. */
export const MAX_STRING_LENGTH = 4096;
const TRUNCATED = '…[truncated]';
/** Keys whose values are never written, at any depth. */
export const SECRET_KEY = /token|secret|password|authorization|cookie|^env$|^env_/i;
export const OMITTED = '[omitted]';
/** Keys the log sets itself; a field with one of these names is dropped. */
const RESERVED_KEYS = new Set(['ts', 'seq', 'event', 'prev']);
/** Nesting depth below which objects are written as `"[too deep]"`. */
const MAX_DEPTH = 8;
/** Characters JSON.stringify leaves raw that a terminal or a line splitter may act on. */
const UNSAFE_CHARS = /[\u007f-\u009f\u2028\u2029]/g;

/** The chain hash of one line's text: hex SHA-256, or hex HMAC-SHA256 when keyed. */
export function chainHash(text: string, hmacKey?: string): string {
  const hash = hmacKey === undefined ? createHash('sha256') : createHmac('sha256', hmacKey);
  return hash.update(text, 'utf8').digest('hex');
}

export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** `value` cut to MAX_STRING_LENGTH plus a marker, never inside a surrogate pair. */
export function clip(value: string): string {
  if (value.length <= MAX_STRING_LENGTH) return value;
  let end = MAX_STRING_LENGTH;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1; // do not split a surrogate pair
  return value.slice(0, end) + TRUNCATED;
}

/** A JSON-safe copy of `value`: secret-like keys omitted, strings cut, cycles named. */
function clean(value: unknown, depth: number, seen: Set<object>): unknown {
  switch (typeof value) {
    case 'string':
      return clip(value);
    case 'number':
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return null;
  const object = value as object;
  if (seen.has(object)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  seen.add(object);
  try {
    if (object instanceof Error) {
      return { name: clip(object.name), message: clip(object.message) };
    }
    const toJSON = (object as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return clean(toJSON.call(object), depth + 1, seen);
    if (Array.isArray(object)) return object.map((item) => clean(item, depth + 1, seen) ?? null);
    const copy: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [key, item] of Object.entries(object)) {
      copy[key] = SECRET_KEY.test(key) ? OMITTED : clean(item, depth + 1, seen);
    }
    return copy;
  } finally {
    seen.delete(object);
  }
}

/** Escapes what JSON.stringify leaves raw (DEL, C1 controls, U+2028/U+2029). */
function escapeUnsafe(json: string): string {
  return json.replace(UNSAFE_CHARS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * One line's text (no line break). Fields named ts/seq/event/prev are dropped; secret-like
 * keys are replaced by "[omitted]" at any depth. Throws when a field cannot be read.
 */
export function formatLine(event: string, fields: Record<string, unknown>, seq: number, prev: string): string {
  const entry: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  entry.ts = new Date().toISOString();
  entry.seq = seq;
  entry.event = clip(String(event));
  const seen = new Set<object>([fields]);
  for (const [key, value] of Object.entries(fields ?? {})) {
    if (RESERVED_KEYS.has(key)) continue;
    entry[key] = SECRET_KEY.test(key) ? OMITTED : clean(value, 1, seen);
  }
  entry.prev = prev;
  return escapeUnsafe(JSON.stringify(entry));
}
