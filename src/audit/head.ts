/**
 * The head file: where the writer last saw its trail end, kept beside the trail as
 * `<file>.head`. A hash chain alone cannot show that its newest lines were removed (the
 * shorter file is still a valid chain); the head file can, as long as it survives.
 *
 * Text: `{"version":1,"seq":n,"hash":"<64 hex>","bytes":n,"hmac":"<64 hex>"}` where `seq`
 * and `hash` are the last vouched-for line's `seq` and chain hash (the `prev` the next
 * line carries), `bytes` is the file's length up to and including that line's break, and
 * `hmac` (only with a key) is HMAC-SHA256 over the other three, so that a forged head is
 * refused. Replaced atomically: written to `<file>.head.tmp`, fsynced, renamed.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { open, readFile, rename } from 'node:fs/promises';

export interface ChainHead {
  /** `seq` of the last line the head vouches for. */
  readonly seq: number;
  /** Chain hash of that line's text (SHA-256, or HMAC-SHA256 with the key). */
  readonly hash: string;
  /** File length in bytes up to and including that line's line break. */
  readonly bytes: number;
}

export type HeadRead =
  { readonly state: 'missing' } | { readonly state: 'invalid'; readonly reason: string } | { readonly state: 'ok'; readonly head: ChainHead };

const VERSION = 1;
/** A head file is a few hundred bytes; anything much larger is not one. */
const MAX_HEAD_BYTES = 4096;
const HEX64 = /^[0-9a-f]{64}$/;

/** Where the head of `file` is kept. */
export function headPath(file: string): string {
  return `${file}.head`;
}

function headMac(head: ChainHead, hmacKey: string): string {
  // Domain-separated from chain lines, which are JSON and start with "{".
  return createHmac('sha256', hmacKey).update(`mcp-warden audit head v${VERSION}\n${head.seq}\n${head.hash}\n${head.bytes}`, 'utf8').digest('hex');
}

/** The text of a head file, with its HMAC when keyed. */
export function formatHead(head: ChainHead, hmacKey: string | undefined): string {
  const text: Record<string, unknown> = { version: VERSION, seq: head.seq, hash: head.hash, bytes: head.bytes };
  if (hmacKey !== undefined) text.hmac = headMac(head, hmacKey);
  return `${JSON.stringify(text)}\n`;
}

const positive = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;

/** Parses head file text and checks its HMAC against `hmacKey`. */
export function parseHead(text: string, hmacKey: string | undefined): HeadRead {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { state: 'invalid', reason: 'not JSON' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { state: 'invalid', reason: 'not a JSON object' };
  const { version, seq, hash, bytes, hmac } = json as Record<string, unknown>;
  if (version !== VERSION) return { state: 'invalid', reason: `unknown version ${JSON.stringify(version)?.slice(0, 20)}` };
  if (!positive(seq) || typeof hash !== 'string' || !HEX64.test(hash) || !positive(bytes)) {
    return { state: 'invalid', reason: 'seq, hash or bytes missing or malformed' };
  }
  const head: ChainHead = { seq, hash, bytes };
  if (hmacKey === undefined) {
    if (hmac !== undefined) return { state: 'invalid', reason: 'it carries an HMAC but no key is set (set the audit HMAC key)' };
    return { state: 'ok', head };
  }
  if (hmac === undefined) return { state: 'invalid', reason: 'it has no HMAC but the trail is keyed (replaced by someone without the key?)' };
  if (typeof hmac !== 'string' || !HEX64.test(hmac)) return { state: 'invalid', reason: 'its HMAC is malformed' };
  if (!timingSafeEqual(Buffer.from(hmac, 'hex'), Buffer.from(headMac(head, hmacKey), 'hex'))) {
    return { state: 'invalid', reason: 'its HMAC does not match (forged, or written with another key)' };
  }
  return { state: 'ok', head };
}

/** Reads the head of `file`: missing (no head file), invalid (with why), or the head. */
export async function readHead(file: string, hmacKey: string | undefined): Promise<HeadRead> {
  let buffer: Buffer;
  try {
    buffer = await readFile(headPath(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { state: 'missing' };
    return { state: 'invalid', reason: `cannot read it (${code ?? (error as Error).message})` };
  }
  if (buffer.length > MAX_HEAD_BYTES) return { state: 'invalid', reason: `larger than ${MAX_HEAD_BYTES} bytes` };
  return parseHead(buffer.toString('utf8'), hmacKey);
}

/** Flushes `file`'s data to disk (any descriptor of a file syncs its data). */
export async function syncData(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Replaces the head of `file` atomically: temp file, fsync, rename. */
export async function writeHead(file: string, head: ChainHead, hmacKey: string | undefined): Promise<void> {
  const target = headPath(file);
  const temp = `${target}.tmp`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(formatHead(head, hmacKey), 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, target);
}
