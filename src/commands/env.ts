/**
 * Per-session environment variables a client sends as `ENV_<NAME>` request headers:
 * extraction, validation (the families of src/commands/envPolicy.ts, the command's
 * allowlist, value rules, limits), the child's environment built from scratch, and a
 * fingerprint for pool keys.
 *
 * Errors name the variable, never its value: values are often secrets (API keys).
 */
import { createHash, createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { homedir } from 'node:os';
import { delimiter, dirname } from 'node:path';
import { EnvRejectedError } from '../errors.js';
import { ENV_MODES, envFamilyOf, type EnvMode } from './envPolicy.js';
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
  for (const headerName in headers) {
    // Cheap first: most headers are not ENV_* (0x20 folds the case of an ASCII letter).
    if (headerName.length < HEADER_PREFIX.length || (headerName.charCodeAt(0) | 0x20) !== 0x65) continue;
    const value = headers[headerName];
    if (value === undefined) continue;
    if (headerName.slice(0, HEADER_PREFIX.length).toLowerCase() !== HEADER_PREFIX) continue;
    const name = headerName.slice(HEADER_PREFIX.length).toUpperCase();
    for (const item of Array.isArray(value) ? value : [value]) entries.push({ name, value: fromHeaderBytes(item) });
  }
  return entries;
}

/**
 * A request's variables: its `ENV_*` headers plus the values sealed into its OAuth grant at
 * consent. Both go through `validateEnvHeaders`, so a name given both ways is a duplicate.
 */
export function requestEnvEntries(headers: IncomingHttpHeaders, grantEnv?: Readonly<Record<string, string>>): EnvHeaderEntry[] {
  const entries = extractEnvHeaders(headers);
  for (const [name, value] of Object.entries(grantEnv ?? {})) entries.push({ name, value });
  return entries;
}

/** Longest accepted variable name. */
export const MAX_ENV_NAME_LENGTH = 128;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** C0 controls except TAB, and DEL. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
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

/** Stable reasons carried by EnvRejectedError as `data.reason`. */
export const ENV_REJECT_REASONS = Object.freeze({
  invalidName: 'invalid name',
  neverAccepted: 'never accepted',
  blocked: 'blocked',
  notAllowed: 'not allowed for this command',
  fixed: 'fixed by the whitelist entry',
  invalidValue: 'invalid value',
  valueTooLong: 'value too long',
  duplicate: 'duplicate',
  tooMany: 'too many variables',
} as const);

/**
 * Stable `data.setting` of a refused name: what an admin would change to accept it.
 * `none`: nothing does (the wall); `env`: the entry's fixed `env` holds it.
 */
export const ENV_REJECT_SETTINGS = Object.freeze({ allowedEnv: 'allowedEnv', env: 'env', none: 'none' } as const);

/** Options of {@link validateEnvHeaders}. */
export interface EnvValidationOptions extends EnvLimits {
  /** How an entry without `allowedEnv` treats names off the blocklist. @default 'blocklist' */
  readonly mode?: EnvMode;
}

/**
 * Checks the extracted headers against the wall, the entry's fixed `env` and `allowedEnv`,
 * the blocklist, the mode and the limits. The wall refuses whatever `allowedEnv` says; a
 * blocklisted name passes only through an exact `allowedEnv` entry (never a prefix); in
 * `allowlist` mode an entry without `allowedEnv` accepts no name at all.
 * @returns accepted variables, name -> value.
 * @throws {EnvRejectedError} naming the first bad variable (`*` for the count limit).
 * @throws {TypeError} for invalid limits or mode.
 */
export function validateEnvHeaders(entries: readonly EnvHeaderEntry[], spec: CommandSpec, options: EnvValidationOptions = {}): Record<string, string> {
  const { maxVariables, maxValueBytes } = resolveLimits(options);
  const mode = options.mode ?? 'blocklist';
  if (!ENV_MODES.includes(mode)) throw new TypeError(`mode must be ${ENV_MODES.join(' or ')}, got ${String(mode)}`);
  if (entries.length > maxVariables) {
    throw new EnvRejectedError('*', `${ENV_REJECT_REASONS.tooMany} (at most ${maxVariables})`);
  }

  const accepted = new Map<string, string>();
  for (const { name: rawName, value } of entries) {
    const name = rawName.toUpperCase();
    if (!ENV_NAME.test(rawName) || name.length > MAX_ENV_NAME_LENGTH) throw invalidName(rawName);
    if (accepted.has(name)) throw new EnvRejectedError(name, ENV_REJECT_REASONS.duplicate);
    checkName(name, spec, mode);
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

/** Throws unless a client may set the (valid, upper-cased) `name` for this entry. */
function checkName(name: string, spec: CommandSpec, mode: EnvMode): void {
  const family = envFamilyOf(name);
  if (family?.tier === 'wall') {
    throw new EnvRejectedError(name, ENV_REJECT_REASONS.neverAccepted, {
      detail: '(it makes the server load or run code)',
      data: { setting: ENV_REJECT_SETTINGS.none, family: family.id },
    });
  }
  // The admin's fixed value for this command is not the client's to change.
  if (Object.hasOwn(spec.env, name)) {
    throw new EnvRejectedError(name, ENV_REJECT_REASONS.fixed, { data: { setting: ENV_REJECT_SETTINGS.env } });
  }
  const listed = spec.allowedEnv;
  if (listed?.includes(name)) return; // an exact entry opens a blocklisted name
  if (family !== undefined) {
    throw new EnvRejectedError(name, ENV_REJECT_REASONS.blocked, {
      detail: `(a family that ${family.why}); an admin may open this exact name with "allowedEnv" on the entry`,
      data: { setting: ENV_REJECT_SETTINGS.allowedEnv, family: family.id },
    });
  }
  if (listed === undefined && mode === 'blocklist') return;
  if (listed !== undefined && listed.some((entry) => entry.endsWith('*') && name.startsWith(entry.slice(0, -1)))) return;
  throw new EnvRejectedError(name, ENV_REJECT_REASONS.notAllowed, {
    detail: listed === undefined ? '(--env-mode allowlist: the entry must list it in "allowedEnv")' : '(the entry\'s "allowedEnv" does not list it)',
    data: { setting: ENV_REJECT_SETTINGS.allowedEnv, ...(listed === undefined ? { envMode: mode } : {}) },
  });
}

/**
 * An invalid name is shown with unexpected characters masked and its length capped. A
 * name that is only wrong in its separators (`MY-VAR`, `MY.VAR`) gets the header to use.
 */
function invalidName(rawName: string): EnvRejectedError {
  const name = rawName.toUpperCase();
  const masked = name.replace(/[^A-Z0-9_]/g, '?');
  const shown = masked.length > MAX_ENV_NAME_LENGTH ? `${masked.slice(0, MAX_ENV_NAME_LENGTH)}…` : masked;
  const candidate = name.replace(/[-.]/g, '_');
  if (candidate !== name && ENV_NAME.test(candidate) && candidate.length <= MAX_ENV_NAME_LENGTH) {
    const suggestion = `${HEADER_PREFIX.toUpperCase()}${candidate}`;
    return new EnvRejectedError(shown, ENV_REJECT_REASONS.invalidName, {
      detail: `(use ${suggestion}: a name takes letters, digits and underscores)`,
      data: { suggestion },
    });
  }
  const rule = name.length > MAX_ENV_NAME_LENGTH ? `at most ${MAX_ENV_NAME_LENGTH} characters` : 'letters, digits and underscores, not starting with a digit';
  return new EnvRejectedError(shown, ENV_REJECT_REASONS.invalidName, { detail: `(${rule})` });
}

function resolveLimits(options: EnvValidationOptions): Required<EnvLimits> {
  const limits = { maxVariables: options.maxVariables, maxValueBytes: options.maxValueBytes };
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
export function buildChildEnv(spec: CommandSpec, accepted: Readonly<Record<string, string>>, base: ChildEnvBase): Record<string, string> {
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
 * variables is never handed to another. With `hmacKey`, an HMAC (base64url) instead: for
 * names that outlive the request and must not be a plain hash of secret values.
 */
export function envFingerprint(accepted: Readonly<Record<string, string>>, hmacKey?: Buffer): string {
  const serialized = Object.entries(accepted)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map((pair) => JSON.stringify(pair))
    .join('\n');
  if (hmacKey) return createHmac('sha256', hmacKey).update(serialized, 'utf8').digest('base64url');
  return createHash('sha256').update(serialized, 'utf8').digest('hex');
}

/** The fingerprint of no variables (sha256 of the empty string). */
export const EMPTY_ENV_FINGERPRINT = envFingerprint({});
