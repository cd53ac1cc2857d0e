/**
 * Per-session environment variables a client sends as `ENV_<NAME>` request headers:
 * extraction, validation (blocklist, the command's allowlist, value rules, limits), the
 * child's environment built from scratch, and a fingerprint for pool keys.
 *
 * Errors name the variable, never its value: values are often secrets (API keys).
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { homedir } from 'node:os';
import { delimiter, dirname } from 'node:path';
import { EnvRejectedError } from '../errors.js';
import type { CommandSpec } from './types.js';

/** One `ENV_*` header: the variable name (upper-cased) and the raw header value. */
export interface EnvHeaderEntry {
  readonly name: string;
  readonly value: string;
}

const HEADER_PREFIX = 'env_';

/**
 * Picks the `ENV_*` headers. Node lower-cases header names; the name is the rest after
 * `env_`, upper-cased (`env_api_key` -> `API_KEY`). A header that arrives as an array
 * (sent more than once) yields one entry per value, so validation rejects it as
 * `duplicate`. Node's plain `req.headers` joins most repeated headers with `", "`;
 * pass `req.headersDistinct` to see every repetition as an array.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Node hands header values over as latin1 (one character per byte); the bytes a client
 * sent are UTF-8. Decoded back here; invalid UTF-8 becomes a NUL, which validation
 * refuses as an invalid value.
 */
function fromHeaderBytes(value: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[^\u0000-\u007f]/.test(value)) return value;
  try {
    return UTF8.decode(Buffer.from(value, 'latin1'));
  } catch {
    return '\u0000';
  }
}

export function extractEnvHeaders(headers: IncomingHttpHeaders): EnvHeaderEntry[] {
  const entries: EnvHeaderEntry[] = [];
  for (const [headerName, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (headerName.slice(0, HEADER_PREFIX.length).toLowerCase() !== HEADER_PREFIX) continue;
    const name = headerName.slice(HEADER_PREFIX.length).toUpperCase();
    for (const item of Array.isArray(value) ? value : [value]) entries.push({ name, value: fromHeaderBytes(item) });
  }
  return entries;
}

/**
 * Names a client may never set, whatever the command's `allowedEnv` says. Compared on
 * the upper-cased name; an entry ending in `*` blocks every name with that prefix.
 * The admin's fixed `env` in the whitelist is trusted and not subject to this list.
 */
export const ENV_BLOCKLIST: readonly string[] = Object.freeze([
  // Dynamic loaders: preload or redirect shared libraries into the child.
  'LD_*',
  'DYLD_*',
  // glibc: load gconv/locale modules, tune malloc, or redirect name resolution.
  'GCONV_PATH',
  'LOCPATH',
  'NLSPATH',
  'MALLOC_*',
  'GLIBC_TUNABLES',
  'HOSTALIASES',
  'RES_OPTIONS',
  'LOCALDOMAIN',
  // Set by the gateway: which executables run, where dotfiles and temp files live.
  'PATH',
  'HOME',
  'TMPDIR',
  'XDG_*',
  // Node and npm/npx: NODE_OPTIONS=--require runs code; npm config picks registry and scripts.
  'NODE_*',
  'NPM_CONFIG_*',
  'COREPACK_*',
  // Shells: startup files, exported functions and behaviour flags run or alter code.
  'BASH_ENV',
  'ENV',
  'BASH_FUNC_*',
  'SHELLOPTS',
  'BASHOPTS',
  'PS4',
  'PROMPT_COMMAND',
  'IFS',
  'CDPATH',
  'GLOBIGNORE',
  'ZDOTDIR',
  'SHELL',
  // Python, pip and uv (uvx): module search path, startup scripts, package index.
  'PYTHON*',
  'PIP_*',
  'UV_*',
  // Perl: module path and options (-M loads code).
  'PERL5*',
  'PERLLIB',
  // Ruby and its package managers: options, load path, gem sources.
  'RUBYOPT',
  'RUBYLIB',
  'GEM_*',
  'BUNDLE_*',
  // JVM: option variables load agents; CLASSPATH picks the classes.
  'JAVA_TOOL_OPTIONS',
  '_JAVA_OPTIONS',
  'JDK_JAVA_OPTIONS',
  'JAVA_OPTS',
  'CLASSPATH',
  // Proxies (any case, since names are upper-cased): would route the child's traffic.
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'ALL_PROXY',
  'NO_PROXY',
  'FTP_PROXY',
  // Git and SSH: hooks, config, sshCommand and agent sockets run code or use host keys.
  'GIT_*',
  'SSH_*',
  // TLS trust: a replaced CA bundle allows interception; OPENSSL_CONF loads engines.
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'REQUESTS_CA_BUNDLE',
  'CURL_CA_BUNDLE',
  'NODE_EXTRA_CA_CERTS',
  'OPENSSL_*',
  // Platform and gateway settings: never let a client impersonate or reconfigure them.
  'FLY_*',
  'AWS_*',
  'WARDEN_*',
  // Other JS runtimes: ELECTRON_RUN_AS_NODE, DENO_/BUN_ options change what runs.
  'ELECTRON_*',
  'DENO_*',
  'BUN_*',
]);

const BLOCKED_EXACT = new Set(ENV_BLOCKLIST.filter((entry) => !entry.endsWith('*')));
const BLOCKED_PREFIXES = ENV_BLOCKLIST.filter((entry) => entry.endsWith('*')).map((entry) => entry.slice(0, -1));

/** True when a client may never set `name` (compared upper-cased). */
export function isBlockedEnvName(name: string): boolean {
  const upper = name.toUpperCase();
  return BLOCKED_EXACT.has(upper) || BLOCKED_PREFIXES.some((prefix) => upper.startsWith(prefix));
}

/** Longest accepted variable name. */
export const MAX_ENV_NAME_LENGTH = 128;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** C0 controls except TAB, and DEL. */
const FORBIDDEN_VALUE_CHARS = /[\x00-\x08\x0A-\x1F\x7F]/;

/** Limits on the variables one request may set. */
export interface EnvLimits {
  /** Most `ENV_*` headers per request. @default 64 */
  readonly maxVariables?: number;
  /** Longest value, in UTF-8 bytes. @default 4096 */
  readonly maxValueBytes?: number;
}

export const DEFAULT_ENV_LIMITS: Required<EnvLimits> = Object.freeze({
  maxVariables: 64,
  maxValueBytes: 4096,
});

/** Stable reasons carried by EnvRejectedError. */
export const ENV_REJECT_REASONS = Object.freeze({
  invalidName: 'invalid name',
  blocked: 'blocked',
  notAllowed: 'not allowed for this command',
  fixed: 'fixed by the whitelist entry',
  invalidValue: 'invalid value',
  valueTooLong: 'value too long',
  duplicate: 'duplicate',
  tooMany: 'too many variables',
} as const);

/**
 * Checks the extracted headers against the blocklist, the command's `allowedEnv` and the
 * limits. The blocklist wins over `allowedEnv`.
 * @returns accepted variables, name -> value.
 * @throws {EnvRejectedError} naming the first bad variable (`*` for the count limit).
 * @throws {TypeError} for invalid limits.
 */
export function validateEnvHeaders(
  entries: readonly EnvHeaderEntry[],
  spec: CommandSpec,
  limits: EnvLimits = {},
): Record<string, string> {
  const { maxVariables, maxValueBytes } = resolveLimits(limits);
  if (entries.length > maxVariables) {
    throw new EnvRejectedError('*', `${ENV_REJECT_REASONS.tooMany} (at most ${maxVariables})`);
  }

  const accepted = new Map<string, string>();
  for (const { name: rawName, value } of entries) {
    const name = rawName.toUpperCase();
    if (!ENV_NAME.test(rawName) || name.length > MAX_ENV_NAME_LENGTH) {
      throw new EnvRejectedError(displayName(name), ENV_REJECT_REASONS.invalidName);
    }
    if (accepted.has(name)) throw new EnvRejectedError(name, ENV_REJECT_REASONS.duplicate);
    if (isBlockedEnvName(name)) throw new EnvRejectedError(name, ENV_REJECT_REASONS.blocked);
    // The admin's fixed value for this command is not the client's to change.
    if (Object.hasOwn(spec.env, name)) throw new EnvRejectedError(name, ENV_REJECT_REASONS.fixed);
    if (spec.allowedEnv !== undefined && !matchesAllowList(name, spec.allowedEnv)) {
      throw new EnvRejectedError(name, ENV_REJECT_REASONS.notAllowed);
    }
    if (typeof value !== 'string' || FORBIDDEN_VALUE_CHARS.test(value)) {
      throw new EnvRejectedError(name, ENV_REJECT_REASONS.invalidValue);
    }
    if (Buffer.byteLength(value, 'utf8') > maxValueBytes) {
      throw new EnvRejectedError(name, ENV_REJECT_REASONS.valueTooLong);
    }
    accepted.set(name, value);
  }
  return Object.fromEntries(accepted);
}

function resolveLimits(limits: EnvLimits): Required<EnvLimits> {
  const resolved = { ...DEFAULT_ENV_LIMITS, ...stripUndefined(limits) };
  for (const key of ['maxVariables', 'maxValueBytes'] as const) {
    const value = resolved[key];
    if (!Number.isInteger(value) || value < 0) {
      throw new TypeError(`EnvLimits.${key} must be a non-negative integer, got ${String(value)}`);
    }
  }
  return resolved;
}

function stripUndefined(limits: EnvLimits): EnvLimits {
  return Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== undefined));
}

function matchesAllowList(name: string, allowed: readonly string[]): boolean {
  return allowed.some((entry) => (entry.endsWith('*') ? name.startsWith(entry.slice(0, -1)) : name === entry));
}

/** An invalid name is shown with unexpected characters masked and its length capped. */
function displayName(name: string): string {
  const masked = name.replace(/[^A-Z0-9_]/g, '?');
  return masked.length > MAX_ENV_NAME_LENGTH ? `${masked.slice(0, MAX_ENV_NAME_LENGTH)}…` : masked;
}

/** The gateway-chosen base of every child's environment. */
export interface ChildEnvBase {
  /** The child's `PATH`. */
  readonly path: string;
  /** The child's `HOME`. */
  readonly home: string;
  /** The child's `LANG`. @default 'C.UTF-8' */
  readonly lang?: string;
}

/**
 * PATH: the folder of the running `node` (so `node`/`npx` resolve), then
 * `/usr/local/bin:/usr/bin:/bin`; HOME: the gateway user's home; LANG: `C.UTF-8`.
 */
export function defaultChildEnvBase(): ChildEnvBase {
  const dirs = [dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'];
  return {
    path: [...new Set(dirs)].join(delimiter),
    home: homedir(),
    lang: 'C.UTF-8',
  };
}

/**
 * The child's environment, built from scratch (the gateway's own `process.env` is never
 * read): PATH, HOME and LANG from `base`, then the command's fixed `env` (admin-trusted,
 * may override anything), then the accepted header variables.
 */
export function buildChildEnv(
  spec: CommandSpec,
  accepted: Readonly<Record<string, string>>,
  base: ChildEnvBase,
): Record<string, string> {
  return Object.fromEntries([
    ['PATH', base.path],
    ['HOME', base.home],
    ['LANG', base.lang ?? 'C.UTF-8'],
    ...Object.entries(spec.env),
    ...Object.entries(accepted),
  ]);
}

/**
 * A stable sha256 (hex) over the sorted name/value pairs. Equal maps give equal
 * fingerprints regardless of insertion order; the empty map gives
 * {@link EMPTY_ENV_FINGERPRINT}. Used in pool keys, so a child started with one client's
 * variables is never handed to another.
 */
export function envFingerprint(accepted: Readonly<Record<string, string>>): string {
  const serialized = Object.entries(accepted)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map((pair) => JSON.stringify(pair))
    .join('\n');
  return createHash('sha256').update(serialized, 'utf8').digest('hex');
}

/** The fingerprint of no variables (sha256 of the empty string). */
export const EMPTY_ENV_FINGERPRINT = envFingerprint({});
