/**
 * Checks an audit file written by AuditLog (./auditLog.ts), streaming it line by line:
 * every line is a JSON object with a string `prev`; line 1's `prev` is 64 zeros; each
 * later line's `prev` is the hash of the previous line's text; `seq` goes up by one.
 *
 * A plain SHA-256 chain shows accidental damage and edits by someone who did not rewrite
 * every later line; only an HMAC key stops a forger who recomputes the chain. Removing
 * lines from the end cannot be seen from the file alone.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { GENESIS_PREV, chainHash } from './auditLog.js';

export interface VerifyOptions {
  /** The key the file was written with (AuditLogOptions.hmacKey); absent: plain SHA-256. */
  readonly hmacKey?: string;
}

export type VerifyResult =
  | { readonly ok: true; readonly lines: number }
  | {
      readonly ok: false;
      /** 1-based number of the first broken line. */
      readonly line: number;
      /**
       * 'not JSON' | 'missing prev' | 'missing seq' | 'sequence gap' |
       * 'chain broken (prev does not match line N)' | 'chain broken (first line prev is not zero)'
       */
      readonly reason: string;
      /** Lines in the whole file. */
      readonly lines: number;
    };

/** What is wrong with one line, or undefined; `previous` is the line before it, if any. */
function check(
  text: string,
  previous: { readonly number: number; readonly text: string; readonly seq: number } | undefined,
  hmacKey: string | undefined,
): { reason: string } | { seq: number } {
  let entry: unknown;
  try {
    entry = JSON.parse(text);
  } catch {
    return { reason: 'not JSON' };
  }
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return { reason: 'not JSON' };
  const { prev, seq } = entry as { prev?: unknown; seq?: unknown };
  if (typeof prev !== 'string') return { reason: 'missing prev' };
  if (previous === undefined) {
    if (prev !== GENESIS_PREV) return { reason: 'chain broken (first line prev is not zero)' };
  } else if (prev !== chainHash(previous.text, hmacKey)) {
    return { reason: `chain broken (prev does not match line ${previous.number})` };
  }
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return { reason: 'missing seq' };
  if (previous !== undefined && seq !== previous.seq + 1) return { reason: 'sequence gap' };
  return { seq };
}

/**
 * Verifies the chain of an audit file. Resolves `{ ok: true, lines }` (an empty file is ok
 * with 0 lines) or the first broken line; rejects when the file cannot be read.
 */
export async function verifyAuditFile(path: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const { hmacKey } = options;
  if (hmacKey !== undefined && (typeof hmacKey !== 'string' || hmacKey.length === 0)) {
    throw new TypeError('options.hmacKey must be a non-empty string');
  }
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let count = 0;
  let previous: { number: number; text: string; seq: number } | undefined;
  let broken: { line: number; reason: string } | undefined;
  try {
    for await (const text of lines) {
      count += 1;
      if (broken !== undefined) continue; // keep counting
      const result = check(text, previous, hmacKey);
      if ('reason' in result) broken = { line: count, reason: result.reason };
      else previous = { number: count, text, seq: result.seq };
    }
  } finally {
    lines.close();
    input.destroy();
  }
  return broken === undefined ? { ok: true, lines: count } : { ok: false, ...broken, lines: count };
}
