/**
 * `mcp-warden commands ...`: the whitelist from the command line, on a file (`--file`,
 * default the gateway's own: WARDEN_COMMANDS, else allowed-commands.json) or on a running
 * gateway (`--remote URL`, with WARDEN_ADMIN_TOKEN from the environment). Answers on
 * stdout; errors go to stderr and name the entry.
 *
 * Exit codes: 0 done, 1 refused (an invalid whitelist or entry, a key that exists or is
 * missing, a gateway's refusal), 2 usage error.
 */
import { splitCommandLine } from '../commands/argv.js';
import { isLoopbackAddress } from '../http/hostGuard.js';
import { CommandsFileError } from '../config/commands.js';
import { CliUsageError, entryFromArgs, parseCliArgs, type OptionKind, type ParsedArgs } from './cliArgs.js';
import { HIDDEN } from './document.js';
import { EditError, quoted } from './edit.js';
import { FileTarget, RemoteError, RemoteTarget, type WhitelistTarget } from './targets.js';
import { commandLine, endpointPaths, trimBase, urlReport } from './urls.js';

export const COMMANDS_USAGE = `usage: mcp-warden commands SUBCOMMAND [--file FILE | --remote URL] ...

  list [--json]                    every entry, with its URL path
  add KEY [-- COMMAND ARG...]      add an entry; KEY is the name in URLs (/KEY/mcp)
      [--command C] [--args A...]  the server as options instead of after --
                                   (arguments starting with -- only after --)
      [--allow-env NAME...]        names clients may set with ENV_* headers (allowedEnv)
      [--env NAME=VALUE...]        fixed variables; a bare NAME takes its value from this shell
      [--mode shared|isolated] [--description TEXT]
      [--idle keep|hibernate] [--hibernate-after-ms MS] [--max-memory-mb MB]
      [--replace]                  replace an existing entry (otherwise refused)
  remove KEY                       remove an entry (live sessions: the gateway's --on-remove)
  check [FILE]                     validate a whitelist file and print each entry's URL path
  url KEY [--base URL]             the endpoints and ready-to-paste client configurations;
                                   base: --base, --remote, --public-url (WARDEN_PUBLIC_URL),
                                   else http://127.0.0.1:<--port, PORT or 8000>

  --file FILE    the whitelist file (default WARDEN_COMMANDS, else allowed-commands.json)
  --remote URL   a running gateway (https://APP.fly.dev); the admin token is read from
                 WARDEN_ADMIN_TOKEN, never from the command line

exit status: 0 done, 1 refused (the message names the entry), 2 usage error`;

const COMMON: Record<string, OptionKind> = { file: 'one', remote: 'one', help: 'flag' };
const OPTIONS: Record<string, Record<string, OptionKind>> = {
  list: { ...COMMON, json: 'flag' },
  add: {
    ...COMMON,
    command: 'one',
    args: 'many',
    'allow-env': 'many',
    env: 'many',
    mode: 'one',
    idle: 'one',
    'hibernate-after-ms': 'one',
    'max-memory-mb': 'one',
    description: 'one',
    replace: 'flag',
  },
  remove: { ...COMMON },
  check: { ...COMMON },
  url: { ...COMMON, base: 'one', 'public-url': 'one', port: 'one' },
};

type Out = (text: string) => void;

/** Runs `commands <subcommand>` (argv after `commands`); resolves the exit code. */
export async function runCommandsCli(argv: readonly string[], env: NodeJS.ProcessEnv, out: Out, err: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    (sub === undefined ? err : out)(`${COMMANDS_USAGE}\n`);
    return sub === undefined ? 2 : 0;
  }
  try {
    const options = OPTIONS[sub];
    if (!options) throw new CliUsageError(`unknown subcommand ${JSON.stringify(sub)}`);
    const parsed = parseCliArgs(rest, options);
    if (parsed.flags.has('help')) {
      out(`${COMMANDS_USAGE}\n`);
      return 0;
    }
    if (sub !== 'add' && parsed.rest !== undefined) throw new CliUsageError(`${sub} takes nothing after --`);
    const handlers = { list, add, remove, check, url } as const;
    return await handlers[sub as keyof typeof handlers](parsed, env, out, err);
  } catch (error) {
    if (error instanceof CliUsageError) {
      err(`mcp-warden commands: ${error.message}\n${COMMANDS_USAGE}\n`);
      return 2;
    }
    if (error instanceof EditError || error instanceof CommandsFileError || error instanceof RemoteError) {
      err(`mcp-warden commands: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

/** The whitelist file the gateway would read. */
function defaultFile(env: NodeJS.ProcessEnv): string {
  return env.WARDEN_COMMANDS || 'allowed-commands.json';
}

/** A gateway URL the admin token may be sent to: https, or http to this machine. */
function remoteBase(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliUsageError(`--remote ${JSON.stringify(value)} is not a URL (https://APP.fly.dev)`);
  }
  const loopback = isLoopbackAddress(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new CliUsageError('--remote must be https:// (http:// only for this machine): the admin token would cross the network in clear');
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '')
    throw new CliUsageError("--remote takes the gateway's base URL only (no credentials, query or fragment)");
  return trimBase(url.href);
}

function targetOf(parsed: ParsedArgs, env: NodeJS.ProcessEnv): WhitelistTarget {
  const remote = parsed.one.get('remote');
  const file = parsed.one.get('file');
  if (remote !== undefined && file !== undefined) throw new CliUsageError('give --file or --remote, not both');
  if (remote === undefined) return new FileTarget(file ?? defaultFile(env));
  const base = remoteBase(remote);
  const token = env.WARDEN_ADMIN_TOKEN;
  if (!token)
    throw new CliUsageError('--remote needs the admin token in the environment: export WARDEN_ADMIN_TOKEN=... (it is never taken from the command line)');
  return new RemoteTarget(base, token);
}

function keyOf(parsed: ParsedArgs, sub: string): string {
  const [key, ...extra] = parsed.positionals;
  if (key === undefined) throw new CliUsageError(`${sub} needs a KEY`);
  if (extra.length > 0) throw new CliUsageError(`${sub} takes one KEY (got also ${extra.map((e) => JSON.stringify(e)).join(' ')}); quote a key with spaces`);
  return key;
}

function noPositionals(parsed: ParsedArgs, sub: string): void {
  if (parsed.positionals.length > 0) throw new CliUsageError(`${sub} takes no ${JSON.stringify(parsed.positionals[0])}`);
}

/** What an entry runs, as a command line (for listings). */
function runs(key: string, entry: unknown): string {
  if (typeof entry !== 'object' || entry === null) return key;
  const { command, args } = entry as { command?: unknown; args?: unknown };
  const extra = Array.isArray(args) ? args.map(String) : [];
  if (typeof command === 'string') return commandLine([command, ...extra]);
  try {
    return commandLine([...splitCommandLine(key), ...extra]);
  } catch {
    return key;
  }
}

function describeEntry(key: string, entry: unknown): string {
  const lines = [`${key}  ${endpointPaths(key).mcp}`, `  runs: ${runs(key, entry)}`];
  if (typeof entry === 'object' && entry !== null) {
    const e = entry as Record<string, unknown>;
    if (typeof e.description === 'string') lines.push(`  description: ${e.description}`);
    if (Array.isArray(e.allowedEnv)) lines.push(`  allowedEnv: ${e.allowedEnv.length === 0 ? '(none)' : e.allowedEnv.join(', ')}`);
    if (typeof e.env === 'object' && e.env !== null) lines.push(`  env: ${Object.keys(e.env).join(', ')} (values ${HIDDEN})`);
    for (const field of ['mode', 'sharedChildren', 'maxChildren', 'idle', 'hibernateAfterMs', 'maxMemoryMb', 'cwd'] as const) {
      if (e[field] !== undefined) lines.push(`  ${field}: ${String(e[field])}`);
    }
    if (typeof e.pool === 'object' && e.pool !== null) lines.push(`  pool: ${JSON.stringify(e.pool)}`);
  }
  return lines.join('\n');
}

async function list(parsed: ParsedArgs, env: NodeJS.ProcessEnv, out: Out, err: Out): Promise<number> {
  noPositionals(parsed, 'list');
  const target = targetOf(parsed, env);
  const listing = await target.list();
  if (parsed.flags.has('json')) {
    out(`${JSON.stringify({ commands: listing.entries.map(([key, entry]) => ({ key, paths: endpointPaths(key), entry })) }, null, 2)}\n`);
  } else {
    out(listing.entries.length === 0 ? `${target.where}: no entries\n` : `${listing.entries.map(([key, entry]) => describeEntry(key, entry)).join('\n\n')}\n`);
  }
  if (listing.problem === undefined) return 0;
  err(`mcp-warden commands: the gateway would not load this whitelist: ${listing.problem}\n`);
  return 1;
}

async function add(parsed: ParsedArgs, env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  const key = keyOf(parsed, 'add');
  const entry = entryFromArgs(parsed, env);
  const target = targetOf(parsed, env);
  const { replaced } = await target.put(key, entry, parsed.flags.has('replace'));
  const remote = target instanceof RemoteTarget;
  const paths = endpointPaths(key);
  const where = remote ? `on ${target.where}` : `${replaced ? 'in' : 'to'} ${target.where}`;
  out(
    `${replaced ? 'replaced' : 'added'} ${quoted(key)} ${where}\n` +
      `  endpoint: ${remote ? target.where : ''}${paths.mcp}  (legacy SSE: ${paths.sse})\n` +
      (remote ? '  serving now\n' : '  a gateway reading this file serves it within --commands-poll-ms (1 s by default)\n') +
      `  client configurations: mcp-warden commands url ${commandLine([key])}${remote ? ` --remote ${target.where}` : ''}\n`,
  );
  return 0;
}

async function remove(parsed: ParsedArgs, env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  const key = keyOf(parsed, 'remove');
  const target = targetOf(parsed, env);
  const { liveSessions } = await target.remove(key);
  const sessions =
    liveSessions === undefined
      ? ''
      : `; it had ${liveSessions} live session${liveSessions === 1 ? '' : 's'} (the gateway's --on-remove: finish lets them run on, end ends them)`;
  out(`removed ${quoted(key)} ${target instanceof RemoteTarget ? 'on' : 'from'} ${target.where}${sessions}\n`);
  return 0;
}

async function check(parsed: ParsedArgs, env: NodeJS.ProcessEnv, out: Out, err: Out): Promise<number> {
  if (parsed.one.has('remote')) throw new CliUsageError('check validates a file; for a running gateway, use list --remote');
  const [file, ...extra] = parsed.positionals;
  if (extra.length > 0) throw new CliUsageError('check takes one FILE');
  if (file !== undefined && parsed.one.has('file')) throw new CliUsageError('give the file as FILE or --file, not both');
  const target = new FileTarget(file ?? parsed.one.get('file') ?? defaultFile(env));
  const listing = await target.list();
  if (listing.problem !== undefined) {
    err(`mcp-warden commands: ${listing.problem}\n`);
    return 1;
  }
  const width = Math.min(40, Math.max(...listing.entries.map(([key]) => key.length)));
  out(
    `${target.where}: ${listing.entries.length} entr${listing.entries.length === 1 ? 'y' : 'ies'}, valid\n` +
      listing.entries.map(([key]) => `  ${key.padEnd(width)}  ${endpointPaths(key).mcp}\n`).join(''),
  );
  return 0;
}

async function url(parsed: ParsedArgs, env: NodeJS.ProcessEnv, out: Out): Promise<number> {
  const key = keyOf(parsed, 'url');
  const target = targetOf(parsed, env);
  await target.get(key); // a typo is refused here, with the nearest key
  const port = parsed.one.get('port') ?? (env.PORT || '8000');
  if (!/^\d{1,5}$/.test(port)) throw new CliUsageError(`--port ${JSON.stringify(port)} is not a port number`);
  const base =
    parsed.one.get('base') ??
    (target instanceof RemoteTarget ? target.where : undefined) ??
    parsed.one.get('public-url') ??
    (env.WARDEN_PUBLIC_URL || `http://127.0.0.1:${port}`);
  let parsedBase: URL;
  try {
    parsedBase = new URL(base);
  } catch {
    throw new CliUsageError(`the base ${JSON.stringify(base)} is not a URL (https://APP.fly.dev)`);
  }
  if (parsedBase.protocol !== 'https:' && parsedBase.protocol !== 'http:') throw new CliUsageError(`the base ${JSON.stringify(base)} must be an http(s) URL`);
  out(urlReport(key, trimBase(`${parsedBase.origin}${parsedBase.pathname}`)));
  return 0;
}
