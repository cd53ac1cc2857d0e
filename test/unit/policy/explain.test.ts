/**
 * A malformed policy fails with sentences that say where and what to write: the path in
 * the file, what belongs there (read from the schema), what was found; unknown keys with
 * the allowed ones (and the likely intended one); enums with their values. The README's
 * simple form needs no name.
 */
import { describe, expect, it } from '@jest/globals';
import { PolicyError } from '../../../src/policy/compile.js';
import { formatPath } from '../../../src/policy/explain.js';
import { parsePolicy } from '../../../src/policy/store.js';

function message(doc: unknown, source = 'policy.json'): string {
  try {
    parsePolicy(JSON.stringify(doc), source);
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return (error as Error).message;
  }
  throw new Error('parsePolicy accepted the policy');
}

const SECTION_KEYS = 'default, tools, resources, prompts, arguments, rateLimits';

describe('the simple form', () => {
  it('needs no name: the README example loads, named after its file', () => {
    const simple = '{"default":"deny","tools":{"allow":["echo"]}}';
    const policy = parsePolicy(simple, '/etc/warden/policy.json');
    expect(policy.name).toBe('policy');
    expect(policy.chain('default', 'any')[0]?.default).toBe('deny');
    expect(parsePolicy(simple, 'strict.JSON').name).toBe('strict');
    expect(parsePolicy(simple, '/etc/warden/team-a.policy').name).toBe('team-a.policy');
  });

  it('keeps a name the file gives', () => {
    expect(parsePolicy('{"name":"mine","default":"allow"}', 'policy.json').name).toBe('mine');
  });
});

describe('policy errors say where and what to write', () => {
  it.each<[string, unknown, string]>([
    [
      'a number among tool names',
      { roles: { user: { tools: { allow: ['a', 'b', 3] } } } },
      'policy.json: roles.user.tools.allow[2]: expected a tool name (a string), got a number',
    ],
    ['a list where allow/deny belong', { tools: ['echo'] }, 'policy.json: tools: expected an object with the keys allow, deny, got a list'],
    ['a string where a list belongs', { prompts: { allow: 'p' } }, 'policy.json: prompts.allow: expected a list of prompt names (strings), got a string'],
    ['an object as a resource URI', { resources: { deny: [{}] } }, 'policy.json: resources.deny[0]: expected a resource URI (a string), got an object'],
    ['an empty tool name', { tools: { allow: ['ok', ''] } }, 'policy.json: tools.allow[1]: must not be empty; write a tool name (a string)'],
    ['a bad default', { default: 'maybe' }, 'policy.json: default: expected one of "allow", "deny", got "maybe"'],
    ['a boolean default', { roles: { user: { default: true } } }, 'policy.json: roles.user.default: expected one of "allow", "deny", got true'],
    ['a bad mode', { mode: 'audit' }, 'policy.json: mode: expected one of "enforce", "shadow", got "audit"'],
    ['a zero rate', { rateLimits: { t: { calls: 0, perSeconds: 1 } } }, 'policy.json: rateLimits.t.calls: expected a whole number greater than 0, got 0'],
    ['a missing period', { rateLimits: { t: { calls: 1 } } }, 'policy.json: rateLimits.t.perSeconds: missing; write a whole number greater than 0 here'],
    [
      'a fractional maxLength',
      { arguments: { t: { args: { a: { maxLength: 1.5 } } } } },
      'policy.json: arguments.t.args.a.maxLength: expected a whole number of 0 or more, got 1.5',
    ],
    [
      'an object among enum values',
      { arguments: { t: { args: { a: { enum: [{}] } } } } },
      'policy.json: arguments.t.args.a.enum[0]: expected a string, a number, a boolean or null, got an object',
    ],
    ['a string for a boolean', { redaction: { enabled: 'yes' } }, 'policy.json: redaction.enabled: expected true or false, got a string'],
    [
      'a bad role name',
      { roles: { 'a b': {} } },
      'policy.json: roles: the key "a b" is not allowed: a role name is 1 to 64 letters, digits, dots, underscores or hyphens',
    ],
    [
      'a bad flag',
      { redaction: { patterns: [{ name: 'p', regex: 'x', flags: 'g' }] } },
      'policy.json: redaction.patterns[0].flags: flags are any of the letters i, m, s and u, got "g"',
    ],
    ['a number as the name', { name: 5 }, 'policy.json: name: expected a string, got a number'],
    [
      'a list as the policy',
      [],
      'policy.json: (top level): expected an object with the keys $schema, name, version, mode, default, tools, resources, prompts, arguments, rateLimits, roles, commands, redaction, audit, got a list',
    ],
  ])('%s', (_label, doc, expected) => {
    expect(message(doc)).toBe(expected);
  });

  it('an unknown key: names it, the likely intended key, and every allowed key', () => {
    expect(message({ roles: { user: { tool: { allow: ['a'] } } } })).toBe(
      `policy.json: roles.user: unknown key "tool" (did you mean "tools"?); allowed here: ${SECTION_KEYS}`,
    );
    expect(message({ audit: { arguments: true } })).toBe('policy.json: audit: unknown key "arguments"; allowed here: includeArguments');
    expect(message({ Default: 'deny', tool: {} })).toMatch(
      /^policy\.json: \(top level\): unknown keys "Default" \(did you mean "default"\?\), "tool" \(did you mean "tools"\?\); allowed here: \$schema, name, /,
    );
  });

  it('quotes a whitelist key that is not a plain name', () => {
    expect(message({ commands: { 'npx -y @acme/server': { tools: { deny: [1] } } } })).toBe(
      'policy.json: commands["npx -y @acme/server"].tools.deny[0]: expected a tool name (a string), got a number',
    );
    expect(formatPath(['roles', 'user.v2', 'tools', 'allow', 0])).toBe('roles["user.v2"].tools.allow[0]');
    expect(formatPath([])).toBe('');
  });

  it('lists several problems, one line each, the first five then how many more', () => {
    const lines = message({ mode: 'x', default: 'x', tools: 1, prompts: 1, resources: 1, roles: 1, commands: 1 }, '/etc/p.json').split('\n');
    expect(lines).toHaveLength(6);
    for (const line of lines) expect(line.startsWith('/etc/p.json: ')).toBe(true);
    expect(lines[5]).toBe('/etc/p.json: and 2 more problems');
  });
});
