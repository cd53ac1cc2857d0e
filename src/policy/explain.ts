/**
 * Turns the policy schema's validation issues into sentences that say where and what to
 * write, e.g. `roles.user.tools.allow[2]: expected a tool name (a string), got a number`,
 * `roles.user: unknown key "tool" (did you mean "tools"?); allowed here: default, tools, …`.
 * The expectation is read from the schema at the issue's path, so it cannot drift from it.
 */
import type { z } from 'zod';
import { likelyMeant } from './nearest.js';

type Path = readonly PropertyKey[];
type Issue = z.core.$ZodIssue;
/** The parts of a zod schema's definition this file reads. */
interface Def {
  readonly type: string;
  readonly innerType?: Schema;
  readonly shape?: Record<string, Schema>;
  readonly valueType?: Schema;
  readonly element?: Schema;
  readonly options?: readonly Schema[];
  readonly entries?: Record<string, string | number>;
  readonly checks?: readonly { readonly _zod: { readonly def: { readonly check?: string; readonly value?: unknown; readonly inclusive?: boolean } } }[];
}
interface Schema {
  readonly def: Def;
  readonly isInt?: boolean;
}

/** At most this many problems are listed; the rest are counted. */
const MAX_LISTED = 5;

/** `roles.user.tools.allow[2]`, `commands["npx -y foo"].tools`; "" for the top level. */
export function formatPath(path: Path): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(String(part))) out += `${out ? '.' : ''}${String(part)}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

function unwrap(schema: Schema): Schema {
  let s = schema;
  while ((s.def.type === 'optional' || s.def.type === 'default' || s.def.type === 'nullable') && s.def.innerType) s = s.def.innerType;
  return s;
}

/** The schema that validates the value at `path`, if the path leads anywhere. */
function schemaAt(root: Schema, path: Path): Schema | undefined {
  let s: Schema | undefined = unwrap(root);
  for (const part of path) {
    if (!s) return undefined;
    const def: Def = s.def;
    if (def.type === 'object') s = def.shape?.[String(part)];
    else if (def.type === 'record') s = def.valueType;
    else if (def.type === 'array') s = def.element;
    else return undefined;
    if (s) s = unwrap(s);
  }
  return s;
}

function valueAt(json: unknown, path: Path): unknown {
  let v = json;
  for (const part of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[part];
  }
  return v;
}

/** What the list entry at `path` (ending in its index) names, from where the list sits. */
function entryName(path: Path): string | undefined {
  if (typeof path.at(-1) !== 'number') return undefined;
  const [kind, list] = path.slice(-3, -1).map(String);
  if (list === 'allow' || list === 'deny') {
    if (kind === 'tools') return 'tool name';
    if (kind === 'prompts') return 'prompt name';
    if (kind === 'resources') return 'resource URI';
  }
  if (list === 'exceptTools') return 'tool name';
  return undefined;
}

const RECORD_KEYS: Record<string, string> = {
  roles: 'role name',
  commands: 'whitelist key',
  arguments: 'tool name',
  args: 'argument name',
  rateLimits: 'tool name (a glob)',
};

function orList(parts: readonly string[]): string {
  return parts.length <= 1 ? (parts[0] ?? '') : `${parts.slice(0, -1).join(', ')} or ${parts.at(-1)}`;
}

function numberNoun(schema: Schema): string {
  let bound = '';
  for (const check of schema.def.checks ?? []) {
    const { check: kind, value, inclusive } = check._zod.def;
    if (kind === 'greater_than') bound = inclusive ? ` of ${String(value)} or more` : ` greater than ${String(value)}`;
  }
  return `${schema.isInt ? 'a whole number' : 'a number'}${bound}`;
}

/** "a tool name (a string)", "a whole number greater than 0", "one of "allow", "deny"". */
function expectation(schema: Schema, path: Path): string {
  const def = schema.def;
  switch (def.type) {
    case 'string': {
      const name = entryName(path);
      return name ? `a ${name} (a string)` : 'a string';
    }
    case 'number':
      return numberNoun(schema);
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    case 'enum':
      return `one of ${Object.values(def.entries ?? {})
        .map((v) => JSON.stringify(v))
        .join(', ')}`;
    case 'object':
      return `an object with the keys ${Object.keys(def.shape ?? {}).join(', ')}`;
    case 'record': {
      const key = RECORD_KEYS[String(path.at(-1))];
      return key ? `an object keyed by ${key}` : 'an object';
    }
    case 'array': {
      const name = entryName([...path, 0]);
      return name ? `a list of ${name}s (strings)` : 'a list';
    }
    case 'union':
      return orList((def.options ?? []).map((option) => (unwrap(option).def.type === 'boolean' ? 'a boolean' : expectation(unwrap(option), path))));
    default:
      return `a valid ${def.type}`;
  }
}

/** The value as the sentence shows it: its type, or the value itself when short and useful. */
function shown(value: unknown, literal: boolean): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') {
    if (value === '') return 'an empty string';
    if (!literal) return 'a string';
    return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  }
  if (typeof value === 'number') return literal ? String(value) : 'a number';
  return String(value);
}

function keyProblem(issue: Extract<Issue, { code: 'invalid_key' }>): string {
  const inner = issue.issues[0];
  if (!inner) return 'not allowed';
  if (inner.code === 'too_small') return 'a key must not be empty';
  if (inner.code === 'too_big') return `a key is at most ${String(inner.maximum)} characters`;
  return inner.message;
}

function sentence(issue: Issue, json: unknown, root: Schema): string {
  const where = formatPath(issue.path) || '(top level)';
  const value = valueAt(json, issue.path);
  const schema = schemaAt(root, issue.path);
  const expected = schema ? expectation(schema, issue.path) : undefined;
  switch (issue.code) {
    case 'invalid_type':
    case 'invalid_union':
      if (value === undefined) return `${where}: missing; write ${expected ?? 'a value'} here`;
      return `${where}: expected ${expected ?? issue.message}, got ${shown(value, typeof value === 'number' && schema?.def.type === 'number')}`;
    case 'invalid_value':
      return `${where}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${shown(value, true)}`;
    case 'unrecognized_keys': {
      const allowed = schema?.def.type === 'object' ? Object.keys(schema.def.shape ?? {}) : [];
      const keys = issue.keys.map((key) => {
        const meant = likelyMeant(key, allowed);
        return `${JSON.stringify(key)}${meant ? ` (did you mean ${JSON.stringify(meant)}?)` : ''}`;
      });
      return `${where}: unknown key${keys.length > 1 ? 's' : ''} ${keys.join(', ')}; allowed here: ${allowed.join(', ')}`;
    }
    case 'invalid_key': {
      const parent = formatPath(issue.path.slice(0, -1)) || '(top level)';
      return `${parent}: the key ${JSON.stringify(String(issue.path.at(-1)))} is not allowed: ${keyProblem(issue)}`;
    }
    case 'too_small':
      if (issue.origin === 'string') return `${where}: must not be empty; write ${expected ?? 'a string'}`;
      return `${where}: expected ${expected ?? issue.message}, got ${shown(value, true)}`;
    case 'too_big':
      if (issue.origin === 'string') return `${where}: at most ${String(issue.maximum)} characters, got ${String(value).length}`;
      return `${where}: expected ${expected ?? issue.message}, got ${shown(value, true)}`;
    case 'invalid_format':
      return `${where}: ${issue.message}, got ${shown(value, true)}`;
    default:
      return `${where}: ${issue.message}`;
  }
}

/** One line per problem (`source: where: what`), the first few, then how many more. */
export function explainIssues(issues: readonly Issue[], json: unknown, root: z.ZodType, source: string): string {
  const lines = issues.slice(0, MAX_LISTED).map((issue) => `${source}: ${sentence(issue, json, root as unknown as Schema)}`);
  const more = issues.length - MAX_LISTED;
  if (more > 0) lines.push(`${source}: and ${more} more problem${more > 1 ? 's' : ''}`);
  return lines.join('\n');
}
