/**
 * Redaction of secrets in MCP results before they reach the client. Pure: no I/O.
 *
 * A detector is a name and a global RegExp. Each match becomes `[REDACTED:<name>]`; when
 * the pattern has a named group `secret`, only that group is replaced and the rest of the
 * match (a label such as `Bearer ` or `aws_secret_access_key = `) is kept.
 *
 * All detectors scan the original text; overlapping matches are merged into one marker
 * named after the match that starts first (the longer, then the earlier detector on a
 * tie). So the more specific detectors come first (`Bearer eyJ...` reports `jwt`), and a
 * marker is never itself rescanned.
 *
 * Every builtin pattern runs in linear time. An unbounded run of a character class only
 * starts where the class's run starts (a lookbehind excludes the class), so no run is
 * rescanned from many starts ('eyJ'.repeat(n) costs O(n), not O(n^2)); alternatives and
 * nested loops never overlap. Custom patterns are trusted configuration and get no such
 * guarantee.
 *
 * Not detected, on purpose: generic `password=` / `passwd:` / `secret:` assignments. They
 * fill documentation, config templates and source code (`password: ${DB_PASSWORD}`,
 * `password=changeme`), so a detector would mostly corrupt legitimate tool output, e.g.
 * code an agent is editing. Add a custom pattern where that trade-off is wanted.
 */

export interface Detector {
  /** Shown in the marker `[REDACTED:<name>]`; matches /^[a-z0-9_-]{1,40}$/i. */
  readonly name: string;
  /** Global. A named group `secret` limits the replacement to that group. */
  readonly pattern: RegExp;
}

/** A detector from configuration, compiled by {@link compileDetectors}. */
export interface CustomDetectorSpec {
  readonly name: string;
  /** RegExp source. A named group `secret` limits the replacement to that group. */
  readonly regex: string;
  /** RegExp flags; `g` is always added, `y` is rejected. */
  readonly flags?: string;
}

export interface CompileDetectorsOptions {
  /**
   * Put {@link BUILTIN_DETECTORS} before the custom ones.
   * @default true
   */
  readonly builtin?: boolean;
}

/** Values nested deeper than this are refused (RangeError) rather than forwarded unredacted. */
export const MAX_DEPTH = 512;

const NAME = /^[a-z0-9_-]{1,40}$/i;

function detector(name: string, pattern: RegExp): Detector {
  return Object.freeze({ name, pattern });
}

/** Ordered most specific first: on overlapping matches of equal length the earlier wins. */
export const BUILTIN_DETECTORS: readonly Detector[] = Object.freeze([
  // Whole block; the END line is optional so a truncated key (`head -5 id_rsa`) is still
  // hidden up to the next `-----` or the end of the text.
  detector(
    'private-key',
    /-----BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----[^-]*(?:-(?!----)[^-]*)*(?:-----END (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----)?/g,
  ),
  detector('aws-access-key-id', /(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])/g),
  // Only when labelled: an unlabelled 40-character base64 string is indistinguishable
  // from a hash. Covers ini, env, JSON, YAML, XML (`<SecretAccessKey>`) and CLI forms.
  detector(
    'aws-secret-access-key',
    /(?:aws[_-]?)?secret[_-]?access[_-]?key\\?["']?(?:[ \t]{0,8}(?:=>|[:=>])[ \t]{0,8}|[ \t]{1,8})\\?["']?(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/gi,
  ),
  detector('github-token', /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})/g),
  detector('slack-webhook', /https?:\/\/hooks\.slack(?:-gov)?\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9_/-]{16,}/g),
  detector('slack-token', /(?<![A-Za-z0-9-])xox(?:[abposr]|e(?:\.xox[bp])?)-[A-Za-z0-9-]{10,}/g),
  detector('stripe-key', /(?<![A-Za-z0-9_])[sr]k_(?:live|test)_[A-Za-z0-9]{24,}/g),
  detector('anthropic-key', /(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{32,}/g),
  detector('openai-key', /(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{32,}/g),
  detector('google-api-key', /(?<![A-Za-z0-9_-])AIza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])/g),
  detector('npm-token', /(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])/g),
  // Header and payload are base64url JSON objects, so both start with `eyJ` (`{"`).
  detector('jwt', /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g),
  // RFC 6750 b64token, at least 16 characters so prose ("a Bearer token") is left alone;
  // a trailing full stop stays outside. Last: a JWT or known token after Bearer is named.
  detector('bearer', /(?<![A-Za-z0-9_-])(?:Bearer|bearer|BEARER)[ \t]{1,8}(?<secret>[A-Za-z0-9._~+/-]{15,}[A-Za-z0-9_~+/-]=*)/g),
]);

/**
 * Text in which no builtin detector can match lacks every one of these (case-insensitive)
 * substrings: each builtin pattern requires one of them literally. One test of this
 * spares the thirteen scans for the usual result text; it is used only when every
 * detector of a list is a builtin (custom patterns have no such anchor).
 */
const BUILTIN_ANCHORS =
  /-----BEGIN|A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA|BIA|CCA)|secret|gh[pousr]_|github_pat_|hooks\.slack|xox|k_(?:live|test)_|sk-|AIza|npm_|eyJ|bearer/i;
const BUILTIN_SET = new Set<Detector>(BUILTIN_DETECTORS);
const anchored = new WeakMap<readonly Detector[], boolean>();

/** True when `text` may hold a match of one of `detectors` (false only when it cannot). */
function mayMatch(text: string, detectors: readonly Detector[]): boolean {
  let builtinOnly = anchored.get(detectors);
  if (builtinOnly === undefined) {
    builtinOnly = detectors.every((d) => BUILTIN_SET.has(d));
    anchored.set(detectors, builtinOnly);
  }
  return !builtinOnly || BUILTIN_ANCHORS.test(text);
}

/**
 * Builds the detector list for a policy: the builtins (unless `builtin: false`), then the
 * custom patterns in order.
 * @throws {TypeError} naming the entry on a bad name (not /^[a-z0-9_-]{1,40}$/i, or used
 * twice), a regex that does not compile, or the sticky flag `y`.
 */
export function compileDetectors(custom: readonly CustomDetectorSpec[], options: CompileDetectorsOptions = {}): Detector[] {
  if (!Array.isArray(custom)) throw new TypeError(`custom detectors must be an array, got ${typeof custom}`);
  const detectors: Detector[] = options.builtin === false ? [] : [...BUILTIN_DETECTORS];
  const seen = new Set(detectors.map((d) => d.name));
  custom.forEach((spec, index) => {
    const name: unknown = spec?.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new TypeError(`custom detector ${index}: name ${JSON.stringify(name)} must match /^[a-z0-9_-]{1,40}$/i`);
    }
    const label = `custom detector ${JSON.stringify(name)}`;
    if (seen.has(name)) throw new TypeError(`${label}: name is already used`);
    if (typeof spec.regex !== 'string' || spec.regex === '') throw new TypeError(`${label}: regex must be a non-empty string`);
    const flags = spec.flags ?? '';
    if (typeof flags !== 'string') throw new TypeError(`${label}: flags must be a string`);
    if (flags.includes('y')) throw new TypeError(`${label}: the sticky flag "y" would stop the scan at the first gap`);
    let pattern: RegExp;
    try {
      pattern = new RegExp(spec.regex, flags.includes('g') ? flags : `${flags}g`);
    } catch (error) {
      throw new TypeError(`${label}: invalid regex: ${(error as Error).message}`);
    }
    seen.add(name);
    detectors.push(detector(name, pattern));
  });
  return detectors;
}

/**
 * The RegExp actually run for a detector: a private copy with `g` (and `d` for a `secret`
 * group), so the caller's `lastIndex` is neither used nor changed.
 */
const scanners = new WeakMap<RegExp, RegExp>();

function scannerFor(pattern: RegExp): RegExp {
  let scanner = scanners.get(pattern);
  if (!scanner) {
    let flags = pattern.flags.replace('y', '');
    if (!flags.includes('g')) flags += 'g';
    if (pattern.source.includes('(?<secret>') && !flags.includes('d')) flags += 'd';
    scanner = new RegExp(pattern.source, flags);
    scanners.set(pattern, scanner);
  }
  return scanner;
}

interface Span {
  readonly start: number;
  readonly end: number;
  readonly rank: number;
}

function collectSpans(text: string, detectors: readonly Detector[]): Span[] {
  const spans: Span[] = [];
  detectors.forEach((d, rank) => {
    const scanner = scannerFor(d.pattern);
    scanner.lastIndex = 0;
    try {
      for (let m = scanner.exec(text); m !== null; m = scanner.exec(text)) {
        if (m[0].length === 0) {
          scanner.lastIndex += 1; // an empty match redacts nothing; step past it
          continue;
        }
        const [start, end] = m.indices?.groups?.['secret'] ?? [m.index, m.index + m[0].length];
        if (end > start) spans.push({ start, end, rank });
      }
    } finally {
      scanner.lastIndex = 0;
    }
  });
  return spans;
}

/**
 * Replaces every match with `[REDACTED:<name>]`. `count` is the number of markers written
 * (overlapping matches make one), `names` the distinct names in them, in text order.
 * Returns the input string itself when nothing matched.
 */
export function redactText(text: string, detectors: readonly Detector[]): { text: string; count: number; names: string[] } {
  if (!mayMatch(text, detectors)) return { text, count: 0, names: [] };
  const spans = collectSpans(text, detectors);
  if (spans.length === 0) return { text, count: 0, names: [] };
  spans.sort((a, b) => a.start - b.start || b.end - a.end || a.rank - b.rank);

  const names = new Set<string>();
  let out = '';
  let cursor = 0;
  let count = 0;
  for (let i = 0; i < spans.length;) {
    const first = spans[i] as Span;
    let end = first.end;
    for (i += 1; i < spans.length && (spans[i] as Span).start < end; i += 1) end = Math.max(end, (spans[i] as Span).end);
    const name = (detectors[first.rank] as Detector).name;
    out += `${text.slice(cursor, first.start)}[REDACTED:${name}]`;
    cursor = end;
    count += 1;
    names.add(name);
  }
  return { text: out + text.slice(cursor), count, names: [...names] };
}

/** How a value is walked: `mcp` keeps the base64 payload of binary MCP blocks. */
type Mode = 'mcp' | 'plain';

interface Walk {
  readonly detectors: readonly Detector[];
  count: number;
  readonly names: Set<string>;
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Base64 or base64url, optionally wrapped in lines: what a binary MCP field holds. Linear:
 * each line break run must be followed by at least one base64 character, so a run of
 * line breaks is split between iterations in one way only.
 */
const BASE64_SHAPE = /^[A-Za-z0-9+/_-]*(?:[\r\n]+[A-Za-z0-9+/_-]+)*=*[\r\n]*$/;

/**
 * `data` of an image/audio content block, `blob` of a resource's contents: kept when it
 * has the shape of base64. Anything else there (prose, a `key: value` line) is text
 * and is scanned like any other string.
 */
function isBinaryField(obj: Record<string, unknown>, key: string): boolean {
  const value = obj[key];
  if (typeof value !== 'string') return false;
  if (key === 'data') return (obj['type'] === 'image' || obj['type'] === 'audio') && BASE64_SHAPE.test(value);
  if (key === 'blob') return typeof obj['uri'] === 'string' && BASE64_SHAPE.test(value);
  return false;
}

function walk(value: unknown, state: Walk, mode: Mode, depth: number): unknown {
  if (typeof value === 'string') {
    const r = redactText(value, state.detectors);
    if (r.count === 0) return value;
    state.count += r.count;
    for (const name of r.names) state.names.add(name);
    return r.text;
  }
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_DEPTH) throw new RangeError(`value nests deeper than ${MAX_DEPTH} levels; refusing to pass it unredacted`);
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i += 1) {
      const before = state.count;
      const next = walk(value[i], state, mode, depth + 1);
      if (state.count !== before) (copy ??= value.slice())[i] = next;
    }
    return copy ?? value;
  }
  if (!isPlainObject(value)) return value;
  return walkObject(value, state, depth, (key) => (mode === 'mcp' && isBinaryField(value, key) ? undefined : mode));
}

/** `modeOf` returns undefined for a property left as it is. Copies on first change. */
function walkObject(obj: Record<string, unknown>, state: Walk, depth: number, modeOf: (key: string) => Mode | undefined): unknown {
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(obj)) {
    const mode = modeOf(key);
    if (mode === undefined) continue;
    const before = state.count;
    const next = walk(obj[key], state, mode, depth + 1);
    if (state.count === before) continue;
    // The spread copies an own `__proto__` key (JSON.parse makes them) as a plain property,
    // so this assignment updates that property; it never reaches the prototype setter.
    copy ??= { ...obj };
    copy[key] = next;
  }
  return copy ?? obj;
}

function finish(result: unknown, state: Walk): { result: unknown; count: number; names: string[] } {
  return { result, count: state.count, names: [...state.names] };
}

/**
 * Redacts every string value (not keys) in arrays and plain objects at any depth, except the
 * base64 `data` of `{type:'image'|'audio'}` blocks and the `blob` of `{uri, blob}` resource
 * contents. Used as is for `resources/read` results (`{contents:[{uri, text?, blob?}]}`).
 *
 * Never mutates `value`. Copies only along changed paths (unchanged subtrees are shared) and
 * returns `value` itself when `count` is 0. Other objects (Date, Map, class instances) are
 * left as they are: JSON-RPC results are plain JSON.
 * @throws {RangeError} when `value` nests deeper than {@link MAX_DEPTH} (or is cyclic);
 * the caller must then not forward it.
 */
export function redactValue(value: unknown, detectors: readonly Detector[]): { result: unknown; count: number; names: string[] } {
  const state: Walk = { detectors, count: 0, names: new Set() };
  return finish(walk(value, state, 'mcp', 0), state);
}

/**
 * Redacts a `tools/call` result: strings in `content[*].text`, `content[*].resource.text`
 * and the other content fields (a `resource_link` description, a resource URI), and every
 * string value in `structuredContent`, where a `data` or `blob` key is tool data, not MCP
 * base64, and is redacted too. Same guarantees as {@link redactValue}.
 */
export function redactToolResult(result: unknown, detectors: readonly Detector[]): { result: unknown; count: number; names: string[] } {
  if (typeof result !== 'object' || result === null || Array.isArray(result) || !isPlainObject(result)) {
    return redactValue(result, detectors);
  }
  const state: Walk = { detectors, count: 0, names: new Set() };
  const top = result;
  const out = walkObject(top, state, 0, (key) => (key === 'structuredContent' ? 'plain' : isBinaryField(top, key) ? undefined : 'mcp'));
  return finish(out, state);
}
