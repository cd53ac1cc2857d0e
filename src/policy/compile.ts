/**
 * Turns a validated policy into lookup structures: globs and regexes compiled once,
 * the section chain for each (role, command) pair cached. A bad regex fails the load
 * with an error naming its key.
 */
import { compileGlob, type Glob } from './glob.js';
import { compileDetectors, type Detector } from './redact.js';
import type { ArgRule, Policy, PolicySection, RateLimitRule, ToolArguments } from './schema.js';
import { resourceGlobPattern } from './uri.js';

export type Kind = 'tools' | 'resources' | 'prompts';
export const KINDS: readonly Kind[] = ['tools', 'resources', 'prompts'];

export class PolicyError extends Error {
  override name = 'PolicyError';
}

export interface CompiledRules {
  readonly allow: readonly Glob[] | undefined;
  readonly deny: readonly Glob[] | undefined;
}

export interface CompiledArgRule extends ArgRule {
  readonly patternRe: RegExp | undefined;
  readonly notPatternRe: RegExp | undefined;
}

export interface CompiledToolArguments extends Omit<ToolArguments, 'args'> {
  readonly args: ReadonlyMap<string, CompiledArgRule>;
}

export interface CompiledSection {
  /** Where this section sits in the file, e.g. `roles.user` or `commands["sms"].roles.user`. */
  readonly label: string;
  readonly default: 'allow' | 'deny' | undefined;
  readonly rules: Readonly<Record<Kind, CompiledRules | undefined>>;
  readonly arguments: ReadonlyMap<string, CompiledToolArguments>;
  readonly rateLimits: readonly { readonly glob: Glob; readonly rule: RateLimitRule }[];
}

export interface CompiledPolicy {
  readonly name: string;
  readonly version: string | undefined;
  readonly mode: 'enforce' | 'shadow';
  readonly roleNames: readonly string[];
  readonly redaction: { readonly detectors: readonly Detector[]; readonly except: readonly Glob[] } | undefined;
  readonly includeArguments: boolean;
  /** Most specific first: command+role, command, role, top level. */
  chain(role: string, commandKey: string): readonly CompiledSection[];
}

function regex(source: string | undefined, where: string): RegExp | undefined {
  if (source === undefined) return undefined;
  try {
    return new RegExp(source, 'u');
  } catch (error) {
    throw new PolicyError(`${where}: invalid regex: ${(error as Error).message}`);
  }
}

/** A resource glob, matched in the form resource URIs are decided in (see uri.ts). */
function resourceGlob(source: string, where: string): Glob {
  try {
    return compileGlob(source, resourceGlobPattern(source));
  } catch (error) {
    throw new PolicyError(`${where}: ${(error as Error).message}`);
  }
}

function compileSection(section: PolicySection, label: string): CompiledSection {
  const rules = {} as Record<Kind, CompiledRules | undefined>;
  for (const kind of KINDS) {
    const r = section[kind];
    const compile = (list: string[] | undefined, which: string) =>
      list?.map((source, i) => (kind === 'resources' ? resourceGlob(source, `${label}.resources.${which}[${i}]`) : compileGlob(source)));
    rules[kind] = r ? { allow: compile(r.allow, 'allow'), deny: compile(r.deny, 'deny') } : undefined;
  }
  const args = new Map<string, CompiledToolArguments>();
  for (const [tool, spec] of Object.entries(section.arguments ?? {})) {
    const perArg = new Map<string, CompiledArgRule>();
    for (const [name, rule] of Object.entries(spec.args ?? {})) {
      const where = `${label}.arguments["${tool}"].args["${name}"]`;
      perArg.set(name, { ...rule, patternRe: regex(rule.pattern, `${where}.pattern`), notPatternRe: regex(rule.notPattern, `${where}.notPattern`) });
    }
    args.set(tool, { maxTotalBytes: spec.maxTotalBytes, additionalArgs: spec.additionalArgs, args: perArg });
  }
  const rateLimits = Object.entries(section.rateLimits ?? {}).map(([glob, rule]) => ({ glob: compileGlob(glob), rule }));
  return { label, default: section.default, rules, arguments: args, rateLimits };
}

export function compilePolicy(policy: Policy): CompiledPolicy {
  const top = compileSection(policy, 'policy');
  const roles = new Map<string, CompiledSection>();
  for (const [role, section] of Object.entries(policy.roles ?? {})) roles.set(role, compileSection(section, `roles.${role}`));
  const commands = new Map<string, { section: CompiledSection; roles: Map<string, CompiledSection> }>();
  for (const [key, section] of Object.entries(policy.commands ?? {})) {
    const label = `commands[${JSON.stringify(key)}]`;
    const inner = new Map<string, CompiledSection>();
    for (const [role, rs] of Object.entries(section.roles ?? {})) inner.set(role, compileSection(rs, `${label}.roles.${role}`));
    commands.set(key, { section: compileSection(section, label), roles: inner });
  }
  let redaction: CompiledPolicy['redaction'];
  if (policy.redaction?.enabled !== false) {
    try {
      redaction = {
        detectors: compileDetectors(policy.redaction?.patterns ?? [], { builtin: policy.redaction?.builtin ?? true }),
        except: (policy.redaction?.exceptTools ?? []).map((glob) => compileGlob(glob)),
      };
    } catch (error) {
      throw new PolicyError(`redaction.patterns: ${(error as Error).message}`);
    }
  }
  const roleNames = new Set<string>(roles.keys());
  for (const c of commands.values()) for (const r of c.roles.keys()) roleNames.add(r);
  const cache = new Map<string, readonly CompiledSection[]>();
  return {
    name: policy.name ?? 'policy',
    version: policy.version === undefined ? undefined : String(policy.version),
    mode: policy.mode ?? 'enforce',
    roleNames: [...roleNames],
    redaction,
    includeArguments: policy.audit?.includeArguments ?? false,
    chain(role, commandKey) {
      const key = `${role}\u0000${commandKey}`;
      let chain = cache.get(key);
      if (!chain) {
        const command = commands.get(commandKey);
        chain = [command?.roles.get(role), command?.section, roles.get(role), top].filter((s): s is CompiledSection => s !== undefined);
        cache.set(key, chain);
      }
      return chain;
    },
  };
}
