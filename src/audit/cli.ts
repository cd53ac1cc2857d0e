/**
 * `mcp-warden audit ...`: offline tools for the audit trail. Unlike the gateway, this
 * subcommand answers on stdout. The HMAC key only ever comes from the environment, never
 * from argv (where `ps` and shell history would show it).
 *
 * Exit codes: 0 verified, 1 broken (the chain, or the end against the head file), 2 usage
 * error or unreadable file. Warnings (no head file) go to stderr.
 */
import { parseArgs } from 'node:util';
import { verifyAuditFile } from './verify.js';

/** The variable the HMAC key is read from unless `--hmac-key-env` names another. */
const DEFAULT_HMAC_KEY_ENV = 'WARDEN_AUDIT_HMAC_KEY';

const AUDIT_USAGE = `usage: mcp-warden audit verify FILE [--hmac-key-env VAR] [--require-head]

  verify FILE           check the hash chain of an audit file, and its end against
                        FILE.head (records removed from the end show as missing)
  --hmac-key-env VAR    read the HMAC key from the environment variable VAR
                        (default ${DEFAULT_HMAC_KEY_ENV}; unset or empty: plain SHA-256)
  --require-head        fail, instead of warning, when FILE.head is missing

exit status: 0 verified, 1 broken, 2 usage error or unreadable file`;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A bad command line; the message is printed with the usage. */
class AuditUsageError extends Error {
  override name = 'AuditUsageError';
}

interface VerifyCommand {
  readonly file: string;
  readonly hmacKey: string | undefined;
  readonly requireHead: boolean;
}

function parseVerify(args: readonly string[], env: NodeJS.ProcessEnv): VerifyCommand {
  if (args.some((arg) => arg === '--hmac-key' || arg.startsWith('--hmac-key='))) {
    throw new AuditUsageError('the key is never taken from the command line: use --hmac-key-env VAR');
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { 'hmac-key-env': { type: 'string' }, 'require-head': { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new AuditUsageError((error as Error).message);
  }
  const [file, ...extra] = parsed.positionals;
  if (file === undefined || file === '') throw new AuditUsageError('verify needs a FILE');
  if (extra.length > 0) throw new AuditUsageError('verify takes one FILE');
  const requireHead = parsed.values['require-head'] === true;
  const named = parsed.values['hmac-key-env'];
  if (named === undefined) {
    const key = env[DEFAULT_HMAC_KEY_ENV];
    return { file, hmacKey: key === undefined || key === '' ? undefined : key, requireHead };
  }
  if (!ENV_NAME.test(named)) throw new AuditUsageError('--hmac-key-env needs an environment variable name');
  const key = env[named];
  if (key === undefined || key === '') throw new AuditUsageError(`environment variable ${named} is not set or empty`);
  return { file, hmacKey: key, requireHead };
}

/** Runs `audit <subcommand>` (argv after `audit`); resolves the exit code. */
export async function runAuditCli(argv: readonly string[], env: NodeJS.ProcessEnv, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    out(`${AUDIT_USAGE}\n`);
    return 0;
  }
  let verify: VerifyCommand;
  try {
    if (command === undefined) throw new AuditUsageError('missing subcommand');
    if (command !== 'verify') throw new AuditUsageError(`unknown subcommand ${JSON.stringify(command)}`);
    verify = parseVerify(rest, env);
  } catch (error) {
    if (!(error instanceof AuditUsageError)) throw error;
    err(`mcp-warden audit: ${error.message}\n${AUDIT_USAGE}\n`);
    return 2;
  }
  let result;
  try {
    result = await verifyAuditFile(verify.file, { requireHead: verify.requireHead, ...(verify.hmacKey === undefined ? {} : { hmacKey: verify.hmacKey }) });
  } catch (error) {
    err(`mcp-warden audit: cannot read ${JSON.stringify(verify.file)}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  if (result.ok) {
    out(`ok: ${result.lines} lines verified${result.head === 'matches' ? '; the head file matches' : ''}\n`);
    for (const warning of result.warnings) err(`mcp-warden audit: warning: ${warning}\n`);
    return 0;
  }
  out(result.line === undefined ? `broken: ${result.reason}\n` : `broken at line ${result.line}: ${result.reason}\n`);
  return 1;
}
