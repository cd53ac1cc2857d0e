/**
 * The whitelist at run time: maps a URL key to its CommandSpec by EXACT string match.
 *
 * The key a client sends is percent-decoded exactly once (decodeCommandSegment) and then
 * looked up as-is. Nothing is trimmed, case-folded, normalised or decoded a second time,
 * so `"foo "`, `"FOO"`, `"foo%20bar"` (double-encoded) or a key with `..` or NUL only
 * match if the whitelist holds exactly that string.
 */
import { UnknownCommandError } from '../errors.js';
import type { CommandSpec } from './types.js';

export class CommandRegistry {
  readonly #byKey = new Map<string, CommandSpec>();

  /** @throws {TypeError} when two specs share a key. */
  constructor(specs: readonly CommandSpec[]) {
    for (const spec of specs) {
      if (this.#byKey.has(spec.key)) {
        throw new TypeError(`duplicate command key ${JSON.stringify(spec.key)}`);
      }
      this.#byKey.set(spec.key, spec);
    }
  }

  /** Number of whitelisted commands. */
  get size(): number {
    return this.#byKey.size;
  }

  /** The spec for exactly `key`, or undefined. */
  get(key: string): CommandSpec | undefined {
    return this.#byKey.get(key);
  }

  /**
   * The spec for exactly `key` (already percent-decoded once).
   * @throws {UnknownCommandError} when no entry has exactly this key.
   */
  resolve(key: string): CommandSpec {
    const spec = this.#byKey.get(key);
    if (spec === undefined) throw new UnknownCommandError();
    return spec;
  }

  /** All keys, in whitelist order. */
  keys(): string[] {
    return [...this.#byKey.keys()];
  }
}

/**
 * Decodes a raw (still percent-encoded) URL path segment exactly once.
 * @returns the decoded key, or undefined when the encoding is malformed.
 */
export function decodeCommandSegment(rawSegment: string): string | undefined {
  try {
    return decodeURIComponent(rawSegment);
  } catch {
    return undefined;
  }
}
