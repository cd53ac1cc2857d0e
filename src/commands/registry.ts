/**
 * The whitelist at run time: maps a URL key to its CommandSpec by EXACT string match.
 *
 * The key a client sends is percent-decoded exactly once (decodeCommandSegment) and then
 * looked up as-is. Nothing is trimmed, case-folded, normalised or decoded a second time,
 * so `"foo "`, `"FOO"`, `"foo%20bar"` (double-encoded) or a key with `..` or NUL only
 * match if the whitelist holds exactly that string.
 *
 * The table can be swapped at run time (`replace`, when the whitelist is reloaded). A spec
 * handed out before stays valid for whoever holds it: live sessions of a removed entry keep
 * running with it, and `retired()` still finds it for their requests.
 */
import { UnknownCommandError } from '../errors.js';
import type { CommandSpec } from './types.js';

export class CommandRegistry {
  #byKey = new Map<string, CommandSpec>();
  /** Specs of removed entries, for the requests of sessions that still use them. */
  readonly #retired = new Map<string, CommandSpec>();

  /** @throws {TypeError} when two specs share a key. */
  constructor(specs: readonly CommandSpec[]) {
    this.#byKey = CommandRegistry.#table(specs);
  }

  static #table(specs: readonly CommandSpec[]): Map<string, CommandSpec> {
    const byKey = new Map<string, CommandSpec>();
    for (const spec of specs) {
      if (byKey.has(spec.key)) {
        throw new TypeError(`duplicate command key ${JSON.stringify(spec.key)}`);
      }
      byKey.set(spec.key, spec);
    }
    return byKey;
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

  /** All specs, in whitelist order. */
  specs(): CommandSpec[] {
    return [...this.#byKey.values()];
  }

  /**
   * Swaps the whole table at once: nothing is changed when `specs` is invalid, and no
   * caller ever sees half of it. The spec of each key that leaves is kept for `retired()`.
   * @throws {TypeError} when two specs share a key.
   */
  replace(specs: readonly CommandSpec[]): void {
    const next = CommandRegistry.#table(specs);
    for (const [key, spec] of this.#byKey) if (!next.has(key)) this.#retired.set(key, spec);
    for (const key of next.keys()) this.#retired.delete(key);
    this.#byKey = next;
  }

  /** The last spec of a removed entry (for its live sessions only), or undefined. */
  retired(key: string): CommandSpec | undefined {
    return this.#retired.get(key);
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
