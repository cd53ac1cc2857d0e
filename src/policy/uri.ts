/**
 * How a resource URI is read for a policy decision. Pure: no I/O.
 *
 * A `file:` URI is decided by one spelling: `file://` followed by the path a POSIX server
 * opens, i.e. percent-decoded exactly once, runs of `/` collapsed, `.` and `..` resolved.
 * What a server could resolve differently is refused rather than guessed: a host other
 * than empty or `localhost`, a query or fragment, a backslash, an encoded `/`, control
 * character or backslash inside a segment, a `%XX` left after the one decoding (a server
 * decoding twice would read another path), a `..` above the root, surrounding spaces, and
 * the kernel's aliases for other directories (`/proc/<pid>/root`, `cwd`, `fd`, ...,
 * `/dev/fd`, `/dev/std*`). Symbolic links are out of reach: that needs the file system.
 *
 * Any other URI is decided by every spelling a server may resolve it to (as written,
 * percent-decoded, WHATWG-normalised); each must be allowed.
 *
 * docs/policy.md is the user-facing description; keep the two in step.
 */
import type { DenyReason } from './engine.js';

export type UriReading =
  | { readonly ok: true; readonly spellings: readonly string[] }
  | { readonly ok: false; readonly reason: DenyReason; readonly rule: string; readonly detail: string };

const FILE_SCHEME = /^file:/i;
// eslint-disable-next-line no-control-regex -- controls and spaces a URL parser would skip
const LEADING_SPACE = /^[\u0000-\u0020]+/;
const ESCAPE = /%[0-9A-Fa-f]{2}/;
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Directories under /proc/<pid>/ (and /proc/<pid>/task/<tid>/) that lead somewhere else. */
const PROC_ALIASES = new Set(['root', 'cwd', 'fd', 'fdinfo', 'map_files', 'exe']);
/** /dev entries that are links into /proc/self/fd. */
const DEV_ALIASES = new Set(['fd', 'stdin', 'stdout', 'stderr']);

function refuse(detail: string): UriReading {
  return { ok: false, reason: 'malformed_request', rule: 'uri', detail };
}

/** Reads `uri` for a decision: the spellings to check, or why it is refused. */
export function readResourceUri(uri: string): UriReading {
  if (FILE_SCHEME.test(uri.replace(LEADING_SPACE, ''))) return readFileUri(uri);
  const spellings = new Set([uri]);
  let decoded = uri;
  try {
    decoded = decodeURIComponent(uri);
  } catch {
    // malformed escapes: the raw form only
  }
  // A scheme cannot hold `%`: a URI that turns into a file URI once decoded is not one.
  if (FILE_SCHEME.test(decoded.replace(LEADING_SPACE, ''))) return refuse('a percent-encoded "file:" scheme');
  spellings.add(decoded);
  for (const form of [uri, decoded]) {
    try {
      spellings.add(new URL(form).href);
    } catch {
      // not a URL: as written
    }
  }
  return { ok: true, spellings: [...spellings] };
}

/** The one spelling of a `file:` URI (see the module comment), or why it is refused. */
export function readFileUri(uri: string): UriReading {
  if (uri !== uri.trim() || LEADING_SPACE.test(uri)) return refuse('file URI with surrounding spaces');
  if (uri.includes('\\')) return refuse('file URI with a backslash');
  if (uri.includes('?') || uri.includes('#')) return refuse('file URI with a query or fragment');
  const rest = uri.slice('file:'.length);
  let path: string;
  if (rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2);
    const host = slash === -1 ? rest.slice(2) : rest.slice(2, slash);
    if (host !== '' && host.toLowerCase() !== 'localhost') return refuse('file URI with a host other than empty or localhost');
    path = slash === -1 ? '/' : rest.slice(slash);
  } else if (rest.startsWith('/')) {
    path = rest;
  } else {
    return refuse('file URI without an absolute path');
  }
  if (BAD_ESCAPE.test(path)) return refuse('file URI with a malformed percent-escape');
  const raw = path.split('/');
  const out: string[] = [];
  for (const segment of raw) {
    let name: string;
    try {
      name = decodeURIComponent(segment);
    } catch {
      return refuse('file URI whose percent-escapes are not UTF-8');
    }
    if (name.includes('/')) return refuse('file URI with an encoded "/" inside a segment');
    if (name.includes('\\')) return refuse('file URI with an encoded backslash');
    if (CONTROL.test(name)) return refuse('file URI with an encoded control character');
    if (ESCAPE.test(name)) return refuse('file URI percent-encoded twice');
    if (name === '' || name === '.') continue;
    if (name === '..') {
      if (out.length === 0) return refuse('file URI with ".." above the root');
      out.pop();
      continue;
    }
    out.push(name);
    // Checked at every step: the kernel resolves a later `..` from where the alias points.
    if (isAlias(out)) {
      return {
        ok: false,
        reason: 'resource_denied',
        rule: 'uri.alias',
        detail: 'file URI through a kernel alias (/proc/<pid>/root, cwd, fd, /dev/fd, /dev/std*) that resolves elsewhere',
      };
    }
  }
  const last = decodeSafely(raw[raw.length - 1] ?? '');
  const directory = out.length > 0 && (last === '' || last === '.' || last === '..');
  return { ok: true, spellings: [`file:///${out.join('/')}${directory ? '/' : ''}`] };
}

function isAlias(path: readonly string[]): boolean {
  const last = path[path.length - 1] as string;
  if (path[0] === 'proc') return path.length > 2 && PROC_ALIASES.has(last);
  return path[0] === 'dev' && path.length === 2 && DEV_ALIASES.has(last);
}

function decodeSafely(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * The form a `file:` glob of the policy is matched in, so it meets the canonical spelling:
 * scheme in lower case, `localhost` dropped, percent-escapes decoded once, runs of `/`
 * collapsed. Other globs are returned as they are.
 * @throws {TypeError} when a percent-escape in a `file:` glob does not decode.
 */
export function resourceGlobPattern(glob: string): string {
  if (!FILE_SCHEME.test(glob)) return glob;
  let rest = glob.slice('file:'.length);
  if (/^\/\/localhost\//i.test(rest)) rest = `//${rest.slice('//localhost'.length)}`;
  let path: string;
  if (rest.startsWith('///')) path = rest.slice(2);
  else if (rest.startsWith('/') && !rest.startsWith('//')) path = rest;
  else return glob; // a host or a relative path: never the canonical form; left to match as written
  try {
    path = decodeURIComponent(path);
  } catch {
    throw new TypeError(`file glob ${JSON.stringify(glob)}: a percent-escape does not decode`);
  }
  return `file://${path.replace(/\/{2,}/g, '/')}`;
}
