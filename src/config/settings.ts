/**
 * Runtime settings from command-line flags and environment variables (flags win),
 * validated at start: a bad value fails with a message naming its flag or variable.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { parseTrustedProxies } from '../http/clientAddress.js';
import { isLoopbackAddress } from '../http/hostGuard.js';
import { ENV_MODES } from '../commands/envPolicy.js';
import { LOG_LEVELS } from '../logging/logger.js';
import { flag, idpUrlProblem, oauthInputProblem, oauthSettingsShape } from './oauthSettings.js';

export class SettingsError extends Error {
  override name = 'SettingsError';
}

const MiB = 1024 * 1024;

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0),
);

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

/** An origin (`https://host[:port]`, no path, query or credentials), without a trailing slash. */
const publicOrigin = z.string().transform((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be a URL such as https://app.fly.dev' });
    return z.NEVER;
  }
  const loopback = isLoopbackAddress(url.hostname);
  const problem =
    url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)
      ? 'must be https (http only for a loopback host)'
      : url.username !== '' || url.password !== ''
        ? 'must not carry a user name or password'
        : url.pathname !== '/' || url.search !== '' || url.hash !== ''
          ? 'must be an origin only, with no path, query or fragment (e.g. https://app.fly.dev)'
          : undefined;
  if (problem !== undefined) {
    ctx.addIssue({ code: 'custom', message: problem });
    return z.NEVER;
  }
  return url.origin;
});

export const settingsSchema = z.object({
  /** Interface to listen on. @default 127.0.0.1 */
  host: z.string().min(1).default('127.0.0.1'),
  /** TCP port; 0 picks a free one. @default 8000 */
  port: z.coerce.number().int().min(0).max(65535).default(8000),
  /** Shared bearer secret. Required by createGateway; the CLI generates one if unset. */
  secret: z.string().min(8, 'must be at least 8 characters').optional(),
  /** The whitelist file. @default allowed-commands.json */
  commandsFile: z.string().min(1).default('allowed-commands.json'),
  /** How often the whitelist (the file, or its version in Redis) is checked for changes, ms. @default 1000 */
  commandsPollMs: positiveInt.default(1_000),
  /** Live sessions of a removed whitelist entry: `finish` (run on) or `end`. @default finish */
  onRemove: z.enum(['finish', 'end'], { error: 'must be finish or end' }).default('finish'),
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
  /**
   * How long a Streamable HTTP POST waits for its reply to answer it as one JSON body before
   * its response becomes an event stream, ms; 0: always an event stream. @default 250
   */
  jsonReplyWindowMs: z.coerce.number().int().min(0).max(60_000).default(250),
  /**
   * How long a child may take to answer a session's `initialize`, ms; past it the client
   * gets an error and the child is stopped. @default 30000
   */
  initializeTimeoutMs: positiveInt.default(30_000),
  /**
   * Longest a client may take to send a whole request (headers and body), ms; event streams
   * are responses and are not cut by it. @default 60000
   */
  requestTimeoutMs: positiveInt.default(60_000),
  /** Connections held at once; unset: derived from the open-files limit (logged at start). */
  maxConnections: positiveInt.optional(),
  /** Modern (2026-07-28) conversations one principal may hold per whitelist key with different ENV_* values. @default 4 */
  maxEnvVariants: positiveInt.default(4),
  /** How long a 2026-07-28 request that asked the client for input waits for its retry, ms. @default 300000 */
  inputTimeoutMs: positiveInt.default(300_000),
  /** Stop stages for a child tree, ms: after stdin EOF, after SIGTERM, after SIGKILL. */
  stopEofMs: positiveInt.default(1_000),
  stopTermMs: positiveInt.default(2_000),
  stopKillMs: positiveInt.default(2_000),
  /** Longest a shutdown may take before the process exits anyway, ms. @default 10000 */
  shutdownGraceMs: positiveInt.default(10_000),

  /** Warm spares per command unless its entry says otherwise. @default 1 */
  poolMin: z.coerce.number().int().min(0).max(64).default(1),
  /** A warm spare older than this is replaced, ms. @default 600000 */
  spareTtlMs: positiveInt.default(600_000),
  /**
   * How long the era probe (`server/discover` to an entry's first child) waits for an
   * answer before the server counts as legacy, ms; 0: no probe, every server legacy.
   * @default 2000
   */
  eraProbeMs: z.coerce.number().int().min(0).max(60_000).default(2_000),
  /** Spawns running at once. @default 4 */
  spawnConcurrency: positiveInt.default(4),
  /** Live children in all, spares included. @default 64 */
  maxChildren: positiveInt.default(64),
  /** Concurrent sessions per client. @default 16 */
  maxSessionsPerClient: positiveInt.default(16),
  /**
   * At --max-sessions-per-client, the client's least recently used session idle at least this
   * long is closed to make room for its new one (none that idle: 429), ms. @default 300000
   */
  evictIdleMs: z.coerce.number().int().min(0).default(300_000),
  /** How often every child tree's memory is read from /proc, ms. @default 5000 */
  memorySampleMs: z.coerce.number().int().min(50).max(600_000).default(5_000),
  /** Memory for the gateway and its children, MB; unset: the cgroup limit, else the machine's total memory. */
  memoryBudgetMb: positiveInt.optional(),
  /** Part of the budget never planned for children: room for what /proc's RSS does not show, MB. @default 160 */
  memoryReserveMb: z.coerce.number().int().min(0).default(160),
  /** Most memory one child tree may use unless its entry says (maxMemoryMb), MB; 0: no limit. @default 0 */
  maxChildMemoryMb: z.coerce.number().int().min(0).default(0),
  /** Idle time after which the child of an entry with "idle": "hibernate" is stopped, ms. @default 60000 */
  hibernateAfterMs: z.coerce.number().int().min(100).default(60_000),
  /** A session with no message either way for this long is closed, ms. @default 1800000 */
  idleTimeoutMs: z.coerce.number().int().min(0).default(1_800_000),
  /** Longest a session may live, ms; 0: no limit. @default 0 */
  maxSessionMs: z.coerce.number().int().min(0).default(0),
  /** A child that exits this soon after its spawn failed to start, ms. @default 100 */
  startupWindowMs: z.coerce.number().int().min(0).default(100),
  /** Start attempts before answering 502, the first included. @default 3 */
  startAttempts: positiveInt.max(10).default(3),
  /** Delay before the first start retry, doubling, ms. @default 100 */
  retryBaseMs: z.coerce.number().int().min(0).default(100),
  /** How long a failing command is refused before a trial start, ms (doubles). @default 5000 */
  circuitCooldownMs: positiveInt.default(5_000),
  /** Bytes a client may fall behind on its stream before its session is dropped. @default 16 MiB */
  maxClientBacklogBytes: byteSize.pipe(z.number().int().positive()).default(16 * MiB),
  /** Bytes queued to a child's stdin past which requests get 503. @default 4 MiB */
  maxChildQueueBytes: byteSize.pipe(z.number().int().positive()).default(4 * MiB),
  /**
   * Proxies whose forwarded client address is believed: `fly` (Fly's `Fly-Client-IP`) and/or
   * CIDRs whose peers' `X-Forwarded-For` is read. Empty: the socket's peer, always.
   * @default fly when FLY_APP_NAME is set, else none
   */
  trustedProxy: list
    .superRefine((entries, ctx) => {
      try {
        parseTrustedProxies(entries);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    })
    .optional(),

  /**
   * How a whitelist entry without `allowedEnv` treats `ENV_*` headers. `blocklist`: any
   * name off the built-in blocklist (docs/env.md); `allowlist`: none at all, so every entry
   * that takes variables must list them (for gateways shared by clients of different trust).
   * @default blocklist
   */
  envMode: z.enum(ENV_MODES, { error: `must be ${ENV_MODES.join(' or ')}` }).default('blocklist'),

  /** Tool policy file (JSON, hot-reloaded). Unset: every tool allowed, built-in redaction on. */
  policyFile: z.string().min(1).optional(),
  /** How often the policy file is checked for changes, ms. @default 1000 */
  policyPollMs: positiveInt.default(1_000),
  /** Clients file: tokens mapped to client ids and roles. */
  clientsFile: z.string().min(1).optional(),
  /** Role of callers using the shared secret (the clients file may override). @default default */
  defaultRole: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits or _.-')
    .default('default'),
  /** Audit trail file (JSON lines, hash-chained). */
  auditFile: z.string().min(1).optional(),
  /** Also write audit lines to stderr. @default false */
  auditStderr: flag.default(false),
  /**
   * The admin credential (environment only): opens /status details and /metrics, never an
   * MCP endpoint. The shared secret and client tokens never open admin routes.
   */
  adminToken: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Key for the audit chain's HMAC (environment only). */
  auditHmacKey: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Redis for limits shared by every instance (environment only: it may hold a password). */
  redisUrl: z.string().url().optional(),
  /** Prefix of every Redis key, so deployments sharing a Redis keep their own budgets. @default warden */
  redisPrefix: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits or _.-')
    .default('warden'),
  /** HTTP requests per client per minute; 0: no limit. @default 1200 */
  httpRequestsPerMinute: z.coerce.number().int().min(0).default(1_200),
  /** Failed authentications per source address per 15 minutes before it is throttled. @default 20 */
  authFailuresPerWindow: positiveInt.default(20),
  /**
   * This machine's id on Fly.io (environment only: `FLY_MACHINE_ID`, which Fly sets). With it,
   * session ids name their machine and requests are routed between machines with `fly-replay`.
   */
  flyMachineId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -')
    .optional(),
  /** The Fly.io app (environment only: `FLY_APP_NAME`): its machines are listed at `vms.<app>.internal`. */
  flyAppName: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,63}$/, 'must be 1-63 letters, digits or -')
    .optional(),
  /** Serve /metrics without auth on this port (same host); unset: /metrics behind auth. */
  metricsPort: z.coerce.number().int().min(0).max(65535).optional(),

  /**
   * The gateway's external origin (`https://app.fly.dev`): the OAuth issuer and every
   * resource URL are built from it, never from a request's Host.
   * @default https://<app>.fly.dev on Fly.io; http://<host>:<port> when bound to loopback
   */
  publicUrl: publicOrigin.optional(),
  ...oauthSettingsShape,
});

export type Settings = z.output<typeof settingsSchema>;
export type SettingsInput = z.input<typeof settingsSchema>;

/** Flag name, env variable, settings key. */
export const SOURCES = [
  ['host', 'HOST', 'host'],
  ['port', 'PORT', 'port'],
  ['commands', 'WARDEN_COMMANDS', 'commandsFile'],
  ['commands-poll-ms', 'WARDEN_COMMANDS_POLL_MS', 'commandsPollMs'],
  ['on-remove', 'WARDEN_ON_REMOVE', 'onRemove'],
  ['log-level', 'LOG_LEVEL', 'logLevel'],
  ['body-limit', 'WARDEN_BODY_LIMIT', 'bodyLimitBytes'],
  ['allowed-hosts', 'WARDEN_ALLOWED_HOSTS', 'allowedHosts'],
  ['allowed-origins', 'WARDEN_ALLOWED_ORIGINS', 'allowedOrigins'],
  ['max-line', 'WARDEN_MAX_LINE', 'maxLineBytes'],
  ['keepalive-ms', 'WARDEN_KEEPALIVE_MS', 'keepAliveMs'],
  ['json-reply-window-ms', 'WARDEN_JSON_REPLY_WINDOW_MS', 'jsonReplyWindowMs'],
  ['shutdown-grace-ms', 'WARDEN_SHUTDOWN_GRACE_MS', 'shutdownGraceMs'],
  ['initialize-timeout-ms', 'WARDEN_INITIALIZE_TIMEOUT_MS', 'initializeTimeoutMs'],
  ['request-timeout-ms', 'WARDEN_REQUEST_TIMEOUT_MS', 'requestTimeoutMs'],
  ['max-env-variants', 'WARDEN_MAX_ENV_VARIANTS', 'maxEnvVariants'],
  ['input-timeout-ms', 'WARDEN_INPUT_TIMEOUT_MS', 'inputTimeoutMs'],
  ['max-connections', 'WARDEN_MAX_CONNECTIONS', 'maxConnections'],
  ['pool-min', 'WARDEN_POOL_MIN', 'poolMin'],
  ['spare-ttl-ms', 'WARDEN_SPARE_TTL_MS', 'spareTtlMs'],
  ['era-probe-ms', 'WARDEN_ERA_PROBE_MS', 'eraProbeMs'],
  ['spawn-concurrency', 'WARDEN_SPAWN_CONCURRENCY', 'spawnConcurrency'],
  ['max-children', 'WARDEN_MAX_CHILDREN', 'maxChildren'],
  ['max-sessions-per-client', 'WARDEN_MAX_SESSIONS_PER_CLIENT', 'maxSessionsPerClient'],
  ['evict-idle-ms', 'WARDEN_EVICT_IDLE_MS', 'evictIdleMs'],
  ['memory-sample-ms', 'WARDEN_MEMORY_SAMPLE_MS', 'memorySampleMs'],
  ['memory-budget-mb', 'WARDEN_MEMORY_BUDGET_MB', 'memoryBudgetMb'],
  ['memory-reserve-mb', 'WARDEN_MEMORY_RESERVE_MB', 'memoryReserveMb'],
  ['max-child-memory-mb', 'WARDEN_MAX_CHILD_MEMORY_MB', 'maxChildMemoryMb'],
  ['hibernate-after-ms', 'WARDEN_HIBERNATE_AFTER_MS', 'hibernateAfterMs'],
  ['idle-timeout-ms', 'WARDEN_IDLE_TIMEOUT_MS', 'idleTimeoutMs'],
  ['max-session-ms', 'WARDEN_MAX_SESSION_MS', 'maxSessionMs'],
  ['startup-window-ms', 'WARDEN_STARTUP_WINDOW_MS', 'startupWindowMs'],
  ['start-attempts', 'WARDEN_START_ATTEMPTS', 'startAttempts'],
  ['circuit-cooldown-ms', 'WARDEN_CIRCUIT_COOLDOWN_MS', 'circuitCooldownMs'],
  ['max-client-backlog', 'WARDEN_MAX_CLIENT_BACKLOG', 'maxClientBacklogBytes'],
  ['max-child-queue', 'WARDEN_MAX_CHILD_QUEUE', 'maxChildQueueBytes'],
  ['trusted-proxy', 'WARDEN_TRUSTED_PROXY', 'trustedProxy'],
  ['env-mode', 'WARDEN_ENV_MODE', 'envMode'],
  ['policy', 'WARDEN_POLICY', 'policyFile'],
  ['policy-poll-ms', 'WARDEN_POLICY_POLL_MS', 'policyPollMs'],
  ['clients', 'WARDEN_CLIENTS', 'clientsFile'],
  ['default-role', 'WARDEN_DEFAULT_ROLE', 'defaultRole'],
  ['audit-file', 'WARDEN_AUDIT_FILE', 'auditFile'],
  ['audit-stderr', 'WARDEN_AUDIT_STDERR', 'auditStderr'],
  ['http-rate', 'WARDEN_HTTP_RATE', 'httpRequestsPerMinute'],
  ['auth-failures', 'WARDEN_AUTH_FAILURES', 'authFailuresPerWindow'],
  ['metrics-port', 'WARDEN_METRICS_PORT', 'metricsPort'],
  ['redis-prefix', 'WARDEN_REDIS_PREFIX', 'redisPrefix'],
  ['public-url', 'WARDEN_PUBLIC_URL', 'publicUrl'],
  ['oauth-token-ttl-ms', 'WARDEN_OAUTH_TOKEN_TTL_MS', 'oauthTokenTtlMs'],
  ['oauth-allow-loopback-metadata', 'WARDEN_OAUTH_ALLOW_LOOPBACK_METADATA', 'oauthAllowLoopbackMetadata'],
  ['oauth-register-rate', 'WARDEN_OAUTH_REGISTER_RATE', 'oauthRegisterRate'],
  ['oauth-issuer', 'WARDEN_OAUTH_ISSUER', 'oauthIssuer'],
  ['oauth-jwks-url', 'WARDEN_OAUTH_JWKS_URL', 'oauthJwksUrl'],
  ['oauth-audience', 'WARDEN_OAUTH_AUDIENCE', 'oauthAudience'],
  ['oauth-role-claim', 'WARDEN_OAUTH_ROLE_CLAIM', 'oauthRoleClaim'],
  ['oauth-role-map', 'WARDEN_OAUTH_ROLE_MAP', 'oauthRoleMap'],
  ['oauth-required-scope', 'WARDEN_OAUTH_REQUIRED_SCOPE', 'oauthRequiredScope'],
  ['oauth-allow-loopback-issuer', 'WARDEN_OAUTH_ALLOW_LOOPBACK_ISSUER', 'oauthAllowLoopbackIssuer'],
] as const;

export { USAGE } from './usage.js';

/** Variables read from the environment only (secrets, and what the platform sets). */
export const ENV_ONLY = [
  'WARDEN_SECRET',
  'WARDEN_ADMIN_TOKEN',
  'WARDEN_AUDIT_HMAC_KEY',
  'WARDEN_OAUTH_KEY',
  'WARDEN_OAUTH_KEY_PREVIOUS',
  'REDIS_URL',
  'FLY_APP_NAME',
  'FLY_MACHINE_ID',
] as const;

export interface ParsedCli {
  /** `--help`/`-h`: print USAGE and exit (settings are then the defaults, not validated). */
  readonly help: boolean;
  /** `--version`/`-v`: print the version and exit (settings as for help). */
  readonly version: boolean;
  readonly settings: Settings;
}

export function parseSettings(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCli {
  if (env.WARDEN_TRUST_FLY_CLIENT_IP !== undefined || argv.some((a) => a.startsWith('--trust-fly-client-ip'))) {
    throw new SettingsError('--trust-fly-client-ip (WARDEN_TRUST_FLY_CLIENT_IP) was replaced by --trusted-proxy fly (WARDEN_TRUSTED_PROXY=fly)');
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(SOURCES.map(([flag]) => [flag, { type: 'string' as const }]));
    const flags = { ...options, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } } as const;
    values = parseArgs({ args: [...argv], options: flags, strict: true }).values;
  } catch (error) {
    throw new SettingsError((error as Error).message);
  }
  if (values.help === true || values.version === true) {
    return { help: values.help === true, version: values.version === true, settings: settingsSchema.parse({}) };
  }
  const input: Record<string, unknown> = {};
  const origin: Record<string, string> = {
    secret: 'WARDEN_SECRET',
    auditHmacKey: 'WARDEN_AUDIT_HMAC_KEY',
    redisUrl: 'REDIS_URL',
    adminToken: 'WARDEN_ADMIN_TOKEN',
    oauthKey: 'WARDEN_OAUTH_KEY',
    oauthKeyPrevious: 'WARDEN_OAUTH_KEY_PREVIOUS',
    flyMachineId: 'FLY_MACHINE_ID',
    flyAppName: 'FLY_APP_NAME',
  };
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
  if (env.WARDEN_AUDIT_HMAC_KEY) input.auditHmacKey = env.WARDEN_AUDIT_HMAC_KEY;
  if (env.WARDEN_ADMIN_TOKEN) input.adminToken = env.WARDEN_ADMIN_TOKEN;
  if (env.REDIS_URL) input.redisUrl = env.REDIS_URL;
  if (env.FLY_MACHINE_ID) input.flyMachineId = env.FLY_MACHINE_ID;
  if (env.FLY_APP_NAME) input.flyAppName = env.FLY_APP_NAME;
  if (env.WARDEN_OAUTH_KEY) input.oauthKey = env.WARDEN_OAUTH_KEY;
  if (env.WARDEN_OAUTH_KEY_PREVIOUS) input.oauthKeyPrevious = env.WARDEN_OAUTH_KEY_PREVIOUS;
  if (input.trustedProxy === undefined && env.FLY_APP_NAME) input.trustedProxy = 'fly';
  // On Fly.io the app's own name is the Host clients use (custom domains are added by hand).
  if (input.allowedHosts === undefined && env.FLY_APP_NAME) input.allowedHosts = `${env.FLY_APP_NAME}.fly.dev`;
  if (input.publicUrl === undefined && env.FLY_APP_NAME) input.publicUrl = `https://${env.FLY_APP_NAME}.fly.dev`;
  const nameOf = (key: string) => origin[key] ?? key;
  const problem = oauthInputProblem(input, nameOf, env.FLY_APP_NAME !== undefined && env.FLY_APP_NAME !== '');
  if (problem !== undefined) throw new SettingsError(problem);
  const settings = validateSettings(input, origin);
  for (const key of ['oauthIssuer', 'oauthJwksUrl'] as const) {
    const url = settings[key];
    const urlProblem = url === undefined ? undefined : idpUrlProblem(url, settings.oauthAllowLoopbackIssuer);
    if (urlProblem !== undefined) throw new SettingsError(`invalid ${nameOf(key)}: ${urlProblem}`);
  }
  return { help: false, version: false, settings };
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
