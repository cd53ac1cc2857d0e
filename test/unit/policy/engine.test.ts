/**
 * The policy engine as a pure function: every rule kind, the order sections are
 * consulted in, the shapes that are denied as malformed, and the seed SMS example.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { CompiledPolicy } from '../../../src/policy/compile.js';
import { decideName, decideUri, evaluate, rateLimitFor, type Verdict } from '../../../src/policy/engine.js';
import { parsePolicy } from '../../../src/policy/store.js';

const EXAMPLE_PATH = new URL('../../../examples/policy.sms.json', import.meta.url);

/** Compiles a policy through the same path a file takes (zod, then compile). */
function policy(doc: Record<string, unknown>): CompiledPolicy {
  return parsePolicy(JSON.stringify({ name: 'test', ...doc }), 'test.json');
}

function request(method: string, params: unknown, id: string | number = 1): JSONRPCMessage {
  return { jsonrpc: '2.0', id, method, params } as unknown as JSONRPCMessage;
}

function call(name: unknown, args?: unknown): JSONRPCMessage {
  return request('tools/call', args === undefined ? { name } : { name, arguments: args });
}

function decide(p: CompiledPolicy, name: unknown, args?: unknown, role = 'user', command = 'cmd'): Verdict {
  return evaluate(call(name, args), role, command, p);
}

/** Asserts a deny and returns it narrowed. */
function denied(verdict: Verdict): Extract<Verdict, { action: 'deny' }> {
  expect(verdict.action).toBe('deny');
  if (verdict.action !== 'deny') throw new Error('unreachable');
  return verdict;
}

function allowed(verdict: Verdict): Extract<Verdict, { action: 'allow' }> {
  expect(verdict).toMatchObject({ action: 'allow' });
  if (verdict.action !== 'allow') throw new Error('unreachable');
  return verdict;
}

describe('top-level allow and deny globs', () => {
  it('allows anything without rules or a default, naming the implicit default', () => {
    expect(decide(policy({}), 'anything')).toEqual({ action: 'allow', kind: 'tools', target: 'anything', rule: 'implicit default (allow)' });
  });

  it('default allow: only deny globs block', () => {
    const p = policy({ default: 'allow', tools: { deny: ['delete_*'] } });
    expect(allowed(decide(p, 'read_file')).rule).toBe('policy.default');
    expect(denied(decide(p, 'delete_file'))).toEqual({
      action: 'deny',
      reason: 'tool_denied',
      rule: 'policy.tools.deny "delete_*"',
      kind: 'tools',
      target: 'delete_file',
    });
  });

  it('default deny: only allow globs let through', () => {
    const p = policy({ default: 'deny', tools: { allow: ['read_*', 'echo'] } });
    expect(allowed(decide(p, 'echo')).rule).toBe('policy.tools.allow "echo"');
    expect(allowed(decide(p, 'read_file')).rule).toBe('policy.tools.allow "read_*"');
    expect(denied(decide(p, 'write_file'))).toMatchObject({ reason: 'tool_denied', rule: 'policy.default', target: 'write_file' });
    expect(denied(decide(p, 'echo2')).rule).toBe('policy.default');
  });

  it('`*` matches any run of characters, including none and `/`', () => {
    const p = policy({ default: 'deny', tools: { allow: ['get_*'] } });
    for (const name of ['get_', 'get_x', 'get_a/b/c', 'get_ with spaces']) expect(decide(p, name).action).toBe('allow');
    for (const name of ['get', 'xget_a', 'GET_A']) expect(decide(p, name).action).toBe('deny');
  });

  it('`?` matches exactly one character (one code unit)', () => {
    const p = policy({ default: 'deny', tools: { allow: ['sms_?'] } });
    expect(decide(p, 'sms_1').action).toBe('allow');
    expect(decide(p, 'sms_x').action).toBe('allow');
    expect(decide(p, 'sms_').action).toBe('deny');
    expect(decide(p, 'sms_12').action).toBe('deny');
  });

  it('every other character is literal, regex metacharacters included', () => {
    const p = policy({ default: 'deny', tools: { allow: ['a.b', 'c+d', '(e)', 'f[g]', 'h^$|\\i', 'j{2}'] } });
    for (const name of ['a.b', 'c+d', '(e)', 'f[g]', 'h^$|\\i', 'j{2}']) expect(decide(p, name).action).toBe('allow');
    for (const name of ['axb', 'ccd', 'e', 'fg', 'jj']) expect(decide(p, name).action).toBe('deny');
  });

  it('within one section a deny beats an allow, whatever their order', () => {
    const p = policy({ tools: { allow: ['*', 'rm_rf'], deny: ['rm_*'] } });
    expect(denied(decide(p, 'rm_rf')).rule).toBe('policy.tools.deny "rm_*"');
    expect(allowed(decide(p, 'ls')).rule).toBe('policy.tools.allow "*"');
  });

  it('names the first matching glob of a list', () => {
    const p = policy({ tools: { deny: ['x_*', 'x_1'] } });
    expect(denied(decide(p, 'x_1')).rule).toBe('policy.tools.deny "x_*"');
  });
});

describe('section specificity', () => {
  const p = policy({
    default: 'deny',
    tools: { deny: ['delete_*'], allow: ['read_*'] },
    roles: {
      user: { tools: { allow: ['delete_own', 'post_*'] } },
      admin: { tools: { allow: ['*'] } },
    },
    commands: {
      sms: {
        tools: { deny: ['post_sms_7_bulk'] },
        roles: { admin: { tools: { allow: ['post_sms_7_bulk'] } } },
      },
    },
  });

  it('a role allow overrides a top-level deny', () => {
    expect(allowed(decide(p, 'delete_own', undefined, 'user')).rule).toBe('roles.user.tools.allow "delete_own"');
    // the same name for a role without that allow falls to the top-level deny
    expect(denied(decide(p, 'delete_own', undefined, 'guest')).rule).toBe('policy.tools.deny "delete_*"');
    // and another delete_ name for the user is still denied at the top
    expect(denied(decide(p, 'delete_all', undefined, 'user')).rule).toBe('policy.tools.deny "delete_*"');
  });

  it('a command deny beats a role allow in that command only', () => {
    expect(denied(decide(p, 'post_sms_7_bulk', undefined, 'user', 'sms')).rule).toBe('commands["sms"].tools.deny "post_sms_7_bulk"');
    expect(allowed(decide(p, 'post_sms_7_bulk', undefined, 'user', 'other')).rule).toBe('roles.user.tools.allow "post_*"');
  });

  it('a command+role allow beats the command deny', () => {
    expect(allowed(decide(p, 'post_sms_7_bulk', undefined, 'admin', 'sms')).rule).toBe('commands["sms"].roles.admin.tools.allow "post_sms_7_bulk"');
  });

  it('a section whose lists do not match defers to the next one', () => {
    // roles.user has tools rules, none matching read_x: top level decides
    expect(allowed(decide(p, 'read_x', undefined, 'user', 'sms')).rule).toBe('policy.tools.allow "read_*"');
    expect(denied(decide(p, 'unknown', undefined, 'user', 'sms')).rule).toBe('policy.default');
  });

  it('an explicit rule in a less specific section beats a more specific default', () => {
    const q = policy({ tools: { allow: ['echo'] }, roles: { user: { default: 'deny' } } });
    expect(allowed(decide(q, 'echo')).rule).toBe('policy.tools.allow "echo"');
    expect(denied(decide(q, 'other')).rule).toBe('roles.user.default');
  });

  it('the most specific default applies: command+role > command > role > top', () => {
    const q = policy({
      default: 'allow',
      roles: { user: { default: 'deny' }, admin: {} },
      commands: {
        a: { default: 'allow', roles: { user: { default: 'deny' } } },
        b: { roles: { admin: { default: 'deny' } } },
        c: { default: 'deny' },
      },
    });
    expect(denied(decide(q, 't', undefined, 'user', 'a')).rule).toBe('commands["a"].roles.user.default');
    expect(allowed(decide(q, 't', undefined, 'admin', 'a')).rule).toBe('commands["a"].default');
    expect(denied(decide(q, 't', undefined, 'admin', 'b')).rule).toBe('commands["b"].roles.admin.default');
    expect(denied(decide(q, 't', undefined, 'user', 'b')).rule).toBe('roles.user.default');
    expect(denied(decide(q, 't', undefined, 'admin', 'c')).rule).toBe('commands["c"].default');
    expect(allowed(decide(q, 't', undefined, 'admin', 'd')).rule).toBe('policy.default');
    expect(allowed(decide(q, 't', undefined, 'nobody', 'zzz')).rule).toBe('policy.default');
  });

  it('the chain is cached per (role, command) without mixing pairs up', () => {
    const q = policy({ roles: { a: { default: 'deny' } }, commands: { x: { roles: { b: { default: 'deny' } } } } });
    for (let i = 0; i < 3; i += 1) {
      expect(decide(q, 't', undefined, 'a', 'x').action).toBe('deny');
      expect(decide(q, 't', undefined, 'b', 'x').action).toBe('deny');
      expect(decide(q, 't', undefined, 'b', 'y').action).toBe('allow');
    }
  });
});

describe('resources and prompts', () => {
  const p = policy({
    default: 'deny',
    resources: { allow: ['file:///public/*', 'db://reports/?'], deny: ['file:///public/secret/*'] },
    prompts: { allow: ['greet', 'summarise_*'] },
    tools: { deny: ['greet'], allow: ['file:///public/*'] },
  });

  it('resources/read is decided by the URI, `*` spanning `/`', () => {
    const ok = evaluate(request('resources/read', { uri: 'file:///public/a/b/c.txt' }), 'user', 'cmd', p);
    expect(ok).toEqual({ action: 'allow', kind: 'resources', target: 'file:///public/a/b/c.txt', rule: 'policy.resources.allow "file:///public/*"' });
    expect(evaluate(request('resources/read', { uri: 'db://reports/7' }), 'user', 'cmd', p).action).toBe('allow');
    expect(evaluate(request('resources/read', { uri: 'db://reports/77' }), 'user', 'cmd', p).action).toBe('deny');
  });

  it('a resource deny glob beats the allow; unmatched URIs take the default', () => {
    expect(denied(evaluate(request('resources/read', { uri: 'file:///public/secret/k.pem' }), 'user', 'cmd', p))).toEqual({
      action: 'deny',
      reason: 'resource_denied',
      rule: 'policy.resources.deny "file:///public/secret/*"',
      kind: 'resources',
      target: 'file:///public/secret/k.pem',
    });
    expect(denied(evaluate(request('resources/read', { uri: 'file:///etc/passwd' }), 'user', 'cmd', p))).toMatchObject({
      reason: 'resource_denied',
      rule: 'policy.default',
    });
  });

  it('prompts/get is decided by the prompt name', () => {
    expect(allowed(evaluate(request('prompts/get', { name: 'greet' }), 'user', 'cmd', p)).rule).toBe('policy.prompts.allow "greet"');
    expect(allowed(evaluate(request('prompts/get', { name: 'summarise_pr' }), 'user', 'cmd', p)).kind).toBe('prompts');
    expect(denied(evaluate(request('prompts/get', { name: 'jailbreak' }), 'user', 'cmd', p))).toMatchObject({
      reason: 'prompt_denied',
      rule: 'policy.default',
      kind: 'prompts',
      target: 'jailbreak',
    });
  });

  it('kinds do not leak into each other', () => {
    // tools.deny "greet" does not touch the prompt; tools.allow of a URI does not allow the resource
    expect(decide(p, 'greet').action).toBe('deny');
    expect(evaluate(request('prompts/get', { name: 'greet' }), 'user', 'cmd', p).action).toBe('allow');
    expect(decide(p, 'file:///public/x').action).toBe('allow');
    expect(decideName(p, 'prompts', 'file:///public/x', 'user', 'cmd').allowed).toBe(false);
  });

  it('prompt arguments are not subject to tool argument rules', () => {
    const q = policy({ arguments: { greet: { additionalArgs: false } } });
    expect(evaluate(request('prompts/get', { name: 'greet', arguments: { anything: 'x' } }), 'user', 'cmd', q).action).toBe('allow');
    expect(decide(q, 'greet', { anything: 'x' }).action).toBe('deny');
  });
});

describe('argument rules', () => {
  const rule = (args: Record<string, unknown>, extra: Record<string, unknown> = {}) => policy({ arguments: { send: { args, ...extra } } });
  const at = (arg: string, check: string) => `policy.arguments["send"].args[${JSON.stringify(arg)}].${check}`;

  it('required: a missing argument is denied, also when arguments are absent', () => {
    const p = rule({ to: { required: true } });
    expect(denied(decide(p, 'send', { body: 'x' }))).toEqual({
      action: 'deny',
      reason: 'argument_rule',
      rule: at('to', 'required'),
      kind: 'tools',
      target: 'send',
      detail: 'argument "to" is required',
    });
    expect(denied(decide(p, 'send')).rule).toBe(at('to', 'required'));
    expect(decide(p, 'send', { to: '' }).action).toBe('allow');
    // present-but-null counts as present
    expect(decide(p, 'send', { to: null }).action).toBe('allow');
  });

  it('optional arguments are only checked when present', () => {
    const p = rule({ n: { type: 'integer' } });
    expect(decide(p, 'send', {}).action).toBe('allow');
    expect(decide(p, 'send', { n: 'x' }).action).toBe('deny');
  });

  it('type integer refuses fractions; type number accepts integers too', () => {
    const p = rule({ i: { type: 'integer' }, n: { type: 'number' } });
    expect(decide(p, 'send', { i: 2, n: 2 }).action).toBe('allow');
    expect(decide(p, 'send', { i: 2, n: 2.5 }).action).toBe('allow');
    expect(denied(decide(p, 'send', { i: 2.5 })).rule).toBe(at('i', 'type'));
    expect(denied(decide(p, 'send', { i: '2' })).rule).toBe(at('i', 'type'));
    expect(denied(decide(p, 'send', { n: '2' })).rule).toBe(at('n', 'type'));
    expect(denied(decide(p, 'send', { n: null })).detail).toBe('argument "n" must be number');
  });

  it('type tells objects, arrays, null, booleans and strings apart', () => {
    const p = rule({ o: { type: 'object' }, a: { type: 'array' }, z: { type: 'null' }, b: { type: 'boolean' }, s: { type: 'string' } });
    expect(decide(p, 'send', { o: {}, a: [], z: null, b: false, s: '' }).action).toBe('allow');
    expect(denied(decide(p, 'send', { o: [] })).rule).toBe(at('o', 'type'));
    expect(denied(decide(p, 'send', { o: null })).rule).toBe(at('o', 'type'));
    expect(denied(decide(p, 'send', { a: {} })).rule).toBe(at('a', 'type'));
    expect(denied(decide(p, 'send', { z: 0 })).rule).toBe(at('z', 'type'));
    expect(denied(decide(p, 'send', { b: 'true' })).rule).toBe(at('b', 'type'));
    expect(denied(decide(p, 'send', { s: 1 })).rule).toBe(at('s', 'type'));
  });

  it('maxLength counts a string in code points, so an emoji is one', () => {
    const p = rule({ body: { maxLength: 3 } });
    expect('😀😀😀'.length).toBe(6);
    expect(decide(p, 'send', { body: '😀😀😀' }).action).toBe('allow');
    expect(decide(p, 'send', { body: 'abc' }).action).toBe('allow');
    expect(denied(decide(p, 'send', { body: '😀😀😀😀' }))).toMatchObject({ rule: at('body', 'maxLength'), detail: 'argument "body" is longer than 3' });
    expect(denied(decide(p, 'send', { body: 'abcd' })).rule).toBe(at('body', 'maxLength'));
  });

  it('maxLength counts array items, and refuses other types', () => {
    const p = rule({ list: { maxLength: 2 } });
    expect(decide(p, 'send', { list: [] }).action).toBe('allow');
    expect(decide(p, 'send', { list: ['a', { long: 'x'.repeat(100) }] }).action).toBe('allow');
    expect(denied(decide(p, 'send', { list: [1, 2, 3] })).rule).toBe(at('list', 'maxLength'));
    expect(denied(decide(p, 'send', { list: 12345 }))).toMatchObject({ rule: at('list', 'maxLength'), detail: 'argument "list" must be a string or array' });
    expect(denied(decide(p, 'send', { list: { length: 1 } })).rule).toBe(at('list', 'maxLength'));
  });

  it('maxLength 0 allows only the empty string or array', () => {
    const p = rule({ s: { maxLength: 0 } });
    expect(decide(p, 'send', { s: '' }).action).toBe('allow');
    expect(decide(p, 'send', { s: [] }).action).toBe('allow');
    expect(decide(p, 'send', { s: ' ' }).action).toBe('deny');
  });

  it('pattern must match (unanchored unless the pattern anchors), and only strings pass', () => {
    const p = rule({ to: { pattern: '^\\+[0-9]{7,15}$' }, tag: { pattern: 'ok' } });
    expect(decide(p, 'send', { to: '+15551234567' }).action).toBe('allow');
    expect(denied(decide(p, 'send', { to: '15551234567' }))).toMatchObject({ rule: at('to', 'pattern'), detail: 'argument "to" does not match' });
    expect(denied(decide(p, 'send', { to: '+15551234567\n' })).rule).toBe(at('to', 'pattern'));
    expect(denied(decide(p, 'send', { to: 15551234567 }))).toMatchObject({ rule: at('to', 'pattern'), detail: 'argument "to" must be a string' });
    expect(decide(p, 'send', { tag: 'not ok at all' }).action).toBe('allow');
  });

  it('patterns run in unicode mode (an emoji is one `.`)', () => {
    const p = rule({ c: { pattern: '^.$' } });
    expect(decide(p, 'send', { c: '😀' }).action).toBe('allow');
    expect(decide(p, 'send', { c: 'ab' }).action).toBe('deny');
  });

  it('a pattern gives the same answer on repeated calls (no lastIndex state)', () => {
    const p = rule({ c: { pattern: 'a', notPattern: 'b' } });
    for (let i = 0; i < 4; i += 1) {
      expect(decide(p, 'send', { c: 'a' }).action).toBe('allow');
      expect(decide(p, 'send', { c: 'ab' }).action).toBe('deny');
    }
  });

  it('notPattern must not match', () => {
    const p = rule({ body: { notPattern: '[hH][tT][tT][pP][sS]?://' } });
    expect(decide(p, 'send', { body: 'hello' }).action).toBe('allow');
    expect(denied(decide(p, 'send', { body: 'see HtTpS://evil.example' }))).toMatchObject({
      rule: at('body', 'notPattern'),
      detail: 'argument "body" matches a forbidden pattern',
    });
    expect(denied(decide(p, 'send', { body: ['http://x'] })).rule).toBe(at('body', 'pattern'));
  });

  it('enum compares strictly: "1" is not 1, "true" is not true', () => {
    const p = rule({ v: { enum: ['1', 2, true, null] } });
    for (const v of ['1', 2, true, null]) expect(decide(p, 'send', { v }).action).toBe('allow');
    for (const v of [1, '2', 'true', 'null', false, 0, [], {}, ['1']]) {
      expect(denied(decide(p, 'send', { v }))).toMatchObject({ rule: at('v', 'enum'), detail: 'argument "v" is not one of the allowed values' });
    }
  });

  it('maxTotalBytes counts UTF-8 bytes of the JSON-encoded arguments', () => {
    // {"t":"<n×é>"} is 8 + 2n bytes
    const p = rule({}, { maxTotalBytes: 28 });
    expect(Buffer.byteLength(JSON.stringify({ t: 'é'.repeat(10) }))).toBe(28);
    expect(decide(p, 'send', { t: 'é'.repeat(10) }).action).toBe('allow');
    expect(denied(decide(p, 'send', { t: 'é'.repeat(10) + 'x' }))).toMatchObject({
      rule: 'policy.arguments["send"].maxTotalBytes',
      detail: 'arguments exceed 28 bytes',
    });
    // absent arguments count as {}
    expect(decide(rule({}, { maxTotalBytes: 2 }), 'send').action).toBe('allow');
    expect(decide(rule({}, { maxTotalBytes: 1 }), 'send').action).toBe('deny');
  });

  it('additionalArgs false denies names not listed in args', () => {
    const p = rule({ to: {}, body: {} }, { additionalArgs: false });
    expect(decide(p, 'send', { to: 'a', body: 'b' }).action).toBe('allow');
    expect(decide(p, 'send', {}).action).toBe('allow');
    expect(denied(decide(p, 'send', { to: 'a', cc: 'b' }))).toMatchObject({
      rule: 'policy.arguments["send"].additionalArgs',
      detail: 'argument "cc" is not allowed',
    });
    // without additionalArgs: false, extra arguments are fine
    expect(decide(rule({ to: {} }), 'send', { to: 'a', cc: 'b' }).action).toBe('allow');
  });

  it('argument rules apply to the exact tool name only', () => {
    const p = rule({ to: { required: true } });
    expect(decide(p, 'send2', {}).action).toBe('allow');
    expect(decide(p, 'SEND', {}).action).toBe('allow');
  });

  it('the name is decided before arguments are checked', () => {
    const p = policy({ tools: { deny: ['send'] }, arguments: { send: { args: { to: { required: true } } } } });
    expect(denied(decide(p, 'send', {})).reason).toBe('tool_denied');
  });

  it('rules from every section in the chain apply, most specific checked first', () => {
    const p = policy({
      arguments: { send: { args: { body: { maxLength: 10 } } } },
      roles: { user: { arguments: { send: { args: { body: { notPattern: 'spam' } } } } } },
      commands: { sms: { arguments: { send: { args: { to: { required: true } } } } } },
    });
    expect(decide(p, 'send', { to: '1', body: 'hi' }, 'user', 'sms').action).toBe('allow');
    expect(denied(decide(p, 'send', { to: '1', body: 'x'.repeat(11) }, 'user', 'sms')).rule).toBe('policy.arguments["send"].args["body"].maxLength');
    expect(denied(decide(p, 'send', { to: '1', body: 'spam' }, 'user', 'sms')).rule).toBe('roles.user.arguments["send"].args["body"].notPattern');
    expect(denied(decide(p, 'send', { body: 'hi' }, 'user', 'sms')).rule).toBe('commands["sms"].arguments["send"].args["to"].required');
    // both the command and the top-level rule fail: the command's is reported
    expect(denied(decide(p, 'send', { body: 'x'.repeat(11) }, 'user', 'sms')).rule).toBe('commands["sms"].arguments["send"].args["to"].required');
    // other command: the command rule does not apply; other role: the role rule does not
    expect(decide(p, 'send', { body: 'hi' }, 'user', 'other').action).toBe('allow');
    expect(decide(p, 'send', { to: '1', body: 'spam' }, 'admin', 'sms').action).toBe('allow');
    expect(decide(p, 'send', { to: '1', body: 'x'.repeat(11) }, 'admin', 'sms').action).toBe('deny');
  });

  it('an allowed verdict still names the rule that allowed the name', () => {
    const p = policy({ default: 'deny', tools: { allow: ['send'] }, arguments: { send: { args: { to: { required: true } } } } });
    expect(decide(p, 'send', { to: 'x' })).toEqual({ action: 'allow', kind: 'tools', target: 'send', rule: 'policy.tools.allow "send"' });
  });
});

describe('malformed requests are denied', () => {
  const p = policy({ default: 'allow' });
  const malformed = (v: Verdict) => {
    const d = denied(v);
    expect(d.reason).toBe('malformed_request');
    expect(d.rule).toBe('shape');
    return d;
  };

  it.each([
    ['an array', [{ name: 'echo' }]],
    ['null', null],
    ['a string', '{"name":"echo"}'],
    ['a number', 1],
    ['absent', undefined],
    ['an object with another prototype', Object.create({ name: 'echo' })],
    [
      'a class instance',
      new (class P {
        name = 'echo';
      })(),
    ],
  ])('params %s', (_label, params) => {
    expect(malformed(evaluate(request('tools/call', params), 'u', 'c', p)).detail).toBe('params must be an object');
  });

  it('accepts a null-prototype params object', () => {
    const params = Object.assign(Object.create(null) as Record<string, unknown>, { name: 'echo' });
    expect(evaluate(request('tools/call', params), 'u', 'c', p).action).toBe('allow');
  });

  it.each([
    ['a number', 5],
    ['an array', ['echo']],
    ['an object', { toString: 'echo' }],
    ['null', null],
    ['missing', undefined],
    ['empty', ''],
    ['containing NUL', 'echo\u0000'],
    ['containing a newline', 'ec\nho'],
    ['containing CR', 'echo\r'],
    ['containing a tab', 'ec\tho'],
    ['containing DEL', 'echo\u007f'],
    ['longer than 2048', 'e'.repeat(2049)],
  ])('name %s', (_label, name) => {
    expect(malformed(decide(p, name)).detail).toBe('params.name must be a non-empty string without control characters');
  });

  it('a name of exactly 2048 characters is fine', () => {
    expect(decide(p, 'e'.repeat(2048)).action).toBe('allow');
  });

  it.each([
    ['an array', [{ to: 'x' }]],
    ['a string', '{"to":"x"}'],
    ['null', null],
    ['a number', 0],
    ['an object with another prototype', Object.create({ to: 'x' })],
  ])('arguments %s', (_label, args) => {
    const d = malformed(evaluate(request('tools/call', { name: 'echo', arguments: args }), 'u', 'c', p));
    expect(d).toMatchObject({ detail: 'params.arguments must be an object', target: 'echo', kind: 'tools' });
  });

  it('a guarded method sent as a notification (no id)', () => {
    for (const method of ['tools/call', 'resources/read', 'prompts/get']) {
      const message = { jsonrpc: '2.0', method, params: { name: 'echo', uri: 'file:///x' } } as JSONRPCMessage;
      expect(malformed(evaluate(message, 'u', 'c', p)).detail).toBe(`${method} sent as a notification`);
    }
  });

  it('resources/read without a usable uri, prompts/get without a name', () => {
    expect(malformed(evaluate(request('resources/read', { name: 'file:///x' }), 'u', 'c', p))).toMatchObject({
      kind: 'resources',
      detail: 'params.uri must be a non-empty string without control characters',
    });
    expect(malformed(evaluate(request('resources/read', { uri: 'file:///x\n' }), 'u', 'c', p)).kind).toBe('resources');
    expect(malformed(evaluate(request('prompts/get', { name: 7 }), 'u', 'c', p)).kind).toBe('prompts');
  });

  it('arguments are checked for shape even when no argument rule exists', () => {
    expect(malformed(decide(policy({}), 'echo', []))).toMatchObject({ target: 'echo' });
  });
});

describe('prototype-polluting arguments', () => {
  const p = policy({
    arguments: {
      send: { additionalArgs: false, args: { to: { required: true, type: 'string' }, body: { type: 'string' } } },
      open: { args: { to: { required: true } } },
    },
  });

  it('an own `__proto__` key is an ordinary, unlisted argument', () => {
    const args = JSON.parse('{"to":"+1","__proto__":{"admin":true}}') as Record<string, unknown>;
    expect(Object.keys(args)).toContain('__proto__');
    expect(denied(decide(p, 'send', args))).toMatchObject({ rule: 'policy.arguments["send"].additionalArgs', detail: 'argument "__proto__" is not allowed' });
    expect(({} as Record<string, unknown>)['admin']).toBeUndefined();
  });

  it('a required argument hidden inside `__proto__` is not present', () => {
    const args = JSON.parse('{"__proto__":{"to":"+1"}}') as Record<string, unknown>;
    expect(denied(decide(p, 'open', args)).rule).toBe('policy.arguments["open"].args["to"].required');
  });

  it('a `__proto__` value does not change type checks of the real arguments', () => {
    const args = JSON.parse('{"to":5,"__proto__":{"to":"+1"}}') as Record<string, unknown>;
    expect(decide(p, 'open', args).action).toBe('allow'); // `to` is present (own property)
    const q = policy({ arguments: { open: { args: { to: { type: 'string' } } } } });
    expect(denied(decide(q, 'open', args)).rule).toBe('policy.arguments["open"].args["to"].type');
  });

  it('evaluating leaves Object.prototype untouched', () => {
    decide(p, 'send', JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}}}'));
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('params with an own `__proto__` key still carry the real name', () => {
    const params = JSON.parse('{"__proto__":{"name":"delete_x"},"name":"echo"}') as unknown;
    expect(evaluate(request('tools/call', params), 'u', 'c', policy({ tools: { deny: ['delete_*'] } })).action).toBe('allow');
    const hidden = JSON.parse('{"__proto__":{"name":"echo"}}') as unknown;
    expect(denied(evaluate(request('tools/call', hidden), 'u', 'c', policy({})))).toMatchObject({ reason: 'malformed_request' });
  });
});

describe('look-alike names', () => {
  it.each([
    ['fullwidth', 'ｄｅｌｅｔｅ_x'],
    ['upper case', 'DELETE_X'],
    ['mixed case', 'Delete_X'],
    ['trailing space', 'delete_x '],
    ['leading space', ' delete_x'],
    ['non-breaking space', 'delete_x\u00a0'],
    ['ideographic space', '\u3000delete_x'],
    ['compatibility ligature', 'delete_\ufb01le'],
  ])('%s is denied by a `delete_*` deny', (_label, name) => {
    const p = policy({ tools: { deny: ['delete_*'] } });
    expect(denied(decide(p, name))).toMatchObject({ reason: 'tool_denied', rule: 'policy.tools.deny "delete_*"', target: name });
  });

  it('a deny glob written in another case or width still denies', () => {
    const p = policy({ tools: { deny: ['DELETE_*', 'ｒｍ'] } });
    expect(denied(decide(p, 'delete_x')).rule).toBe('policy.tools.deny "DELETE_*"');
    expect(denied(decide(p, 'rm')).rule).toBe('policy.tools.deny "ｒｍ"');
  });

  it('an allow glob requires the exact name', () => {
    const p = policy({ default: 'deny', tools: { allow: ['delete_x', 'read_*'] } });
    expect(decide(p, 'delete_x').action).toBe('allow');
    for (const name of ['ｄｅｌｅｔｅ_x', 'DELETE_X', 'delete_x ', ' delete_x', 'READ_FILE', 'ｒｅａｄ_file']) {
      expect(denied(decide(p, name)).rule).toBe('policy.default');
    }
  });

  it('resource URIs in another case are denied by a deny glob', () => {
    const p = policy({ resources: { deny: ['file:///secret/*'] } });
    expect(denied(evaluate(request('resources/read', { uri: 'FILE:///SECRET/key' }), 'u', 'c', p)).reason).toBe('resource_denied');
  });
});

describe('methods that are not guarded pass', () => {
  const p = policy({ default: 'deny', tools: { deny: ['*'] } });
  it.each([
    ['tools/list', { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { cursor: 'x' } }],
    ['resources/list', { jsonrpc: '2.0', id: 1, method: 'resources/list' }],
    ['prompts/list', { jsonrpc: '2.0', id: 1, method: 'prompts/list' }],
    ['resources/templates/list', { jsonrpc: '2.0', id: 1, method: 'resources/templates/list' }],
    [
      'initialize',
      { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } } },
    ],
    ['ping', { jsonrpc: '2.0', id: 2, method: 'ping' }],
    ['notifications/initialized', { jsonrpc: '2.0', method: 'notifications/initialized' }],
    ['notifications/cancelled', { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } }],
    ['a result', { jsonrpc: '2.0', id: 1, result: { content: [] } }],
    ['an error', { jsonrpc: '2.0', id: 1, error: { code: -1, message: 'x' } }],
    ['a method differing in case', { jsonrpc: '2.0', id: 1, method: 'Tools/Call', params: { name: 'x' } }],
  ])('%s', (_label, message) => {
    expect(evaluate(message as JSONRPCMessage, 'user', 'cmd', p)).toEqual({ action: 'pass' });
  });
});

describe('the seed example examples/policy.sms.json', () => {
  const example = parsePolicy(readFileSync(EXAMPLE_PATH, 'utf8'), 'examples/policy.sms.json');
  const TOOLS = [
    'post_sms_1_preview',
    'post_sms_2_send',
    'post_sms_3_messages',
    'get_sms_4_status',
    'get_sms_5_inbox',
    'delete_sms_6_message',
    'post_sms_7_bulk',
    'get_sms_8_account',
  ];
  const goodMessage = { to: '+15551234567', body: 'Your code is 123456' };

  it('compiles with its name, version and mode', () => {
    expect(example).toMatchObject({ name: 'sms-seed', version: '1', mode: 'enforce', includeArguments: false });
    expect([...example.roleNames].sort()).toEqual(['admin', 'user']);
  });

  it('the user role may call only post_sms_3_messages and post_sms_1_preview on "sms"', () => {
    const allowedTools = TOOLS.filter((t) => decideName(example, 'tools', t, 'user', 'sms').allowed);
    expect(allowedTools.sort()).toEqual(['post_sms_1_preview', 'post_sms_3_messages']);
    expect(decideName(example, 'tools', 'post_sms_3_messages', 'user', 'sms').rule).toBe('roles.user.tools.allow "post_sms_3_messages"');
    expect(decideName(example, 'tools', 'post_sms_2_send', 'user', 'sms').rule).toBe('policy.default');
    expect(allowed(decide(example, 'post_sms_3_messages', goodMessage, 'user', 'sms')).rule).toBe('roles.user.tools.allow "post_sms_3_messages"');
    expect(allowed(decide(example, 'post_sms_1_preview', {}, 'user', 'sms')).rule).toBe('roles.user.tools.allow "post_sms_1_preview"');
    for (const t of TOOLS.filter((x) => !x.startsWith('post_sms_1') && !x.startsWith('post_sms_3'))) {
      expect(denied(decide(example, t, {}, 'user', 'sms'))).toMatchObject({ reason: 'tool_denied', rule: 'policy.default', target: t });
    }
  });

  it('the admin role may call all eight', () => {
    for (const t of TOOLS) expect(decideName(example, 'tools', t, 'admin', 'sms')).toEqual({ allowed: true, rule: 'roles.admin.default' });
    expect(decide(example, 'delete_sms_6_message', { id: 'm1' }, 'admin', 'sms').action).toBe('allow');
  });

  it('an unknown role gets the top-level default deny', () => {
    for (const t of TOOLS) expect(decideName(example, 'tools', t, 'guest', 'sms')).toEqual({ allowed: false, rule: 'policy.default' });
  });

  it('enforces the argument rules of post_sms_3_messages for every role on "sms"', () => {
    const base = 'commands["sms"].arguments["post_sms_3_messages"]';
    for (const role of ['user', 'admin']) {
      const check = (args: unknown) => decide(example, 'post_sms_3_messages', args, role, 'sms');
      expect(check(goodMessage).action).toBe('allow');
      expect(denied(check({ ...goodMessage, to: '555-1234' })).rule).toBe(`${base}.args["to"].pattern`);
      expect(denied(check({ ...goodMessage, to: '+0123456789' })).rule).toBe(`${base}.args["to"].pattern`);
      expect(denied(check({ ...goodMessage, to: 15551234567 })).rule).toBe(`${base}.args["to"].type`);
      expect(denied(check({ ...goodMessage, body: 'click https://evil.example/x' })).rule).toBe(`${base}.args["body"].notPattern`);
      expect(denied(check({ ...goodMessage, body: 'click HTTP://evil.example/x' })).rule).toBe(`${base}.args["body"].notPattern`);
      expect(denied(check({ ...goodMessage, from: '+15550000000' }))).toMatchObject({
        rule: `${base}.additionalArgs`,
        detail: 'argument "from" is not allowed',
      });
      expect(denied(check({ to: goodMessage.to })).rule).toBe(`${base}.args["body"].required`);
      expect(denied(check({ ...goodMessage, body: 'x'.repeat(641) })).rule).toBe(`${base}.args["body"].maxLength`);
      expect(check({ ...goodMessage, body: 'x'.repeat(640) }).action).toBe('allow');
      // 640 emoji pass maxLength (code points) but exceed maxTotalBytes 2048
      expect(denied(check({ ...goodMessage, body: '😀'.repeat(640) })).rule).toBe(`${base}.maxTotalBytes`);
    }
  });

  it('the argument rules are scoped to the "sms" command', () => {
    expect(decide(example, 'post_sms_3_messages', { to: 'nope', extra: 1 }, 'user', 'other').action).toBe('allow');
  });

  it('rateLimitFor finds the user limit on post_sms_3_messages only', () => {
    expect(rateLimitFor(example, 'post_sms_3_messages', 'user', 'sms')).toEqual({
      rule: { calls: 30, perSeconds: 60 },
      label: 'roles.user.rateLimits "post_sms_3_messages"',
    });
    expect(rateLimitFor(example, 'post_sms_1_preview', 'user', 'sms')).toBeUndefined();
    expect(rateLimitFor(example, 'post_sms_3_messages', 'admin', 'sms')).toBeUndefined();
  });
});

describe('rateLimitFor', () => {
  const p = policy({
    rateLimits: { '*': { calls: 1, perSeconds: 60 } },
    roles: { user: { rateLimits: { 'send_*': { calls: 2, perSeconds: 60, per: 'role' } } } },
    commands: {
      c: {
        rateLimits: { send_sms: { calls: 3, perSeconds: 60 } },
        roles: { user: { rateLimits: { 'send_*': { calls: 4, perSeconds: 30 }, send_sms: { calls: 5, perSeconds: 30 } } } },
      },
    },
  });

  it('picks the most specific section with a matching glob', () => {
    expect(rateLimitFor(p, 'send_sms', 'user', 'c')).toEqual({ rule: { calls: 4, perSeconds: 30 }, label: 'commands["c"].roles.user.rateLimits "send_*"' });
    expect(rateLimitFor(p, 'send_sms', 'admin', 'c')).toEqual({ rule: { calls: 3, perSeconds: 60 }, label: 'commands["c"].rateLimits "send_sms"' });
    expect(rateLimitFor(p, 'send_mail', 'admin', 'c')).toEqual({ rule: { calls: 1, perSeconds: 60 }, label: 'policy.rateLimits "*"' });
    expect(rateLimitFor(p, 'send_sms', 'user', 'd')).toEqual({ rule: { calls: 2, perSeconds: 60, per: 'role' }, label: 'roles.user.rateLimits "send_*"' });
    expect(rateLimitFor(p, 'other', 'user', 'd')?.label).toBe('policy.rateLimits "*"');
  });

  it('returns undefined when no section limits the tool', () => {
    const q = policy({ rateLimits: { 'send_*': { calls: 1, perSeconds: 1 } } });
    expect(rateLimitFor(q, 'read', 'user', 'c')).toBeUndefined();
    expect(rateLimitFor(policy({}), 'read', 'user', 'c')).toBeUndefined();
  });
});

describe('decision speed (informational, not asserted)', () => {
  it('evaluates 100k tool calls against a realistic policy', () => {
    const p = policy({
      default: 'deny',
      tools: { deny: ['delete_*', '*_admin_*', 'exec*'] },
      roles: {
        admin: { default: 'allow' },
        user: {
          tools: { allow: ['post_sms_3_messages', 'post_sms_1_preview', 'get_sms_4_status', 'get_*'], deny: ['get_sms_8_account'] },
          rateLimits: { post_sms_3_messages: { calls: 30, perSeconds: 60 } },
        },
        support: { tools: { allow: ['get_*'] } },
      },
      commands: {
        sms: {
          tools: { deny: ['post_sms_7_bulk'] },
          arguments: {
            post_sms_3_messages: {
              maxTotalBytes: 2048,
              additionalArgs: false,
              args: {
                to: { required: true, type: 'string', pattern: '^\\+[1-9][0-9]{6,14}$' },
                body: { required: true, type: 'string', maxLength: 640, notPattern: '[hH][tT][tT][pP][sS]?://' },
                priority: { type: 'string', enum: ['low', 'normal', 'high'] },
              },
            },
          },
          roles: { user: { arguments: { post_sms_3_messages: { args: { body: { notPattern: '[pP][aA][sS][sS][wW][oO][rR][dD]' } } } } } },
        },
      },
    });
    const message = call('post_sms_3_messages', { to: '+15551234567', body: 'Your verification code is 482913. It expires in 10 minutes.', priority: 'high' });
    const n = 100_000;
    let last: Verdict = { action: 'pass' };
    for (let i = 0; i < 5_000; i += 1) last = evaluate(message, 'user', 'sms', p); // warm up
    // mean: one clock read around the whole loop
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i += 1) last = evaluate(message, 'user', 'sms', p);
    const meanUs = Number(process.hrtime.bigint() - start) / 1000 / n;
    // percentiles: each call timed on its own (includes the clock's own overhead)
    const samples = new Float64Array(n);
    for (let i = 0; i < n; i += 1) {
      const t0 = process.hrtime.bigint();
      last = evaluate(message, 'user', 'sms', p);
      samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
    }
    samples.sort();
    const p50 = samples[Math.floor(n / 2)]!;
    const p99 = samples[Math.floor(n * 0.99)]!;
    process.stderr.write(`policy evaluate: ${n} calls, mean ${meanUs.toFixed(2)} µs, p50 ${p50.toFixed(2)} µs, p99 ${p99.toFixed(2)} µs\n`);
    expect(last).toEqual({ action: 'allow', kind: 'tools', target: 'post_sms_3_messages', rule: 'roles.user.tools.allow "post_sms_3_messages"' });
  });
});

/**
 * Known gaps, each shown by a test that fails today (it.failing passes while the bug is
 * there). Remove `.failing` once fixed.
 */
describe('fixed gaps', () => {
  // compileGlob escapes regex metacharacters first and NFKC-normalises the escaped
  // source afterwards, so a fullwidth `（` `．` `＊` becomes an unescaped `(` `.` `*`
  // in the loose (deny) regex.
  it('a glob with a fullwidth bracket is a literal (normalised before escaping)', () => {
    const p = policy({ tools: { deny: ['tool（'] } });
    expect(decide(p, 'tool(').action).toBe('deny');
    expect(decide(p, 'tool（').action).toBe('deny');
    expect(decide(p, 'toolx').action).toBe('allow');
  });

  it('a fullwidth full stop in a deny glob stays a literal full stop', () => {
    const p = policy({ tools: { deny: ['a．b'] } });
    expect(decide(p, 'a.b').action).toBe('deny'); // its normalised form: fine
    expect(decide(p, 'axb').action).toBe('allow'); // today: denied, `.` became a wildcard
  });

  // zod builds records by assignment, so a `__proto__` key sets the prototype of the
  // parsed record instead of becoming an entry: the section is silently dropped.
  it('a role section named "__proto__" is honoured or rejected, not dropped', () => {
    let p: CompiledPolicy;
    try {
      // JSON text: an object literal's `__proto__` would not be an own key
      p = parsePolicy('{"name":"t","default":"allow","roles":{"__proto__":{"default":"deny"}}}', 'test.json');
    } catch {
      return; // rejected at load: acceptable
    }
    expect(decide(p, 't', undefined, '__proto__').action).toBe('deny');
  });

  // URIs are matched as raw text: dot segments and percent-encoding reach a path the
  // deny glob names, which a file-serving server resolves.
  it('a resource deny cannot be bypassed with dot segments', () => {
    const p = policy({ resources: { deny: ['file:///secret/*'] } });
    expect(evaluate(request('resources/read', { uri: 'file:///public/../secret/key' }), 'u', 'c', p).action).toBe('deny');
  });

  it('a resource deny cannot be bypassed with percent-encoding', () => {
    const p = policy({ resources: { deny: ['file:///secret/*'] } });
    expect(evaluate(request('resources/read', { uri: 'file:///%73ecret/key' }), 'u', 'c', p).action).toBe('deny');
  });
});

describe('file: URIs are decided by the path a POSIX server opens', () => {
  const read = (p: CompiledPolicy, uri: string) => evaluate(request('resources/read', { uri }), 'user', 'cmd', p);
  const denyEtc = policy({ resources: { deny: ['file:///etc/*'] } });
  const allowDocs = policy({ default: 'deny', resources: { allow: ['file:///srv/docs/*'] } });

  it.each([
    ['an empty authority with an extra slash', 'file:////etc/passwd'],
    ['many slashes', 'file://///etc///passwd'],
    ['localhost as the host', 'file://localhost/etc/passwd'],
    ['LOCALHOST in capitals', 'file://LOCALHOST/etc/passwd'],
    ['no authority', 'file:/etc/passwd'],
    ['the scheme in capitals', 'FILE:///etc/passwd'],
    ['a dot segment', 'file:///etc/./passwd'],
    ['a parent segment', 'file:///tmp/../etc/passwd'],
    ['an encoded letter', 'file:///%65tc/passwd'],
    ['encoded dot segments', 'file:///tmp/%2e%2E/etc/passwd'],
    ['an encoded dot', 'file:///etc/%2e/passwd'],
  ])('a deny of file:///etc/* holds with %s', (_label, uri) => {
    expect(denied(read(denyEtc, uri))).toMatchObject({ reason: 'resource_denied', rule: 'policy.resources.deny "file:///etc/*"', target: uri });
  });

  it.each([
    ['/proc/self/root', 'file:///proc/self/root/etc/passwd'],
    ['/proc/<pid>/root', 'file:///proc/1/root/etc/shadow'],
    ['/proc/thread-self/root', 'file:///proc/thread-self/root/etc/passwd'],
    ['a task root', 'file:///proc/self/task/1/root/etc/passwd'],
    ['/proc/self/cwd', 'file:///proc/self/cwd/../../etc/passwd'],
    ['/proc/self/fd', 'file:///proc/self/fd/3/passwd'],
    ['/proc/self/root followed by ..', 'file:///proc/self/root/../etc/passwd'],
    ['an encoded /proc alias', 'file:///proc/self/%72oot/etc/passwd'],
    ['/dev/fd', 'file:///dev/fd/3/passwd'],
    ['/dev/stdin', 'file:///dev/stdin'],
  ])('a kernel alias is denied whatever the rules: %s', (_label, uri) => {
    for (const p of [denyEtc, policy({})]) {
      expect(denied(read(p, uri))).toMatchObject({ reason: 'resource_denied', rule: 'uri.alias', target: uri, detail: expect.stringContaining('alias') });
    }
  });

  it.each([
    ['a host', 'file://evil.example/etc/passwd', 'host'],
    ['a host with a port', 'file://localhost:80/etc/passwd', 'host'],
    ['no absolute path', 'file:etc/passwd', 'absolute path'],
    ['a backslash', 'file:///etc\\passwd', 'backslash'],
    ['an encoded backslash', 'file:///tmp%5C..%5Cetc/passwd', 'backslash'],
    ['an encoded slash', 'file:///etc%2Fpasswd', 'encoded "/"'],
    ['an encoded slash in lower case', 'file:///tmp/..%2f..%2fetc/passwd', 'encoded "/"'],
    ['an encoded NUL', 'file:///etc/passwd%00.txt', 'control character'],
    ['an encoded newline', 'file:///etc/pass%0Awd', 'control character'],
    ['double encoding', 'file:///%2565tc/passwd', 'twice'],
    ['double-encoded dots', 'file:///srv/docs/%252e%252e/x', 'twice'],
    ['a malformed escape', 'file:///etc/%zzpasswd', 'malformed'],
    ['a truncated escape', 'file:///etc/passwd%2', 'malformed'],
    ['escapes that are not UTF-8', 'file:///%C0%AFetc/passwd', 'UTF-8'],
    ['.. above the root', 'file:///../etc/passwd', 'above the root'],
    ['encoded .. above the root', 'file:///%2e%2e/etc/passwd', 'above the root'],
    ['a query', 'file:///etc/passwd?raw', 'query'],
    ['a fragment', 'file:///srv/docs/a#/../../../etc/passwd', 'query or fragment'],
    ['a leading space', ' file:///etc/passwd', 'spaces'],
    ['a trailing space', 'file:///etc/passwd ', 'spaces'],
    ['a percent-encoded scheme', '%66ile:///etc/passwd', 'scheme'],
  ])('a file URI that cannot be read unambiguously is denied as malformed: %s', (_label, uri, detail) => {
    for (const p of [denyEtc, allowDocs, policy({})]) {
      expect(denied(read(p, uri))).toMatchObject({ reason: 'malformed_request', rule: 'uri', target: uri, detail: expect.stringContaining(detail) });
    }
  });

  it.each([
    ['empty segments and ..', 'file:///srv/docs/x/..//..//etc/passwd'],
    ['.. out of the allowed directory', 'file:///srv/docs/../docs-private/key'],
    ['encoded ..', 'file:///srv/docs/%2e%2e/%2e%2e/etc/passwd'],
    ['a sibling with the same prefix', 'file:///srv/docs-private/key'],
  ])('an allow of file:///srv/docs/* does not let out %s', (_label, uri) => {
    expect(denied(read(allowDocs, uri))).toMatchObject({ reason: 'resource_denied', rule: 'policy.default' });
  });

  it.each([
    ['plain', 'file:///srv/docs/a.txt'],
    ['an encoded space', 'file:///srv/docs/a%20b.txt'],
    ['a literal space inside', 'file:///srv/docs/a b.txt'],
    ['doubled slashes and a dot', 'file:////srv//docs/./a.txt'],
    ['localhost', 'file://localhost/srv/docs/a.txt'],
    ['.. that stays inside', 'file:///srv/docs/x/../a.txt'],
    ['a directory', 'file:///srv/docs/sub/'],
    ['a percent sign that is not an escape of one', 'file:///srv/docs/100%25.txt'],
  ])('an allow of file:///srv/docs/* still allows %s', (_label, uri) => {
    expect(allowed(read(allowDocs, uri))).toMatchObject({ rule: 'policy.resources.allow "file:///srv/docs/*"', target: uri });
  });

  it('file globs are matched in the decoded, normalised form, labelled as written', () => {
    const p = policy({
      default: 'deny',
      resources: { allow: ['file:///srv/my%20docs/*', 'FILE://localhost//srv//b/*'], deny: ['file://localhost/srv/my%20docs/secret/*'] },
    });
    expect(allowed(read(p, 'file:///srv/my docs/a')).rule).toBe('policy.resources.allow "file:///srv/my%20docs/*"');
    expect(allowed(read(p, 'file:///srv/my%20docs/a')).rule).toBe('policy.resources.allow "file:///srv/my%20docs/*"');
    expect(allowed(read(p, 'file:///srv/b/x')).rule).toBe('policy.resources.allow "FILE://localhost//srv//b/*"');
    expect(denied(read(p, 'file:///srv/my%20docs/secret/k')).rule).toBe('policy.resources.deny "file://localhost/srv/my%20docs/secret/*"');
  });

  it('a file glob whose escape does not decode fails the load, naming its key', () => {
    expect(() => policy({ roles: { user: { resources: { deny: ['file:///ok/*', 'file:///%E0%A4/*'] } } } })).toThrow(
      /roles\.user\.resources\.deny\[1\]: .*percent-escape/,
    );
  });

  it('decideUri (used to filter resources/list) gives the same answer as resources/read', () => {
    expect(decideUri(denyEtc, 'file:////etc/passwd', 'user', 'cmd').allowed).toBe(false);
    expect(decideUri(denyEtc, 'file:///proc/self/root/etc/passwd', 'user', 'cmd')).toMatchObject({ allowed: false, rule: 'uri.alias' });
    expect(decideUri(allowDocs, 'file:///srv/docs/a%20b.txt', 'user', 'cmd').allowed).toBe(true);
  });

  it('other schemes keep their spellings: as written, decoded and WHATWG-normalised', () => {
    const p = policy({ resources: { deny: ['https://example.com/private/*'] } });
    expect(denied(read(p, 'https://example.com/public/../private/x')).reason).toBe('resource_denied');
    expect(denied(read(p, 'https://example.com/%70rivate/x')).reason).toBe('resource_denied');
    expect(read(p, 'https://example.com/public/x').action).toBe('allow');
    expect(read(p, 'notes/today').action).toBe('allow');
  });
});
