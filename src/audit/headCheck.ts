/**
 * The check made when a trail is reopened: does the file still end where its head file
 * (./head.ts) says the writer left it? A file shorter than the head says, a different
 * line where the head's line should end, or a head file that is unreadable or forged is a
 * gap; a file with lines but no head file cannot be vouched for. Either is returned as the
 * event the reopened log records first, so it is never silently continued.
 */
import { lineEndingAt, seqOf, type ChainTail } from './chainTail.js';
import { chainHash } from './format.js';
import { headPath, type HeadRead } from './head.js';

/** Something the reopened trail must record before anything else. */
export interface AuditGap {
  /** `audit_gap`: records are missing or the head disagrees; `audit_head_missing`: no head file. */
  readonly event: 'audit_gap' | 'audit_head_missing';
  /** One sentence for the operator's log. */
  readonly message: string;
  /** The fields of the recorded event. */
  readonly fields: Readonly<Record<string, unknown>>;
}

function lastSeqOf(tail: ChainTail | undefined): number {
  return tail === undefined ? 0 : tail.nextSeq - 1;
}

/**
 * Compares the reopened `file` (its tail, or undefined when missing or empty) with its
 * head; undefined when they agree or when neither has anything to vouch for.
 */
export async function checkHead(file: string, tail: ChainTail | undefined, read: HeadRead, hmacKey: string | undefined): Promise<AuditGap | undefined> {
  const headFile = headPath(file);
  if (read.state === 'missing') {
    if (tail === undefined) return undefined;
    return {
      event: 'audit_head_missing',
      message: `audit file ${file} has records but no head file ${headFile}: records removed from its end until now cannot be detected`,
      fields: { headFile, found: { seq: lastSeqOf(tail) } },
    };
  }
  if (read.state === 'invalid') {
    return {
      event: 'audit_gap',
      message: `audit head file ${headFile} is invalid: ${read.reason}; the end of ${file} cannot be checked`,
      fields: { reason: 'head file invalid', detail: read.reason, headFile, found: { seq: lastSeqOf(tail) } },
    };
  }
  const { head } = read;
  const expected = { seq: head.seq, hash: head.hash };
  const size = tail?.size ?? 0;
  if (size < head.bytes) {
    const foundSeq = lastSeqOf(tail);
    const missing = Math.max(0, head.seq - foundSeq);
    const found = tail === undefined ? { seq: 0, hash: null } : { seq: foundSeq, hash: chainHash(tail.lastLine, hmacKey) };
    return {
      event: 'audit_gap',
      message:
        `audit file ${file} is shorter than its head file says: ${missing} record(s) missing at the end ` +
        `(the head says the trail ends at seq ${head.seq}, ${head.bytes} bytes; the file ends at seq ${foundSeq}, ${size} bytes)`,
      fields: { reason: 'records missing at the end', headFile, missing, expected: { ...expected, bytes: head.bytes }, found: { ...found, bytes: size } },
    };
  }
  const line = await lineEndingAt(file, head.bytes);
  const hash = line === undefined ? null : chainHash(line, hmacKey);
  const seq = line === undefined ? null : (seqOf(line) ?? null);
  if (hash === head.hash && seq === head.seq) return undefined;
  const foundSeq = lastSeqOf(tail);
  const missing = foundSeq < head.seq ? head.seq - foundSeq : undefined;
  return {
    event: 'audit_gap',
    message:
      `audit file ${file} does not hold the record its head file vouches for (seq ${head.seq}, ending at byte ${head.bytes})` +
      `${missing === undefined ? '' : `: ${missing} record(s) missing at the end`}; its end was removed or rewritten`,
    fields: {
      reason: 'tail differs from head',
      headFile,
      ...(missing === undefined ? {} : { missing }),
      expected: { ...expected, bytes: head.bytes },
      found: { seq, hash },
    },
  };
}
