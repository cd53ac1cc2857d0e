/**
 * What `mcp-warden commands` works on: a whitelist file (`--file`), or a running gateway's
 * admin API (`--remote`, authenticated with WARDEN_ADMIN_TOKEN from the environment). Both
 * answer the same four questions, so each subcommand is written once.
 */
import { dirname, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommandsFileError } from '../config/commands.js';
import { shownEntry, validateDocument, type WhitelistDocument } from './document.js';
import { EditError, missingEntry, putEntry, removeEntry } from './edit.js';
import { fileExists, readWhitelistFile, writeWhitelistFile } from './file.js';

export interface Listing {
  /** Entries in order (fixed env values hidden). */
  readonly entries: ReadonlyArray<readonly [key: string, entry: unknown]>;
  /** Why the whitelist would not load, when it would not. */
  readonly problem?: string;
}

export interface WhitelistTarget {
  /** The file's path, or the gateway's URL. */
  readonly where: string;
  list(): Promise<Listing>;
  /** The entry of `key`; throws EditError (`missing`) when there is none. */
  get(key: string): Promise<unknown>;
  put(key: string, entry: unknown, replace: boolean): Promise<{ readonly replaced: boolean }>;
  /** @returns the live sessions the entry had, when the gateway says. */
  remove(key: string): Promise<{ readonly liveSessions?: number }>;
}

/** The JSON Schema shipped with this package (dist/whitelist/ and src/whitelist/ sit two levels down). */
const SCHEMA_FILE = fileURLToPath(new URL('../../schema/allowed-commands.schema.json', import.meta.url));

/** `$schema` for a new file at `file`: the shipped schema, relative to the file's folder. */
export function schemaReference(file: string): string {
  const path = relative(dirname(file), SCHEMA_FILE).split(sep).join('/');
  return path.startsWith('.') ? path : `./${path}`;
}

export class FileTarget implements WhitelistTarget {
  constructor(readonly where: string) {}

  async list(): Promise<Listing> {
    const doc = await readWhitelistFile(this.where);
    const entries = [...doc.entries].map(([key, entry]) => [key, shownEntry(entry)] as const);
    try {
      validateDocument(doc, this.where);
      return { entries };
    } catch (error) {
      if (!(error instanceof CommandsFileError)) throw error;
      return { entries, problem: error.message };
    }
  }

  async get(key: string): Promise<unknown> {
    const doc = await readWhitelistFile(this.where);
    if (!doc.entries.has(key)) throw missingEntry(doc, key, this.where);
    return shownEntry(doc.entries.get(key));
  }

  async put(key: string, entry: unknown, replace: boolean): Promise<{ replaced: boolean }> {
    // A new file points editors at the JSON Schema.
    const doc: WhitelistDocument = (await fileExists(this.where))
      ? await readWhitelistFile(this.where)
      : { schema: schemaReference(this.where), entries: new Map() };
    const result = putEntry(doc, key, entry, { file: this.where, replace });
    await writeWhitelistFile(this.where, result.doc);
    return { replaced: result.replaced };
  }

  async remove(key: string): Promise<Record<string, never>> {
    const result = removeEntry(await readWhitelistFile(this.where), key, { file: this.where });
    await writeWhitelistFile(this.where, result.doc);
    return {};
  }
}

/** A refusal from the gateway, or no answer: the message says which and why. */
export class RemoteError extends Error {
  override name = 'RemoteError';
}

/** Longest wait for the gateway's answer. */
const REMOTE_TIMEOUT_MS = 30_000;

export class RemoteTarget implements WhitelistTarget {
  readonly where: string;

  /** @param base the gateway's URL (checked by the caller); @param token the admin token. */
  constructor(
    base: string,
    private readonly token: string,
  ) {
    this.where = base.replace(/\/+$/, '');
  }

  async list(): Promise<Listing> {
    const body = (await this.call('GET', '')) as { commands?: Array<{ key: string; entry: unknown }> };
    return { entries: (body.commands ?? []).map(({ key, entry }) => [key, entry] as const) };
  }

  async get(key: string): Promise<unknown> {
    return ((await this.call('GET', key)) as { entry?: unknown }).entry;
  }

  async put(key: string, entry: unknown, replace: boolean): Promise<{ replaced: boolean }> {
    const body = (await this.call('PUT', key, entry, replace ? {} : { 'If-None-Match': '*' })) as { replaced?: boolean };
    return { replaced: body.replaced === true };
  }

  async remove(key: string): Promise<{ liveSessions?: number }> {
    const body = (await this.call('DELETE', key)) as { liveSessions?: number };
    return typeof body.liveSessions === 'number' ? { liveSessions: body.liveSessions } : {};
  }

  private async call(method: string, key: string, body?: unknown, headers: Record<string, string> = {}): Promise<unknown> {
    const url = `${this.where}/admin/commands${key === '' ? '' : `/${encodeURIComponent(key)}`}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          Authorization: `Bearer ${this.token}`,
          Accept: 'application/json',
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        redirect: 'error',
        signal: AbortSignal.timeout(REMOTE_TIMEOUT_MS),
      });
    } catch (error) {
      const cause = (error as { cause?: { message?: string } }).cause?.message;
      throw new RemoteError(`cannot reach ${this.where}: ${cause ?? (error as Error).message}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.ok) return json ?? {};
    const error = (json as { error?: { message?: unknown; data?: { code?: unknown } } } | undefined)?.error;
    const message = typeof error?.message === 'string' ? error.message : `HTTP ${res.status}`;
    if (res.status === 409) throw new EditError(/already exists/.test(message) ? 'exists' : 'invalid', key, message);
    if (res.status === 404 && error?.data?.code === 'unknown_command' && key !== '' && message !== 'unknown command')
      throw new EditError('missing', key, message);
    if (res.status === 400) throw new EditError('invalid', key, message);
    const hint =
      res.status === 401
        ? " (is WARDEN_ADMIN_TOKEN the gateway's admin token?)"
        : res.status === 403
          ? ' (this is not an admin credential: the gateway\'s WARDEN_ADMIN_TOKEN, or a clients-file entry marked "admin": true)'
          : res.status === 404
            ? ' (the gateway has no whitelist admin API: it needs an admin credential configured, and a whitelist file or Redis of its own)'
            : '';
    throw new RemoteError(`${this.where} answered ${res.status}: ${message}${hint}`);
  }
}
