/**
 * Where an existing audit file's chain ends: its last line (to hash for the next `prev`),
 * the next `seq`, and whether the file ends mid-line; and the line that ends at a given
 * offset (where the head file says the trail ended). Reads the file backwards, so a large
 * trail costs a few chunks, not a full scan.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';

const LF = 0x0a;
const CR = 0x0d;
const TAIL_CHUNK = 64 * 1024;
/** How far back `open` looks for a readable `seq` when the last line has none. */
const SEQ_SEARCH_BYTES = 1024 * 1024;

/**
 * The lines of a file, newest first, split like `readline` with `crlfDelay: Infinity`
 * (LF, CRLF or a lone CR ends a line; the file's final break does not start a new line).
 */
async function* linesBackwards(handle: FileHandle, size: number): AsyncGenerator<string> {
  const tail = Buffer.alloc(Math.min(2, size));
  await handle.read(tail, 0, tail.length, size - tail.length);
  let pos = size;
  if (tail.at(-1) === LF) pos -= tail.length === 2 && tail[0] === CR ? 2 : 1;
  else if (tail.at(-1) === CR) pos -= 1;

  let pending: Buffer[] = [];
  let skipCr = false; // the line break just found was an LF that may be the end of a CRLF
  while (pos > 0) {
    const length = Math.min(TAIL_CHUNK, pos);
    pos -= length;
    const chunk = Buffer.alloc(length);
    await handle.read(chunk, 0, length, pos);
    let end = length;
    if (skipCr && chunk[end - 1] === CR) end -= 1;
    skipCr = false;
    for (let i = end - 1; i >= 0; i -= 1) {
      const byte = chunk[i];
      if (byte !== LF && byte !== CR) continue;
      pending.unshift(chunk.subarray(i + 1, end));
      yield Buffer.concat(pending).toString('utf8');
      pending = [];
      if (byte === LF && i > 0 && chunk[i - 1] === CR) i -= 1;
      else if (byte === LF && i === 0) skipCr = true;
      end = i;
    }
    pending.unshift(chunk.subarray(0, end));
  }
  yield Buffer.concat(pending).toString('utf8');
}

/** The `seq` of a line, when it is a JSON object with a usable one. */
export function seqOf(line: string): number | undefined {
  try {
    const entry: unknown = JSON.parse(line);
    const seq = typeof entry === 'object' && entry !== null ? (entry as { seq?: unknown }).seq : undefined;
    return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
  } catch {
    return undefined;
  }
}

export interface ChainTail {
  /** Text of the file's last line (possibly partial or corrupt). */
  readonly lastLine: string;
  readonly nextSeq: number;
  /** False when the file ends mid-line, so the next line must start with a break. */
  readonly endsWithBreak: boolean;
  /** The file's size in bytes when it was read. */
  readonly size: number;
}

/**
 * Where an existing file's chain ends. `seq` continues from the last line that has one
 * (counting the unreadable lines after it), else from the line count when the whole file
 * was read, else from 1; verify reports such a file as broken in any case.
 */
export async function readChainTail(file: string): Promise<ChainTail | undefined> {
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  // Not a regular file (a FIFO would block a reader, a tty has no history): a new chain.
  if (info === undefined || !info.isFile() || info.size === 0) return undefined;
  const handle = await open(file, 'r');
  try {
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, info.size - 1);
    const endsWithBreak = last[0] === LF || last[0] === CR;
    let lastLine: string | undefined;
    let count = 0;
    let scanned = 0;
    for await (const line of linesBackwards(handle, info.size)) {
      count += 1;
      lastLine ??= line;
      const seq = seqOf(line);
      if (seq !== undefined) return { lastLine, nextSeq: seq + count, endsWithBreak, size: info.size };
      scanned += line.length + 1;
      if (scanned > SEQ_SEARCH_BYTES) return { lastLine, nextSeq: 1, endsWithBreak, size: info.size };
    }
    return { lastLine: lastLine ?? '', nextSeq: count + 1, endsWithBreak, size: info.size };
  } finally {
    await handle.close();
  }
}

/**
 * The line whose line break is the byte at `end - 1`, or undefined when the file is
 * shorter than `end` or that byte is not a line feed (the offset is not a line's end).
 */
export async function lineEndingAt(file: string, end: number): Promise<string | undefined> {
  if (!Number.isSafeInteger(end) || end < 1) return undefined;
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size < end) return undefined;
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, end - 1);
    if (last[0] !== LF) return undefined;
    for await (const line of linesBackwards(handle, end)) return line;
    return undefined;
  } finally {
    await handle.close();
  }
}
