/**
 * The policy engine: a pure function (message, principal, command, policy) -> decision.
 * No I/O. Anything it cannot read unambiguously for a guarded method is denied.
 * Order: the most specific section that matches decides (command+role, command, role,
 * top level); within a section a deny beats an allow; when nothing matches, the most
 * specific `default` applies, else allow.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { CompiledPolicy, CompiledSection, CompiledToolArguments, Kind } from './compile.js';
import { matchesExact, matchesLoose } from './glob.js';
import type { RateLimitRule } from './schema.js';
import { readResourceUri } from './uri.js';

export type DenyReason = 'malformed_request' | 'tool_denied' | 'resource_denied' | 'prompt_denied' | 'argument_rule';

export type Verdict =
  /** Not a guarded method: forward untouched. */
  | { readonly action: 'pass' }
  | { readonly action: 'allow'; readonly kind: Kind; readonly target: string; readonly rule: string }
  | { readonly action: 'deny'; readonly reason: DenyReason; readonly rule: string; readonly kind?: Kind; readonly target?: string; readonly detail?: string };

const PASS: Verdict = { action: 'pass' };
const GUARDED: Readonly<Record<string, { kind: Kind; field: 'name' | 'uri' }>> = {
  'tools/call': { kind: 'tools', field: 'name' },
  'resources/read': { kind: 'resources', field: 'uri' },
  'prompts/get': { kind: 'prompts', field: 'name' },
};
const DENIED_REASON: Readonly<Record<Kind, DenyReason>> = { tools: 'tool_denied', resources: 'resource_denied', prompts: 'prompt_denied' };

export interface NameDecision {
  readonly allowed: boolean;
  readonly rule: string;
}

/** Is `name` (a tool, resource URI or prompt) allowed for `role` on `commandKey`? */
export function decideName(policy: CompiledPolicy, kind: Kind, name: string, role: string, commandKey: string): NameDecision {
  const chain = policy.chain(role, commandKey);
  for (const section of chain) {
    const rules = section.rules[kind];
    if (!rules) continue;
    const denied = matchesLoose(rules.deny, name);
    if (denied) return { allowed: false, rule: `${section.label}.${kind}.deny ${JSON.stringify(denied.source)}` };
    const allowed = matchesExact(rules.allow, name);
    if (allowed) return { allowed: true, rule: `${section.label}.${kind}.allow ${JSON.stringify(allowed.source)}` };
  }
  for (const section of chain) {
    if (section.default) return { allowed: section.default === 'allow', rule: `${section.label}.default` };
  }
  return { allowed: true, rule: 'implicit default (allow)' };
}

/**
 * Is the resource `uri` allowed? Only when it reads unambiguously (uri.ts) and every
 * spelling a server may resolve it to is allowed; otherwise the first refusal decides.
 */
export function decideUri(
  policy: CompiledPolicy,
  uri: string,
  role: string,
  commandKey: string,
): NameDecision & { readonly reason?: DenyReason; readonly detail?: string } {
  const reading = readResourceUri(uri);
  if (!reading.ok) return { allowed: false, rule: reading.rule, reason: reading.reason, detail: reading.detail };
  let allowed: NameDecision | undefined;
  for (const spelling of reading.spellings) {
    const decision = decideName(policy, 'resources', spelling, role, commandKey);
    if (!decision.allowed) return decision;
    allowed ??= decision;
  }
  return allowed!;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

// eslint-disable-next-line no-control-regex
const BAD_NAME = /[\u0000-\u001f\u007f]/;

/** Decides one client -> server message. */
export function evaluate(message: JSONRPCMessage, role: string, commandKey: string, policy: CompiledPolicy): Verdict {
  if (!('method' in message)) return PASS;
  const guard = GUARDED[message.method];
  if (!guard) return PASS;
  const malformed = (detail: string, target?: string): Verdict => ({
    action: 'deny',
    reason: 'malformed_request',
    rule: 'shape',
    kind: guard.kind,
    target,
    detail,
  });
  if (!('id' in message)) return malformed(`${message.method} sent as a notification`);
  const params: unknown = message.params;
  if (!isPlainObject(params)) return malformed('params must be an object');
  const target = params[guard.field];
  if (typeof target !== 'string' || target.length === 0 || target.length > 2048 || BAD_NAME.test(target)) {
    return malformed(`params.${guard.field} must be a non-empty string without control characters`);
  }
  if (guard.kind === 'resources') {
    const decision = decideUri(policy, target, role, commandKey);
    if (decision.allowed) return { action: 'allow', kind: 'resources', target, rule: decision.rule };
    const { reason = 'resource_denied', detail } = decision;
    return { action: 'deny', reason, rule: decision.rule, kind: 'resources', target, ...(detail === undefined ? {} : { detail }) };
  }
  const decision = decideName(policy, guard.kind, target, role, commandKey);
  if (!decision.allowed) return { action: 'deny', reason: DENIED_REASON[guard.kind], rule: decision.rule, kind: guard.kind, target };
  if (guard.kind === 'tools') {
    const args: unknown = params.arguments;
    if (args !== undefined && !isPlainObject(args)) return malformed('params.arguments must be an object', target);
    const failure = checkArguments(policy.chain(role, commandKey), target, args);
    if (failure) return { action: 'deny', reason: 'argument_rule', rule: failure.rule, kind: 'tools', target, detail: failure.detail };
  }
  return { action: 'allow', kind: guard.kind, target, rule: decision.rule };
}

interface ArgFailure {
  readonly rule: string;
  readonly detail: string;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** Every applicable section's argument rules for `tool` must pass. */
function checkArguments(chain: readonly CompiledSection[], tool: string, args: Record<string, unknown> | undefined): ArgFailure | undefined {
  for (const section of chain) {
    const spec = section.arguments.get(tool);
    if (!spec) continue;
    const failure = checkToolArguments(spec, args ?? {}, `${section.label}.arguments[${JSON.stringify(tool)}]`);
    if (failure) return failure;
  }
  return undefined;
}

function checkToolArguments(spec: CompiledToolArguments, args: Record<string, unknown>, where: string): ArgFailure | undefined {
  if (spec.maxTotalBytes !== undefined && Buffer.byteLength(JSON.stringify(args)) > spec.maxTotalBytes) {
    return { rule: `${where}.maxTotalBytes`, detail: `arguments exceed ${spec.maxTotalBytes} bytes` };
  }
  if (spec.additionalArgs === false) {
    for (const name of Object.keys(args)) {
      if (!spec.args.has(name)) return { rule: `${where}.additionalArgs`, detail: `argument ${JSON.stringify(name)} is not allowed` };
    }
  }
  for (const [name, rule] of spec.args) {
    const at = `${where}.args[${JSON.stringify(name)}]`;
    const present = Object.hasOwn(args, name);
    if (!present) {
      if (rule.required) return { rule: `${at}.required`, detail: `argument ${JSON.stringify(name)} is required` };
      continue;
    }
    const value = args[name];
    const type = typeOf(value);
    if (rule.type && !(rule.type === type || (rule.type === 'number' && type === 'integer'))) {
      return { rule: `${at}.type`, detail: `argument ${JSON.stringify(name)} must be ${rule.type}` };
    }
    if (rule.maxLength !== undefined) {
      const length = typeof value === 'string' ? [...value].length : Array.isArray(value) ? value.length : undefined;
      if (length === undefined) return { rule: `${at}.maxLength`, detail: `argument ${JSON.stringify(name)} must be a string or array` };
      if (length > rule.maxLength) return { rule: `${at}.maxLength`, detail: `argument ${JSON.stringify(name)} is longer than ${rule.maxLength}` };
    }
    if (rule.patternRe || rule.notPatternRe) {
      if (typeof value !== 'string') return { rule: `${at}.pattern`, detail: `argument ${JSON.stringify(name)} must be a string` };
      if (rule.patternRe && !rule.patternRe.test(value)) return { rule: `${at}.pattern`, detail: `argument ${JSON.stringify(name)} does not match` };
      if (rule.notPatternRe?.test(value)) return { rule: `${at}.notPattern`, detail: `argument ${JSON.stringify(name)} matches a forbidden pattern` };
    }
    if (rule.enum && !rule.enum.some((allowed) => allowed === value)) {
      return { rule: `${at}.enum`, detail: `argument ${JSON.stringify(name)} is not one of the allowed values` };
    }
  }
  return undefined;
}

/** The rate limit that applies to a tool for this role and command (most specific first). */
export function rateLimitFor(policy: CompiledPolicy, tool: string, role: string, commandKey: string): { rule: RateLimitRule; label: string } | undefined {
  for (const section of policy.chain(role, commandKey)) {
    const hit = section.rateLimits.find((r) => r.glob.exact.test(tool));
    if (hit) return { rule: hit.rule, label: `${section.label}.rateLimits ${JSON.stringify(hit.glob.source)}` };
  }
  return undefined;
}

/**
 * May `role` use anything of `kind` on `commandKey` at all? True when some section of its
 * chain allows a name of that kind, or the deciding default is allow. (A role for which
 * this is false is shown no such capability.)
 */
export function mayUseAny(policy: CompiledPolicy, kind: Kind, role: string, commandKey: string): boolean {
  const chain = policy.chain(role, commandKey);
  if (chain.some((section) => (section.rules[kind]?.allow?.length ?? 0) > 0)) return true;
  const decider = chain.find((section) => section.default !== undefined);
  return decider === undefined || decider.default === 'allow';
}
