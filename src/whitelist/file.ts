/**
 * Reading and writing the whitelist file. A write is atomic: the new text goes to a
 * temporary file in the same folder (same file system), is flushed, and is renamed over the
 * old file, so a reader (the gateway polling it) sees the old file or the new one, never a
 * part. The file keeps its permission bits.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CommandsFileError } from '../config/commands.js';
import { parseDocument, serializeDocument, type WhitelistDocument } from './document.js';

/** Reads and parses `path` (entries not validated); errors name the file. */
export async function readWhitelistFile(path: string): Promise<WhitelistDocument> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new CommandsFileError(`${path}: cannot read file: ${(error as Error).message}`, { file: path, cause: error });
  }
  return parseDocument(text, path);
}

/** True when `path` exists (anything that is there, even unreadable). */
export async function fileExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    return true;
  }
}

/** Writes `doc` to `path` atomically (temp file, fsync, rename). */
export async function writeWhitelistFile(path: string, doc: WhitelistDocument): Promise<void> {
  await writeTextAtomically(path, serializeDocument(doc));
}

async function writeTextAtomically(path: string, text: string): Promise<void> {
  let mode = 0o644;
  try {
    mode = (await stat(path)).mode & 0o7777;
  } catch {
    // a new file
  }
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.chmod(mode); // open() applies the umask
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}
