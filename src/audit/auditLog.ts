/**
 * The audit trail: one JSON object per line, each line chained to the one before it.
 *
 * Line shape: `{"ts":ISO-8601,"seq":n,"event":"<name>",...fields,"prev":"<64 hex>"}` where
 * `prev` is the SHA-256 (or, with a key, HMAC-SHA256) of the previous line's exact text
 * without its line break; the first line of a chain has `prev` = 64 zeros. Reopening a
 * file continues its chain and its `seq`. `verifyAuditFile` (./verify.ts) checks a file.
 *
 * Beside a file trail, `<file>.head` records where the trail ends (./head.ts), updated
 * after the lines are written. Reopening compares the file with it: records removed from
 * the end while the log was closed are recorded as an `audit_gap` event, the first of the
 * continuing chain, and reported to `onGap` (./headCheck.ts). See docs/audit.md.
 *
 * Lines are safe to print: secret-like keys are replaced, every character a terminal could
 * act on is escaped, and long strings are cut (./format.ts). `record()` never throws;
 * failures go to `onError`. One writer per file: two processes appending to one file break
 * the chain.
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { readChainTail, type ChainTail } from './chainTail.js';
import { GENESIS_PREV, chainHash, clip, formatLine, toError } from './format.js';
import { readHead } from './head.js';
import { checkHead, type AuditGap } from './headCheck.js';
import { HeadWriter } from './headWriter.js';
import type { AuditRecorder } from './recorder.js';

export { GENESIS_PREV, MAX_STRING_LENGTH, OMITTED, SECRET_KEY, chainHash } from './format.js';
export type { AuditGap } from './headCheck.js';

export interface AuditLogOptions {
  /**
   * Append JSON lines to this file (created with mode 0600 when missing); a regular file
   * gets `<file>.head` beside it (./head.ts).
   */
  readonly file?: string;
  /**
   * Also write each line to `process.stderr`.
   * @default false
   */
  readonly stderr?: boolean;
  /**
   * Key the chain with HMAC-SHA256 instead of plain SHA-256, so that only a key holder
   * can forge or re-chain lines. Must not be empty.
   */
  readonly hmacKey?: string;
  /** Receives write failures and dropped records; `record()` itself never throws. */
  readonly onError?: (error: Error) => void;
  /**
   * Told when a reopened file does not end where its head file says (records removed or
   * rewritten, a forged or unreadable head) or has records but no head file. The event is
   * recorded in the trail either way. Without it, the gap goes to `onError`.
   */
  readonly onGap?: (gap: AuditGap) => void;
}

/** Opening the audit file failed, or a record was dropped. */
export class AuditLogError extends Error {
  override name = 'AuditLogError';
}

/** A FIFO or a terminal has no end to compare, so only a regular file (or a new one) gets a head. */
async function isRegularOrAbsent(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw error;
  }
}

function validate(options: AuditLogOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const { file, stderr, hmacKey, onError, onGap } = options;
  if (file !== undefined && (typeof file !== 'string' || file.length === 0 || file.includes('\0'))) {
    throw new TypeError('options.file must be a non-empty path');
  }
  if (stderr !== undefined && typeof stderr !== 'boolean') throw new TypeError('options.stderr must be a boolean');
  if (hmacKey !== undefined && (typeof hmacKey !== 'string' || hmacKey.length === 0)) {
    throw new TypeError('options.hmacKey must be a non-empty string');
  }
  if (onError !== undefined && typeof onError !== 'function') throw new TypeError('options.onError must be a function');
  if (onGap !== undefined && typeof onGap !== 'function') throw new TypeError('options.onGap must be a function');
}

interface AuditLogState {
  readonly stream: WriteStream | undefined;
  readonly stderr: boolean;
  readonly hmacKey: string | undefined;
  readonly onError: ((error: Error) => void) | undefined;
  readonly prev: string;
  readonly seq: number;
  /** Written before the first line when the file ended mid-line. */
  readonly lead: string;
  /** Keeps `<file>.head` in step; absent without a regular file. */
  readonly head?: HeadWriter;
  /** The file's length when opened. */
  readonly bytes?: number;
}

export class AuditLog implements AuditRecorder {
  readonly #stream: WriteStream | undefined;
  readonly #stderr: boolean;
  readonly #hmacKey: string | undefined;
  readonly #onError: ((error: Error) => void) | undefined;
  #prev: string;
  #seq: number;
  #lead: string;
  readonly #head: HeadWriter | undefined;
  /** Bytes in the file once every write handed to the stream so far has completed. */
  #bytes: number;
  #closed = false;
  #closing: Promise<void> | undefined;
  #lastReported: Error | undefined;

  private constructor(state: AuditLogState) {
    this.#stream = state.stream;
    this.#stderr = state.stderr;
    this.#hmacKey = state.hmacKey;
    this.#onError = state.onError;
    this.#prev = state.prev;
    this.#seq = state.seq;
    this.#lead = state.lead;
    this.#head = state.head;
    this.#bytes = state.bytes ?? 0;
    this.#stream?.on('error', (error) => this.#report(error));
  }

  /**
   * Opens the log; with `file`, continues the chain at its end and resolves once the file
   * is open for appending. Rejects with a TypeError for bad options, an AuditLogError when
   * the file cannot be read or opened.
   */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    validate(options);
    const { file, hmacKey, onError, onGap } = options;
    const stderr = options.stderr ?? false;
    if (file === undefined) {
      return new AuditLog({ stream: undefined, stderr, hmacKey, onError, prev: GENESIS_PREV, seq: 1, lead: '' });
    }
    let tail: ChainTail | undefined;
    let gap: AuditGap | undefined;
    let regular = false;
    try {
      regular = await isRegularOrAbsent(file);
      tail = await readChainTail(file);
      if (regular) gap = await checkHead(file, tail, await readHead(file, hmacKey), hmacKey);
    } catch (error) {
      throw new AuditLogError(`cannot read audit file ${file}: ${toError(error).message}`, { cause: error });
    }
    const stream = createWriteStream(file, { flags: 'a', mode: 0o600 });
    try {
      await once(stream, 'open');
    } catch (error) {
      stream.destroy();
      throw new AuditLogError(`cannot open audit file ${file}: ${toError(error).message}`, { cause: error });
    }
    const log = new AuditLog({
      stream,
      stderr,
      hmacKey,
      onError,
      prev: tail === undefined ? GENESIS_PREV : chainHash(tail.lastLine, hmacKey),
      seq: tail?.nextSeq ?? 1,
      lead: tail === undefined || tail.endsWithBreak ? '' : '\n',
      head: regular
        ? new HeadWriter(file, hmacKey, (error) =>
            log.#report(new AuditLogError(`cannot update audit head file ${file}.head: ${toError(error).message}`, { cause: error })),
          )
        : undefined,
      bytes: tail?.size ?? 0,
    });
    if (gap !== undefined) {
      log.record(gap.event, gap.fields);
      if (onGap !== undefined) log.#tell(() => onGap(gap));
      else log.#report(new AuditLogError(gap.message));
    }
    return log;
  }

  /** A log that writes nothing. */
  static disabled(): AuditLog {
    return new AuditLog({
      stream: undefined,
      stderr: false,
      hmacKey: undefined,
      onError: undefined,
      prev: GENESIS_PREV,
      seq: 1,
      lead: '',
    });
  }

  /** False when the log has neither a file nor stderr to write to. */
  get enabled(): boolean {
    return this.#stream !== undefined || this.#stderr;
  }

  /**
   * Appends one line. Never throws: a failure, or a record after `close()`, goes to
   * `onError`. Fields named ts/seq/event/prev are dropped; callers must not pass secrets,
   * but secret-like keys are replaced by "[omitted]" anyway.
   */
  record(event: string, fields: Record<string, unknown> = {}): void {
    if (!this.enabled) return;
    if (this.#closed) {
      this.#report(new AuditLogError(`audit log is closed; dropped event ${JSON.stringify(clip(String(event)))}`));
      return;
    }
    let line: string;
    try {
      line = formatLine(event, fields, this.#seq, this.#prev);
    } catch (error) {
      this.#report(new AuditLogError(`cannot format audit event: ${toError(error).message}`, { cause: error }));
      return;
    }
    const seq = this.#seq;
    const hash = chainHash(line, this.#hmacKey);
    this.#prev = hash;
    this.#seq += 1;
    if (this.#stream !== undefined) {
      const text = `${this.#lead}${line}\n`;
      this.#lead = '';
      const length = Buffer.byteLength(text, 'utf8');
      try {
        this.#stream.write(text, (error) => {
          if (error) {
            this.#report(error);
            return;
          }
          // Callbacks run in write order: the file now ends with this line.
          this.#bytes += length;
          this.#head?.update({ seq, hash, bytes: this.#bytes });
        });
      } catch (error) {
        this.#report(toError(error));
      }
    }
    if (this.#stderr) {
      try {
        process.stderr.write(`${line}\n`);
      } catch (error) {
        this.#report(toError(error));
      }
    }
  }

  /** Ends the file stream; resolves once buffered lines and the head file are written. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    const stream = this.#stream;
    if (stream === undefined) return;
    if (!stream.closed) {
      await new Promise<void>((resolve) => {
        stream.once('close', resolve);
        if (!stream.destroyed) stream.end();
      });
    }
    await this.#head?.flush();
  }

  /** Calls a sink; a sink that throws is ignored. */
  #tell(sink: () => void): void {
    try {
      sink();
    } catch {
      // The sink failed; nothing is left to tell.
    }
  }

  /** Each error once (a failed write reaches both the callback and the 'error' event). */
  #report(error: Error): void {
    if (error === this.#lastReported) return;
    this.#lastReported = error;
    try {
      this.#onError?.(error);
    } catch {
      // The error sink failed too; nothing is left to tell.
    }
  }
}
