/**
 * Runtime settings from command-line flags and environment variables (flags win),
 * validated at start: a bad value fails with a message naming its flag or variable.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { LOG_LEVELS } from '../logging/logger.js';

export class SettingsError extends Error {
  override name = 'SettingsError';
}

const MiB = 1024 * 1024;

const list = z
  .string()
  .transform((s) => s.split(',').map((p) => p.trim()).filter((p) => p.length > 0));

/** Accepts bytes (`4194304`) or a size with a unit (`512kb`, `4mb`). */
const byteSize = z.union([z.number(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const match = /^(\d+)\s*(b|kb|k|mb|m|gb|g)?$/i.exec(value.trim());
  if (!match) {
    ctx.addIssue({ code: 'custom', message: 'must be a byte count such as 4194304 or 4mb' });
    return z.NEVER;
  }
  const unit = (match[2] ?? 'b').toLowerCase()[0];
  const factor = unit === 'k' ? 1024 : unit === 'm' ? MiB : unit === 'g' ? 1024 * MiB : 1;
  return Number(match[1]) * factor;
});

const positiveInt = z.coerce.number().int().positive();

export const settingsSchema = z.object({
  /** Interface to listen on. @default 127.0.0.1 */
  host: z.string().min(1).default('127.0.0.1'),
  /** TCP port; 0 picks a free one. @default 8000 */
  port: z.coerce.number().int().min(0).max(65535).default(8000),
  /** Shared bearer secret. Required by createGateway; the CLI generates one if unset. */
  secret: z.string().min(8, 'must be at least 8 characters').optional(),
  /** The whitelist file. @default allowed-commands.json */
  commandsFile: z.string().min(1).default('allowed-commands.json'),
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /** Largest accepted request body. @default 4 MiB */
  bodyLimitBytes: byteSize.pipe(z.number().int().positive()).default(4 * MiB),
  /** Host header allowlist; unset: loopback names when bound to loopback, else no check. */
  allowedHosts: list.optional(),
  /** Origin allowlist; unset: loopback origins on our port when bound to loopback, else none. */
  allowedOrigins: list.optional(),
  /** Longest stdout line a child may write. @default 16 MiB */
  maxLineBytes: byteSize.pipe(z.number().int().positive()).default(16 * MiB),
  /** Keep-alive comment interval on open event streams, ms. @default 15000 */
  keepAliveMs: positiveInt.default(15_000),
  /** Stop stages for a child tree, ms: after stdin EOF, after SIGTERM, after SIGKILL. */
  stopEofMs: positiveInt.default(1_000),
  stopTermMs: positiveInt.default(2_000),
  stopKillMs: positiveInt.default(2_000),
  /** Longest a shutdown may take before the process exits anyway, ms. @default 10000 */
  shutdownGraceMs: positiveInt.default(10_000),
});

export type Settings = z.output<typeof settingsSchema>;
export type SettingsInput = z.input<typeof settingsSchema>;

/** Flag name, env variable, settings key. */
const SOURCES = [
  ['host', 'HOST', 'host'],
  ['port', 'PORT', 'port'],
  ['commands', 'WARDEN_COMMANDS', 'commandsFile'],
  ['log-level', 'LOG_LEVEL', 'logLevel'],
  ['body-limit', 'WARDEN_BODY_LIMIT', 'bodyLimitBytes'],
  ['allowed-hosts', 'WARDEN_ALLOWED_HOSTS', 'allowedHosts'],
  ['allowed-origins', 'WARDEN_ALLOWED_ORIGINS', 'allowedOrigins'],
  ['max-line', 'WARDEN_MAX_LINE', 'maxLineBytes'],
  ['keepalive-ms', 'WARDEN_KEEPALIVE_MS', 'keepAliveMs'],
  ['shutdown-grace-ms', 'WARDEN_SHUTDOWN_GRACE_MS', 'shutdownGraceMs'],
] as const;

export const USAGE = `Usage: mcp-warden [options]
  --host H               interface to listen on (HOST, default 127.0.0.1)
  --port P               port (PORT, default 8000)
  --commands FILE        whitelist (WARDEN_COMMANDS, default allowed-commands.json)
  --log-level L          ${LOG_LEVELS.join('|')} (LOG_LEVEL, default info)
  --body-limit N         largest request body, e.g. 4mb (WARDEN_BODY_LIMIT)
  --allowed-hosts LIST   comma-separated Host allowlist (WARDEN_ALLOWED_HOSTS)
  --allowed-origins LIST comma-separated Origin allowlist, * for any (WARDEN_ALLOWED_ORIGINS)
  --max-line N           longest stdout line from a child (WARDEN_MAX_LINE, default 16mb)
  --keepalive-ms N       SSE keep-alive interval (WARDEN_KEEPALIVE_MS, default 15000)
  --shutdown-grace-ms N  shutdown deadline (WARDEN_SHUTDOWN_GRACE_MS, default 10000)
The shared secret comes from WARDEN_SECRET only (never a flag: argv is visible to others).`;

export interface ParsedCli {
  readonly help: boolean;
  readonly settings: Settings;
}

export function parseSettings(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCli {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(SOURCES.map(([flag]) => [flag, { type: 'string' as const }]));
    values = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true }).values;
  } catch (error) {
    throw new SettingsError((error as Error).message);
  }
  const input: Record<string, unknown> = {};
  const origin: Record<string, string> = { secret: 'WARDEN_SECRET' };
  for (const [flag, variable, key] of SOURCES) {
    const fromFlag = values[flag];
    const fromEnv = env[variable];
    if (typeof fromFlag === 'string') {
      input[key] = fromFlag;
      origin[key] = `--${flag}`;
    } else if (fromEnv !== undefined && fromEnv !== '') {
      input[key] = fromEnv;
      origin[key] = variable;
    }
  }
  if (env.WARDEN_SECRET) input.secret = env.WARDEN_SECRET;
  return { help: values.help === true, settings: validateSettings(input, origin) };
}

export function validateSettings(input: SettingsInput | Record<string, unknown>, origin: Record<string, string> = {}): Settings {
  const result = settingsSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    throw new SettingsError(`invalid ${origin[key] ?? key}: ${issue.message}`);
  }
  return result.data;
}
