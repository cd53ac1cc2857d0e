/**
 * The whitelist as a document: what the file (or Redis) holds, entry by entry, in order,
 * before validation. Edits work on this form so that what is written back is the admin's
 * own entries (not the resolved CommandSpecs), and validation is always the loader's own
 * (`parseCommands`), run on exactly the text that will be read back.
 */
import { dirname } from 'node:path';
import { CommandsFileError, parseCommands, SCHEMA_KEY } from '../config/commands.js';
import type { CommandSpec } from '../commands/types.js';

export interface WhitelistDocument {
  /** The top-level `"$schema"`, if any. */
  readonly schema: string | undefined;
  /** Entries in file order; values are unvalidated JSON. */
  readonly entries: ReadonlyMap<string, unknown>;
}

/** Parses whitelist text; `source` names it in errors. Does not validate the entries. */
export function parseDocument(text: string, source: string): WhitelistDocument {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CommandsFileError(`${source}: invalid JSON: ${(error as Error).message}`, { file: source, cause: error });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    parseCommands(json, '.', source); // throws the loader's own message for this
    throw new CommandsFileError(`${source}: top level must be a JSON object`, { file: source });
  }
  const entries = new Map<string, unknown>();
  let schema: string | undefined;
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    if (key === SCHEMA_KEY && typeof value === 'string') schema = value;
    else entries.set(key, value);
  }
  return { schema, entries };
}

/** The document as the plain JSON object the loader reads (`$schema` first). */
export function documentJson(doc: WhitelistDocument): Record<string, unknown> {
  // fromEntries defines own properties, so even a "__proto__" key stays an entry.
  return Object.fromEntries([...(doc.schema === undefined ? [] : [[SCHEMA_KEY, doc.schema] as const]), ...doc.entries]);
}

/** Longest line a short array of strings or numbers is kept on. */
const INLINE_WIDTH = 100;

/**
 * `value` as 2-space JSON at `indent`: objects one member per line, a short array of
 * scalars on one line (`"args": ["-y", "pkg"]`). Members are written as they are, so any
 * key (even `__proto__`) survives.
 */
function pretty(value: unknown, indent: string): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const inline = `[${value.map((item) => JSON.stringify(item)).join(', ')}]`;
    if (value.every((item) => item === null || typeof item !== 'object') && indent.length + inline.length <= INLINE_WIDTH) return inline;
    const inner = `${indent}  `;
    return `[\n${value.map((item) => `${inner}${pretty(item, inner)}`).join(',\n')}\n${indent}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const members = Object.entries(value);
    if (members.length === 0) return '{}';
    const inner = `${indent}  `;
    return `{\n${members.map(([key, item]) => `${inner}${JSON.stringify(key)}: ${pretty(item, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The file's text: 2-space JSON, `$schema` first, then the entries in order, a final newline. */
export function serializeDocument(doc: WhitelistDocument): string {
  return `${pretty(documentJson(doc), '')}\n`;
}

/**
 * Validates `doc` exactly as the gateway's loader does (through its text, so nothing is
 * accepted here that the loader would read differently).
 * @param file the whitelist file: its folder resolves relative `cwd`s; named in errors.
 * @param source the name errors start with. @default file
 */
export function validateDocument(doc: WhitelistDocument, file: string, source = file): CommandSpec[] {
  return parseCommands(JSON.parse(serializeDocument(doc)), dirname(file), source);
}

/** A copy of `doc` with `key` set to `entry` (in place if present, else appended). */
export function withEntry(doc: WhitelistDocument, key: string, entry: unknown): WhitelistDocument {
  const entries = new Map(doc.entries);
  entries.set(key, entry);
  return { schema: doc.schema, entries };
}

/** A copy of `doc` without `key`. */
export function withoutEntry(doc: WhitelistDocument, key: string): WhitelistDocument {
  const entries = new Map(doc.entries);
  entries.delete(key);
  return { schema: doc.schema, entries };
}

/** Entries as shown to an admin: fixed `env` values are never shown, only their names. */
export function shownEntry(entry: unknown): unknown {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return entry;
  const env = (entry as Record<string, unknown>).env;
  if (typeof env !== 'object' || env === null || Array.isArray(env)) return entry;
  return { ...entry, env: Object.fromEntries(Object.keys(env).map((name) => [name, HIDDEN])) };
}

/** What a fixed env value reads as in listings. */
export const HIDDEN = '(hidden)';
