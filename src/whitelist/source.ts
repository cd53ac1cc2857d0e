/**
 * Where the running gateway's whitelist lives: the file (one machine), or Redis (several
 * machines: src/whitelist/redisSource.ts). A source reads the stored document, applies an
 * edit atomically, and says when the stored whitelist may have changed.
 */
import { stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import type { WhitelistDocument } from './document.js';
import type { Edited } from './edit.js';
import { readWhitelistFile, writeWhitelistFile } from './file.js';

export interface WhitelistSource {
  readonly kind: 'file' | 'redis';
  /** What errors and logs call it: the file's path, or `redis key <key>`. */
  readonly name: string;
  /** The whitelist file: relative `cwd`s resolve from its folder. */
  readonly file: string;
  /** The stored document (unvalidated). */
  read(): Promise<WhitelistDocument>;
  /**
   * Applies `edit` to the stored document and stores its result, atomically with respect to
   * other edits through this source (and, for Redis, on other machines). `edit` throws to refuse.
   */
  update<T extends Edited>(edit: (doc: WhitelistDocument) => T): Promise<T>;
  /** Calls `onChange` whenever the stored whitelist may have changed (by anyone). */
  watch(onChange: () => void): void;
  /** Stops watching and lets go of connections. Idempotent. */
  close(): Promise<void>;
}

/** Runs tasks one at a time, in order. */
export class Serial {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task, task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

export interface FileSourceOptions {
  /** How often the file is checked for changes, ms. @default 1000 */
  readonly pollMs?: number;
}

/** What tells one version of the file from another: time, size, and inode (an atomic rename). */
function versionOf(stats: Stats): string {
  return `${stats.mtimeMs}:${stats.size}:${stats.ino}`;
}

/**
 * The whitelist file itself, polled for changes (like the policy file). The version last
 * read is remembered from a stat taken just before the read, so a change at any moment after
 * it (even before the first poll) is seen; an unchanged file is never read again.
 */
export class FileSource implements WhitelistSource {
  readonly kind = 'file';
  readonly name: string;
  readonly #serial = new Serial();
  #timer: NodeJS.Timeout | undefined;
  /** The version last read, or last reported: each version is reported once. */
  #seen: string | undefined;

  constructor(
    readonly file: string,
    private readonly options: FileSourceOptions = {},
  ) {
    this.name = file;
  }

  async read(): Promise<WhitelistDocument> {
    const version = await stat(this.file).then(versionOf, () => 'missing');
    const doc = await readWhitelistFile(this.file);
    this.#seen = version;
    return doc;
  }

  update<T extends Edited>(edit: (doc: WhitelistDocument) => T): Promise<T> {
    return this.#serial.run(async () => {
      const result = edit(await readWhitelistFile(this.file));
      await writeWhitelistFile(this.file, result.doc);
      return result;
    });
  }

  watch(onChange: () => void): void {
    if (this.#timer) return;
    let looking = false;
    this.#timer = setInterval(() => {
      if (looking) return;
      looking = true;
      void stat(this.file)
        .then(versionOf, () => 'missing')
        .then((version) => {
          looking = false;
          if (version === this.#seen || !this.#timer) return;
          this.#seen = version;
          onChange();
        });
    }, this.options.pollMs ?? 1000);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
