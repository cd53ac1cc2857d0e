/**
 * The audit trail: one JSON object per line, each line chained to the one before it.
 *
 * Line shape: `{"ts":ISO-8601,"seq":n,"event":"<name>",...fields,"prev":"<64 hex>"}` where
 * `prev` is the SHA-256 (or, with a key, HMAC-SHA256) of the previous line's exact text
 * without its line break; the first line of a chain has `prev` = 64 zeros. Reopening a
 * file continues its chain and its `seq`. `verifyAuditFile` (./verify.ts) checks a file.
 *
 * Lines are safe to print: secret-like keys are replaced, every character a terminal could
 * act on is escaped, and long strings are cut. `record()` never throws; failures go to
 * `onError`. One writer per file: two processes appending to one file break the chain.
 */
import { createHash, createHmac } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readChainTail, type ChainTail } from './chainTail.js';

export interface AuditLogOptions {
  /** Append JSON lines to this file (created with mode 0600 when missing). */
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
}

/** Opening the audit file failed, or a record was dropped. */
export class AuditLogError extends Error {
  override name = 'AuditLogError';
}

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

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

function clip(value: string): string {
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

function validate(options: AuditLogOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const { file, stderr, hmacKey, onError } = options;
  if (file !== undefined && (typeof file !== 'string' || file.length === 0 || file.includes('\0'))) {
    throw new TypeError('options.file must be a non-empty path');
  }
  if (stderr !== undefined && typeof stderr !== 'boolean') throw new TypeError('options.stderr must be a boolean');
  if (hmacKey !== undefined && (typeof hmacKey !== 'string' || hmacKey.length === 0)) {
    throw new TypeError('options.hmacKey must be a non-empty string');
  }
  if (onError !== undefined && typeof onError !== 'function') throw new TypeError('options.onError must be a function');
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
}

export class AuditLog {
  readonly #stream: WriteStream | undefined;
  readonly #stderr: boolean;
  readonly #hmacKey: string | undefined;
  readonly #onError: ((error: Error) => void) | undefined;
  #prev: string;
  #seq: number;
  #lead: string;
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
    this.#stream?.on('error', (error) => this.#report(error));
  }

  /**
   * Opens the log; with `file`, continues the chain at its end and resolves once the file
   * is open for appending. Rejects with a TypeError for bad options, an AuditLogError when
   * the file cannot be read or opened.
   */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    validate(options);
    const { file, hmacKey, onError } = options;
    const stderr = options.stderr ?? false;
    if (file === undefined) {
      return new AuditLog({ stream: undefined, stderr, hmacKey, onError, prev: GENESIS_PREV, seq: 1, lead: '' });
    }
    let tail: ChainTail | undefined;
    try {
      tail = await readChainTail(file);
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
    return new AuditLog({
      stream,
      stderr,
      hmacKey,
      onError,
      prev: tail === undefined ? GENESIS_PREV : chainHash(tail.lastLine, hmacKey),
      seq: tail?.nextSeq ?? 1,
      lead: tail === undefined || tail.endsWithBreak ? '' : '\n',
    });
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
      line = this.#format(event, fields);
    } catch (error) {
      this.#report(new AuditLogError(`cannot format audit event: ${toError(error).message}`, { cause: error }));
      return;
    }
    this.#prev = chainHash(line, this.#hmacKey);
    this.#seq += 1;
    if (this.#stream !== undefined) {
      const text = `${this.#lead}${line}\n`;
      this.#lead = '';
      try {
        this.#stream.write(text, (error) => {
          if (error) this.#report(error);
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

  /** Ends the file stream; resolves once buffered lines are flushed. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    const stream = this.#stream;
    if (stream === undefined || stream.closed) return;
    await new Promise<void>((resolve) => {
      stream.once('close', resolve);
      if (!stream.destroyed) stream.end();
    });
  }

  #format(event: string, fields: Record<string, unknown>): string {
    const entry: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    entry.ts = new Date().toISOString();
    entry.seq = this.#seq;
    entry.event = clip(String(event));
    const seen = new Set<object>([fields]);
    for (const [key, value] of Object.entries(fields ?? {})) {
      if (RESERVED_KEYS.has(key)) continue;
      entry[key] = SECRET_KEY.test(key) ? OMITTED : clean(value, 1, seen);
    }
    entry.prev = this.#prev;
    return escapeUnsafe(JSON.stringify(entry));
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
