/**
 * Loads and validates `allowed-commands.json`, the whitelist of MCP servers the gateway
 * may start. The file is security-relevant: anything unexpected (an unknown field, a
 * malformed name, a string value that differs from its key) is an error naming the entry,
 * never silently ignored.
 *
 * Shape: a JSON object whose keys are command lines (what a client URL-encodes). Each
 * value is either
 *  - a string identical to its key (the older shape), or
 *  - an object validated by {@link commandEntrySchema}.
 * A top-level `"$schema"` (a string: where editors find the JSON Schema) is not an entry.
 * `schema/allowed-commands.schema.json` is generated from these schemas
 * (./commandsSchema.ts, npm run schema).
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { splitCommandLine } from '../commands/argv.js';
import { wallFamilyOfAllowedEntry } from '../commands/envPolicy.js';
import type { CommandSpec } from '../commands/types.js';

/** The top-level key that points editors at the JSON Schema; never an entry. */
export const SCHEMA_KEY = '$schema';

/** Longest accepted key, in UTF-16 code units. */
export const MAX_COMMAND_KEY_LENGTH = 1024;

/** Names the admin may set in an entry's fixed `env`. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Entries of `allowedEnv`: upper-case names, optionally ending in `*` for a prefix. */
const ALLOWED_ENV_ENTRY = /^[A-Z_][A-Z0-9_]*\*?$/;
/** Control characters (C0, DEL, C1). */
const CONTROL_CHARS = /\p{Cc}/u;
/** A UTF-16 surrogate without its partner: such a key can never arrive in a URL. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const noNul = (value: string): boolean => !value.includes('\0');

/**
 * zod records skip an own `__proto__` key without an error; a whitelist must not drop
 * anything silently, so report it.
 */
function rejectProtoKey(input: unknown, ctx: z.RefinementCtx): unknown {
  if (typeof input === 'object' && input !== null && Object.hasOwn(input, '__proto__')) {
    ctx.addIssue({ code: 'custom', message: 'name "__proto__" is reserved' });
  }
  return input;
}

/** A string without NUL (NUL cannot be passed to spawn). */
const text = () => z.string({ error: 'must be a string' }).refine(noNul, { error: 'must not contain a NUL character' });

/**
 * One entry of the whitelist in object form. Every field is optional; unknown fields are
 * rejected. Extend with `commandEntrySchema.extend({...})` to add fields.
 */
export const commandEntrySchema = z.strictObject({
  /** Executable. When given, `args` is used as-is and the key is only a name. */
  command: text()
    .refine((value) => value.length > 0, { error: 'must not be empty' })
    .optional()
    .describe('The executable (found on the fixed PATH, or an absolute path); with it, the key is only a name and args are the whole argument list'),
  /** Arguments; appended to the key's words when `command` is absent. */
  args: z
    .array(text(), { error: 'must be an array of strings' })
    .optional()
    .describe("Arguments, passed as argv (never through a shell); appended to the key's words when command is absent"),
  /** Fixed environment set by the admin (trusted; not subject to the header blocklist). */
  env: z
    .preprocess(
      rejectProtoKey,
      z.record(z.string().regex(ENV_NAME, { error: 'must be a variable name matching ^[A-Za-z_][A-Za-z0-9_]*$' }), text(), {
        error: 'must be an object mapping variable names to strings',
      }),
    )
    .optional()
    .describe("Fixed variables for this server, set by the admin; a client's ENV_* header cannot change them"),
  /**
   * Names a client may set with `ENV_*` headers; a trailing `*` allows a prefix of names
   * off the blocklist. An exact name opens a blocklisted one; a name of the wall fails the load.
   */
  allowedEnv: z
    .array(z.string({ error: 'must be a string' }).regex(ALLOWED_ENV_ENTRY, { error: 'must be an upper-case variable name (optionally ending in *)' }), {
      error: 'must be an array of strings',
    })
    .optional()
    .describe('Names a client may set with ENV_* headers: exact upper-case names, or prefixes ending in *; [] for none (docs/env.md)'),
  /** Working directory; relative paths resolve against the whitelist file's folder. */
  cwd: text()
    .refine((value) => value.length > 0, { error: 'must not be empty' })
    .optional()
    .describe("Working directory; a relative path resolves from the whitelist file's folder, which is also the default"),
  /** Free text shown in /status and logs. */
  description: z.string({ error: 'must be a string' }).optional().describe('Free text, shown in /status'),
  /** Warm pool for sessions without ENV_* headers. */
  pool: z
    .strictObject({
      /** Spares kept ready; defaults to 0 when `allowedEnv` is non-empty, else the global default. */
      min: z.number({ error: 'must be a number' }).int().min(0).max(64).describe('Warm spares kept ready (0-64)'),
    })
    .partial()
    .optional()
    .describe('Warm spares for sessions without ENV_* headers (docs/processes.md)'),
  /** Most children this command may run at once (sessions). */
  maxChildren: z.number({ error: 'must be a number' }).int().positive().optional().describe('Most children this server may run at once'),
  /** `shared`: sessions without ENV_* headers share children (stateless servers only). */
  mode: z
    .enum(['isolated', 'shared'], { error: 'must be "isolated" or "shared"' })
    .optional()
    .describe('isolated (default): one child per session; shared: sessions without ENV_* headers share children (stateless servers only)'),
  /** Children a shared command spreads its sessions over. */
  sharedChildren: z
    .number({ error: 'must be a number' })
    .int()
    .min(1)
    .max(16)
    .optional()
    .describe('How many children a shared server spreads its sessions over (1-16)'),
  /** Most resident memory (MB) one child tree may use; over it the child is stopped and its session ends. */
  maxMemoryMb: z
    .number({ error: 'must be a number' })
    .int()
    .min(16)
    .max(1_048_576)
    .optional()
    .describe('Most resident memory (MB, the whole process tree) one child may use; over it the child is stopped and its session ends'),
  /** `hibernate`: after `hibernateAfterMs` without traffic a session's child is stopped and restarted on its next message. */
  idle: z
    .enum(['keep', 'hibernate'], { error: 'must be "keep" or "hibernate"' })
    .optional()
    .describe("keep (default): the child lives as long as its session; hibernate: an idle session's child is stopped and started again on its next message"),
  /** Idle time before a hibernating entry's child is stopped, ms (needs `"idle": "hibernate"`). */
  hibernateAfterMs: z
    .number({ error: 'must be a number' })
    .int()
    .min(100)
    .max(86_400_000)
    .optional()
    .describe('Idle time before a hibernating entry\'s child is stopped, ms (needs "idle": "hibernate")'),
});

export type CommandEntry = z.infer<typeof commandEntrySchema>;

/** The whitelist file (or its parsed JSON) is invalid. */
export class CommandsFileError extends Error {
  /** The offending entry's key, when one entry is at fault. */
  readonly key: string | undefined;
  /** The file the JSON came from, when it was loaded from a file. */
  readonly file: string | undefined;

  constructor(message: string, options: { key?: string; file?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CommandsFileError';
    this.key = options.key;
    this.file = options.file;
  }
}

/** Reads, parses and validates a whitelist file. Errors name the file. */
export async function loadCommandsFile(path: string): Promise<CommandSpec[]> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new CommandsFileError(`${path}: cannot read file: ${reason}`, { file: path, cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new CommandsFileError(`${path}: invalid JSON: ${reason}`, { file: path, cause: error });
  }
  return parseCommands(json, dirname(path), path);
}

/**
 * Validates parsed whitelist JSON and resolves every entry to a {@link CommandSpec}.
 * @param baseDir folder relative `cwd` values resolve against; also the default `cwd`.
 * @param source file name used as the prefix of error messages, if any.
 */
export function parseCommands(json: unknown, baseDir: string, source?: string): CommandSpec[] {
  const prefix = source === undefined ? '' : `${source}: `;
  const fail = (message: string, key?: string): never => {
    throw new CommandsFileError(`${prefix}${key === undefined ? '' : `entry ${quoteKey(key)}: `}${message}`, {
      key,
      file: source,
    });
  };

  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    const got = json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json;
    return fail(`top level must be a JSON object mapping command lines to entries, got ${got}`);
  }
  const entries = Object.entries(json).filter(([key]) => key !== SCHEMA_KEY);
  const schemaRef: unknown = (json as Record<string, unknown>)[SCHEMA_KEY];
  if (Object.hasOwn(json, SCHEMA_KEY) && typeof schemaRef !== 'string') {
    return fail(`"${SCHEMA_KEY}" must be a string (where editors find the JSON Schema), not an entry`);
  }
  if (entries.length === 0) {
    return fail('no commands defined (the object is empty)');
  }

  const absoluteBase = resolve(baseDir);
  const specs: CommandSpec[] = [];
  for (const [key, value] of entries) {
    const keyProblem = checkKey(key);
    if (keyProblem !== undefined) fail(keyProblem, key);
    specs.push(toSpec(key, value, absoluteBase, fail));
  }
  return specs;
}

function checkKey(key: string): string | undefined {
  if (key.length === 0) return 'key must not be empty';
  if (key.length > MAX_COMMAND_KEY_LENGTH) return `key is longer than ${MAX_COMMAND_KEY_LENGTH} characters`;
  if (key.trim() !== key) return 'key must not start or end with whitespace';
  if (CONTROL_CHARS.test(key)) return 'key must not contain control characters';
  if (LONE_SURROGATE.test(key)) return 'key must be well-formed Unicode';
  return undefined;
}

function toSpec(key: string, value: unknown, baseDir: string, fail: (message: string, key?: string) => never): CommandSpec {
  let entry: CommandEntry;
  if (typeof value === 'string') {
    if (value !== key) fail('a string value must be identical to its key (use an object to set options)', key);
    entry = {};
  } else if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const parsed = commandEntrySchema.safeParse(value);
    if (!parsed.success) fail(parsed.error.issues.map(describeIssue).join('; '), key);
    entry = parsed.data as CommandEntry;
  } else {
    return fail('value must be an object or a string identical to the key', key);
  }

  checkAllowedEnv(entry.allowedEnv ?? [], key, fail);
  if (entry.hibernateAfterMs !== undefined && entry.idle !== 'hibernate') fail('hibernateAfterMs needs "idle": "hibernate"', key);

  let command: string;
  let args: string[];
  if (entry.command !== undefined) {
    command = entry.command;
    args = [...(entry.args ?? [])];
  } else {
    let words: string[];
    try {
      words = splitCommandLine(key);
    } catch (error) {
      return fail(`key is not a valid command line: ${(error as Error).message}`, key);
    }
    const [first, ...rest] = words;
    if (first === undefined || first.length === 0) return fail('the command (first word of the key) is empty', key);
    command = first;
    args = [...rest, ...(entry.args ?? [])];
  }

  return {
    key,
    command,
    args: Object.freeze(args),
    cwd: entry.cwd === undefined ? baseDir : resolve(baseDir, entry.cwd),
    env: Object.freeze(Object.fromEntries(Object.entries(entry.env ?? {}))),
    allowedEnv: entry.allowedEnv === undefined ? undefined : Object.freeze([...entry.allowedEnv]),
    description: entry.description,
    // Entries that take ENV_* variables get no spares unless asked: a spare has no env.
    pool: entry.pool?.min !== undefined ? { min: entry.pool.min } : entry.allowedEnv?.length ? { min: 0 } : undefined,
    maxChildren: entry.maxChildren,
    mode: entry.mode,
    sharedChildren: entry.sharedChildren,
    maxMemoryMb: entry.maxMemoryMb,
    idle: entry.idle,
    hibernateAfterMs: entry.hibernateAfterMs,
  };
}

/**
 * An `allowedEnv` entry may open a blocklisted name (exact entries only), never a name of
 * the wall: naming one is a mistake the admin learns of at load, not at the first request.
 */
function checkAllowedEnv(allowed: readonly string[], key: string, fail: (message: string, key?: string) => never): void {
  allowed.forEach((name, index) => {
    const family = wallFamilyOfAllowedEntry(name);
    if (family === undefined) return;
    fail(
      `allowedEnv[${index}] ${JSON.stringify(name)} names a variable no client may ever set ` +
        `(family ${family.id}: it ${family.why}); set a fixed value in "env" instead, or remove it`,
      key,
    );
  });
}

type Issue = z.core.$ZodIssue;

function describeIssue(issue: Issue): string {
  if (issue.code === 'unrecognized_keys') {
    const fields = issue.keys.map((k) => JSON.stringify(k)).join(', ');
    const allowed = Object.keys(commandEntrySchema.shape).join(', ');
    return `unknown field${issue.keys.length === 1 ? '' : 's'} ${fields} (allowed: ${allowed})`;
  }
  if (issue.code === 'invalid_key') {
    const parent = formatPath(issue.path.slice(0, -1));
    const name = issue.path[issue.path.length - 1];
    const inner = issue.issues[0]?.message ?? issue.message;
    return `${parent} name ${JSON.stringify(String(name))} ${inner}`;
  }
  const where = formatPath(issue.path);
  return where === '' ? issue.message : `${where} ${issue.message}`;
}

/** `['allowedEnv', 1]` -> `allowedEnv[1]`; `['env', 'A B']` -> `env["A B"]`. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

/** Quotes a key for a message, escaping control characters and shortening long keys. */
function quoteKey(key: string): string {
  const shown = key.length > 80 ? `${key.slice(0, 80)}…` : key;
  return JSON.stringify(shown);
}
