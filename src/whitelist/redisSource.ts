/**
 * The whitelist kept in Redis, for several machines (a Fly volume belongs to one machine
 * and is not replicated). Two keys: `<prefix>:whitelist` holds the document's text (as the
 * file would), `<prefix>:whitelist:version` a counter raised by every write. Each machine
 * polls the counter and reloads when it moved; an edit is a WATCH/MULTI transaction, so
 * concurrent edits on different machines never lose one another. At start, an empty Redis
 * is seeded from the whitelist file (one machine wins; the others read what it wrote).
 */
import { Redis } from 'ioredis';
import { CommandsFileError } from '../config/commands.js';
import type { Logger } from '../logging/logger.js';
import { connectWithin, redactRedisUrl } from '../redis/connect.js';
import { parseDocument, serializeDocument, type WhitelistDocument } from './document.js';
import type { Edited } from './edit.js';
import { readWhitelistFile } from './file.js';
import { Serial, type WhitelistSource } from './source.js';

export interface RedisSourceOptions {
  readonly redisUrl: string;
  /** Prefix of the keys (settings.redisPrefix). */
  readonly prefix: string;
  /** The whitelist file: the seed, and the folder relative `cwd`s resolve from. */
  readonly file: string;
  readonly logger: Logger;
  /** How often the version key is polled, ms. @default 1000 */
  readonly pollMs?: number;
  /** @default 5000 */
  readonly connectTimeoutMs?: number;
}

/** Sets the document and its version, only when there is no document yet; returns the version (0: not seeded). */
const SEED_SCRIPT = `if redis.call('SET', KEYS[1], ARGV[1], 'NX') then return redis.call('INCR', KEYS[2]) else return 0 end`;

/** Edits retried after a concurrent write before giving up. */
const EDIT_ATTEMPTS = 10;

export class RedisSource implements WhitelistSource {
  readonly kind = 'redis';
  readonly name: string;
  readonly file: string;
  readonly #client: Redis;
  readonly #docKey: string;
  readonly #versionKey: string;
  readonly #serial = new Serial();
  #timer: NodeJS.Timeout | undefined;
  #lastVersion: string | null = null;
  #failing = false;
  #closed: Promise<void> | undefined;

  private constructor(
    client: Redis,
    private readonly options: RedisSourceOptions,
  ) {
    this.#client = client;
    this.#docKey = `${options.prefix}:whitelist`;
    this.#versionKey = `${options.prefix}:whitelist:version`;
    this.name = `redis key ${this.#docKey}`;
    this.file = options.file;
  }

  /**
   * Connects, and seeds Redis from the file when it holds no whitelist yet.
   * @returns the source and whether this call seeded it.
   */
  static async open(options: RedisSourceOptions): Promise<{ source: RedisSource; seeded: boolean }> {
    const where = redactRedisUrl(options.redisUrl);
    const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    const client = new Redis(options.redisUrl, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: connectTimeoutMs,
      commandTimeout: 2000,
      disconnectTimeout: 200,
    });
    let lastError: Error | undefined;
    // Required: without an 'error' listener ioredis prints to the console.
    client.on('error', (error: Error) => (lastError = error));
    await connectWithin(client, { where, for: 'for the whitelist', timeoutMs: connectTimeoutMs, lastError: () => lastError });
    const source = new RedisSource(client, options);
    try {
      return { source, seeded: await source.#seed() };
    } catch (error) {
      await source.close();
      throw error;
    }
  }

  async #seed(): Promise<boolean> {
    if ((await this.#client.exists(this.#docKey)) === 1) return false;
    // Only now is the file needed: a machine joining a seeded Redis may have none.
    const doc = await readWhitelistFile(this.options.file);
    const version = await this.#client.eval(SEED_SCRIPT, 2, this.#docKey, this.#versionKey, serializeDocument(doc));
    return Number(version) > 0;
  }

  /** In line with edits: a transaction of its own between an edit's WATCH and EXEC would undo the WATCH. */
  read(): Promise<WhitelistDocument> {
    return this.#serial.run(async () => {
      const replies = await this.#client.multi().get(this.#docKey).get(this.#versionKey).exec();
      const text = replies?.[0]?.[1] as string | null | undefined;
      if (text === null || text === undefined) throw new CommandsFileError(`${this.name}: no whitelist stored (was the key deleted?)`, { file: this.name });
      this.#lastVersion = (replies?.[1]?.[1] as string | null | undefined) ?? null;
      return parseDocument(text, this.name);
    });
  }

  update<T extends Edited>(edit: (doc: WhitelistDocument) => T): Promise<T> {
    return this.#serial.run(async () => {
      for (let attempt = 0; attempt < EDIT_ATTEMPTS; attempt += 1) {
        await this.#client.watch(this.#docKey, this.#versionKey);
        let result: T;
        try {
          const text = await this.#client.get(this.#docKey);
          if (text === null) throw new CommandsFileError(`${this.name}: no whitelist stored (was the key deleted?)`, { file: this.name });
          result = edit(parseDocument(text, this.name));
        } catch (error) {
          await this.#client.unwatch();
          throw error;
        }
        const done = await this.#client.multi().set(this.#docKey, serializeDocument(result.doc)).incr(this.#versionKey).exec();
        if (done !== null) {
          this.#lastVersion = String(done[1]?.[1]);
          return result;
        }
        // Another machine wrote in between: edit its result instead.
      }
      throw new Error(`${this.name}: the whitelist kept changing under this edit (${EDIT_ATTEMPTS} attempts); try again`);
    });
  }

  watch(onChange: () => void): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => {
      this.#client.get(this.#versionKey).then(
        (version) => {
          if (this.#failing) {
            this.#failing = false;
            this.options.logger.info('Redis is reachable again: whitelist changes are followed again', { source: this.name });
          }
          if (version === this.#lastVersion) return;
          this.#lastVersion = version;
          onChange();
        },
        (error: Error) => {
          if (this.#failing || this.#closed) return;
          this.#failing = true;
          this.options.logger.warn('Redis is unreachable: this machine keeps its whitelist until it is back', { source: this.name, error: error.message });
        },
      );
    }, this.options.pollMs ?? 1000);
    this.#timer.unref();
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#timer);
      if (this.#client.status === 'ready') await this.#client.quit().catch(() => this.#client.disconnect());
      else this.#client.disconnect();
    })();
    return this.#closed;
  }
}
