/**
 * The argument grammar of `mcp-warden commands`: options that take one value
 * (`--file F`, `--file=F`), options that take several (`--allow-env A B C`: every following
 * word up to the next `--option`), flags (`--replace`), positionals, and, for `add`, the
 * server's own command line after `--`. Secrets never come from here: the admin token is
 * read from the environment.
 */

export class CliUsageError extends Error {
  override name = 'CliUsageError';
}

export type OptionKind = 'one' | 'many' | 'flag';

export interface ParsedArgs {
  readonly positionals: string[];
  readonly one: Map<string, string>;
  readonly many: Map<string, string[]>;
  readonly flags: Set<string>;
  /** Words after `--`, when there was a `--`. */
  readonly rest: string[] | undefined;
}

/** Options that would put a secret in argv (visible in `ps` and shell history). */
const SECRET_OPTIONS = new Set(['token', 'admin-token', 'secret']);

export function parseCliArgs(args: readonly string[], options: Readonly<Record<string, OptionKind>>): ParsedArgs {
  const parsed: ParsedArgs = { positionals: [], one: new Map(), many: new Map(), flags: new Set(), rest: undefined };
  let i = 0;
  while (i < args.length) {
    const arg = args[i]!;
    i += 1;
    if (arg === '--') {
      (parsed as { rest: string[] }).rest = args.slice(i);
      break;
    }
    if (!arg.startsWith('--') || arg === '-') {
      if (arg === '-h') {
        parsed.flags.add('help');
        continue;
      }
      parsed.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (SECRET_OPTIONS.has(name)) {
      throw new CliUsageError(`--${name} is not accepted: the admin token is read from WARDEN_ADMIN_TOKEN in the environment, never from the command line`);
    }
    const kind = options[name];
    if (kind === undefined) throw new CliUsageError(`unknown option --${name}`);
    if (kind === 'flag') {
      if (eq !== -1) throw new CliUsageError(`--${name} takes no value`);
      parsed.flags.add(name);
      continue;
    }
    const values: string[] = [];
    if (eq !== -1) values.push(arg.slice(eq + 1));
    else if (kind === 'one') {
      if (i >= args.length) throw new CliUsageError(`--${name} needs a value`);
      values.push(args[i]!);
      i += 1;
    } else {
      while (i < args.length && !args[i]!.startsWith('--')) values.push(args[i++]!);
      if (values.length === 0) throw new CliUsageError(`--${name} needs at least one value`);
    }
    if (kind === 'one') {
      if (parsed.one.has(name)) throw new CliUsageError(`--${name} is given twice`);
      parsed.one.set(name, values[0]!);
    } else {
      parsed.many.set(name, [...(parsed.many.get(name) ?? []), ...values]);
    }
  }
  return parsed;
}

/**
 * The entry `add` writes, from its options. Validation is the loader's (the caller
 * validates the whole whitelist); this only checks what the loader cannot see.
 */
export function entryFromArgs(parsed: ParsedArgs, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const command = parsed.one.get('command');
  const args = parsed.many.get('args');
  if (parsed.rest !== undefined && (command !== undefined || args !== undefined)) {
    throw new CliUsageError('give the server either after -- (a command line) or with --command/--args, not both');
  }
  if (parsed.rest !== undefined && parsed.rest.length === 0) throw new CliUsageError('nothing follows --: give the command and its arguments');
  const entry: Record<string, unknown> = {};
  const description = parsed.one.get('description');
  if (description !== undefined) entry.description = description;
  if (parsed.rest !== undefined) {
    entry.command = parsed.rest[0];
    entry.args = parsed.rest.slice(1);
  } else {
    if (command !== undefined) entry.command = command;
    if (args !== undefined) entry.args = args;
  }
  const fixed = parsed.many.get('env');
  if (fixed !== undefined) entry.env = fixedEnv(fixed, env);
  const allowed = parsed.many.get('allow-env');
  if (allowed !== undefined) entry.allowedEnv = allowed.flatMap((value) => value.split(',')).filter((name) => name !== '');
  const mode = parsed.one.get('mode');
  if (mode !== undefined) entry.mode = mode;
  const idle = parsed.one.get('idle');
  if (idle !== undefined) entry.idle = idle;
  for (const [option, field] of [
    ['hibernate-after-ms', 'hibernateAfterMs'],
    ['max-memory-mb', 'maxMemoryMb'],
  ] as const) {
    const value = parsed.one.get(option);
    if (value === undefined) continue;
    // A number the whitelist's own checks then bound; a word is a usage error here.
    if (!/^\d+$/.test(value)) throw new CliUsageError(`--${option} takes a whole number, not "${value}"`);
    entry[field] = Number(value);
  }
  return entry;
}

/** `NAME=VALUE` pairs; a bare `NAME` takes its value from this shell (out of argv and history). */
function fixedEnv(pairs: readonly string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const name = eq === -1 ? pair : pair.slice(0, eq);
    if (Object.hasOwn(out, name)) throw new CliUsageError(`--env ${name} is given twice`);
    if (eq !== -1) {
      Object.defineProperty(out, name, { value: pair.slice(eq + 1), enumerable: true, writable: true, configurable: true });
      continue;
    }
    const value = env[name];
    if (value === undefined) throw new CliUsageError(`--env ${name}: no value given (NAME=VALUE) and ${name} is not set in this environment`);
    Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
