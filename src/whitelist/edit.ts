/**
 * The two edits of the whitelist, shared by the CLI (on a file), the admin API and the Redis
 * store: put an entry (add, or replace when asked) and remove one. Each returns the new
 * document and its specs, validated as the gateway's loader validates, or throws an
 * EditError that names the entry and the problem.
 */
import { CommandsFileError, SCHEMA_KEY } from '../config/commands.js';
import type { CommandSpec } from '../commands/types.js';
import { nearest } from '../policy/nearest.js';
import { validateDocument, withEntry, withoutEntry, type WhitelistDocument } from './document.js';

/** Why an edit was refused: `exists` (add without replace), `missing` (no such entry), `invalid`. */
export type EditProblem = 'exists' | 'missing' | 'invalid';

export class EditError extends Error {
  override name = 'EditError';
  constructor(
    readonly problem: EditProblem,
    readonly key: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export interface EditContext {
  /** The whitelist file: relative `cwd`s resolve from its folder. */
  readonly file: string;
  /** What errors call the whitelist (the file, or the Redis key). @default file */
  readonly source?: string;
}

export interface Edited {
  readonly doc: WhitelistDocument;
  readonly specs: CommandSpec[];
}

/** `"key"`, shortened when long. */
export function quoted(key: string): string {
  return JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key);
}

function validated(doc: WhitelistDocument, context: EditContext): Edited {
  try {
    return { doc, specs: validateDocument(doc, context.file, context.source ?? context.file) };
  } catch (error) {
    if (error instanceof CommandsFileError) throw new EditError('invalid', error.key, error.message);
    throw error;
  }
}

/** Sets entry `key`; refuses an existing key unless `replace`. */
export function putEntry(
  doc: WhitelistDocument,
  key: string,
  entry: unknown,
  options: EditContext & { readonly replace: boolean },
): Edited & { readonly replaced: boolean } {
  if (key === SCHEMA_KEY) throw new EditError('invalid', key, `${quoted(key)} is reserved for the JSON Schema's location; choose another key`);
  const replaced = doc.entries.has(key);
  if (replaced && !options.replace) {
    throw new EditError(
      'exists',
      key,
      `entry ${quoted(key)} already exists in ${options.source ?? options.file}; replace it with --replace (or remove it first)`,
    );
  }
  return { ...validated(withEntry(doc, key, entry), options), replaced };
}

/** Removes entry `key`; refuses a key that is not there, and removing the last entry. */
export function removeEntry(doc: WhitelistDocument, key: string, options: EditContext): Edited {
  if (!doc.entries.has(key)) throw missingEntry(doc, key, options.source ?? options.file);
  if (doc.entries.size === 1) {
    throw new EditError('invalid', key, `entry ${quoted(key)} is the only one: the gateway refuses an empty whitelist, so add another entry first`);
  }
  return validated(withoutEntry(doc, key), options);
}

/** The error for a key that is not in `doc`, with the nearest key as a hint. */
export function missingEntry(doc: WhitelistDocument, key: string, source: string): EditError {
  const best = nearest(key, doc.entries.keys());
  const hint = best && best.distance <= Math.max(2, Math.floor(key.length / 3)) ? `; did you mean ${quoted(best.name)}?` : '';
  return new EditError('missing', key, `no entry ${quoted(key)} in ${source}${hint}`);
}
