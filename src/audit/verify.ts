/**
 * Checks an audit file written by AuditLog (./auditLog.ts), streaming it line by line:
 * every line is a JSON object with a string `prev`; line 1's `prev` is 64 zeros; each
 * later line's `prev` is the hash of the previous line's text; `seq` goes up by one.
 *
 * Then the end of the file against its head file (`<file>.head`, ./head.ts): the line the
 * head vouches for must be there, unchanged. Records removed from the end show as missing;
 * a forged or unreadable head fails. A missing head file is a warning (removal from the end
 * cannot be seen), or a failure with `requireHead`. A gap the gateway found and recorded
 * (`audit_gap`) fails too: the trail is known to be incomplete there.
 *
 * A plain SHA-256 chain and head show accidental damage and edits by someone who did not
 * rewrite every later line and the head; only an HMAC key stops a forger who recomputes
 * them. docs/audit.md says what can and cannot be detected.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { GENESIS_PREV, chainHash } from './format.js';
import { headPath, readHead, type ChainHead } from './head.js';

export interface VerifyOptions {
  /** The key the file was written with (AuditLogOptions.hmacKey); absent: plain SHA-256. */
  readonly hmacKey?: string;
  /**
   * Fail when the head file is missing, or when the trail records that the gateway found
   * it missing (`audit_head_missing`), instead of warning.
   * @default false
   */
  readonly requireHead?: boolean;
}

export type VerifyResult =
  | {
      readonly ok: true;
      readonly lines: number;
      /** 'matches': the head file vouches for the end; 'missing': there is no head file. */
      readonly head: 'matches' | 'missing';
      /** What could not be vouched for, one sentence each. */
      readonly warnings: readonly string[];
    }
  | {
      readonly ok: false;
      /** 1-based number of the first broken line, when one line is at fault. */
      readonly line?: number;
      /**
       * Chain: 'not JSON' | 'missing prev' | 'missing seq' | 'sequence gap' |
       * 'chain broken (prev does not match line N)' | 'chain broken (first line prev is not zero)';
       * otherwise a sentence about the head file or a recorded gap.
       */
      readonly reason: string;
      /** Lines in the whole file. */
      readonly lines: number;
    };

interface Checked {
  readonly seq: number;
  readonly event: unknown;
  readonly reason: unknown;
}

/** What is wrong with one line, or undefined; `previous` is the line before it, if any. */
function check(
  text: string,
  previous: { readonly number: number; readonly text: string; readonly seq: number } | undefined,
  hmacKey: string | undefined,
): { reason: string } | Checked {
  let entry: unknown;
  try {
    entry = JSON.parse(text);
  } catch {
    return { reason: 'not JSON' };
  }
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return { reason: 'not JSON' };
  const { prev, seq, event, reason } = entry as { prev?: unknown; seq?: unknown; event?: unknown; reason?: unknown };
  if (typeof prev !== 'string') return { reason: 'missing prev' };
  if (previous === undefined) {
    if (prev !== GENESIS_PREV) return { reason: 'chain broken (first line prev is not zero)' };
  } else if (prev !== chainHash(previous.text, hmacKey)) {
    return { reason: `chain broken (prev does not match line ${previous.number})` };
  }
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return { reason: 'missing seq' };
  if (previous !== undefined && seq !== previous.seq + 1) return { reason: 'sequence gap' };
  return { seq, event, reason };
}

/** What the stream of lines showed, beyond the chain. */
interface Seen {
  count: number;
  lastSeq: number | undefined;
  /** The line with the head's seq: its number and whether its hash is the head's. */
  headLine: { number: number; matches: boolean } | undefined;
  /** The first line recording a gap. */
  gapLine: { number: number; reason: string } | undefined;
  /** Lines recording that the gateway found no head file. */
  headMissingLines: number[];
}

/** The head's verdict on a file whose chain is intact. */
function compareHead(head: ChainHead, seen: Seen, file: string): { line?: number; reason: string } | { warning?: string } {
  const lastSeq = seen.lastSeq ?? 0;
  if (seen.count === 0 || lastSeq < head.seq) {
    const end = seen.count === 0 ? 'the file is empty' : `the file ends at seq ${lastSeq}`;
    return { reason: `${head.seq - lastSeq} record(s) missing at the end: the head file says the trail ends at seq ${head.seq}; ${end}` };
  }
  if (seen.headLine === undefined) return { reason: `the head file vouches for seq ${head.seq}, which is not in the file` };
  if (!seen.headLine.matches) {
    return { line: seen.headLine.number, reason: `this line (seq ${head.seq}) is not the record the head file ${headPath(file)} vouches for` };
  }
  const after = lastSeq - head.seq;
  if (after === 0) return {};
  return { warning: `${after} line(s) after seq ${head.seq} are not covered by the head file (written just before a crash, or appended since)` };
}

/**
 * Verifies the chain of an audit file and its end against the head file. Resolves
 * `{ ok: true, ... }` (an empty file without a head is ok with 0 lines) or the first
 * problem; rejects when the file cannot be read.
 */
export async function verifyAuditFile(path: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const { hmacKey, requireHead = false } = options;
  if (hmacKey !== undefined && (typeof hmacKey !== 'string' || hmacKey.length === 0)) {
    throw new TypeError('options.hmacKey must be a non-empty string');
  }
  const read = await readHead(path, hmacKey);
  const head = read.state === 'ok' ? read.head : undefined;
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  const seen: Seen = { count: 0, lastSeq: undefined, headLine: undefined, gapLine: undefined, headMissingLines: [] };
  let previous: { number: number; text: string; seq: number } | undefined;
  let broken: { line: number; reason: string } | undefined;
  try {
    for await (const text of lines) {
      seen.count += 1;
      if (broken !== undefined) continue; // keep counting
      const result = check(text, previous, hmacKey);
      if ('seq' in result) {
        previous = { number: seen.count, text, seq: result.seq };
        seen.lastSeq = result.seq;
        if (head !== undefined && result.seq === head.seq) seen.headLine = { number: seen.count, matches: chainHash(text, hmacKey) === head.hash };
        if (result.event === 'audit_gap') seen.gapLine ??= { number: seen.count, reason: typeof result.reason === 'string' ? result.reason : 'gap' };
        if (result.event === 'audit_head_missing') seen.headMissingLines.push(seen.count);
      } else {
        broken = { line: seen.count, reason: result.reason };
      }
    }
  } finally {
    lines.close();
    input.destroy();
  }
  const lineCount = seen.count;
  if (broken !== undefined) return { ok: false, ...broken, lines: lineCount };
  const headFile = headPath(path);
  if (read.state === 'invalid') return { ok: false, reason: `head file ${headFile} is invalid: ${read.reason}`, lines: lineCount };
  const warnings: string[] = [];
  if (head !== undefined) {
    const verdict = compareHead(head, seen, path);
    if ('reason' in verdict) return { ok: false, ...verdict, lines: lineCount };
    if (verdict.warning !== undefined) warnings.push(verdict.warning);
  } else if (requireHead) {
    return { ok: false, reason: `no head file ${headFile} (required): records removed from the end cannot be detected`, lines: lineCount };
  } else if (lineCount > 0) {
    warnings.push(`no head file ${headFile}: records removed from the end cannot be detected`);
  }
  if (seen.gapLine !== undefined) {
    return { ok: false, line: seen.gapLine.number, reason: `the gateway recorded a gap in the trail here (${seen.gapLine.reason})`, lines: lineCount };
  }
  for (const number of seen.headMissingLines) {
    const sentence = `line ${number} records that the gateway found no head file: records removed before it cannot be detected`;
    if (requireHead) return { ok: false, line: number, reason: `the gateway found no head file when it reopened the trail (required)`, lines: lineCount };
    warnings.push(sentence);
  }
  return { ok: true, lines: lineCount, head: head === undefined ? 'missing' : 'matches', warnings };
}
