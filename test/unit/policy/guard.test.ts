/**
 * PolicyGuard on one session's stream, with a recording audit, real PolicyStats and tool
 * rate limits over the in-memory limiter store.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { AuditRecorder } from '../../../src/audit/recorder.js';
import type { Principal } from '../../../src/auth/bearer.js';
import { ERROR_TABLE } from '../../../src/errors.js';
import { compilePolicy, type CompiledPolicy } from '../../../src/policy/compile.js';
import { FORWARD, PolicyGuard, type InboundResult } from '../../../src/policy/guard.js';
import { PolicyStats } from '../../../src/policy/stats.js';
import { SessionTasks } from '../../../src/policy/tasks.js';
import { parsePolicy } from '../../../src/policy/store.js';
import { createLimiterStore, type LimiterStore } from '../../../src/ratelimit/limiter.js';
import { ToolRateLimits } from '../../../src/ratelimit/toolLimits.js';

const AWS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';

interface Recorded {
  readonly event: string;
  readonly fields: Record<string, unknown>;
}

class RecordingAudit implements AuditRecorder {
  readonly records: Recorded[] = [];
  record(event: string, fields: Record<string, unknown>): void {
    this.records.push({ event, fields });
  }
  toolCalls(): Record<string, unknown>[] {
    return this.records.filter((r) => r.event === 'tool_call').map((r) => r.fields);
  }
}

function policy(doc: Record<string, unknown>): CompiledPolicy {
  return parsePolicy(JSON.stringify({ name: 'test', ...doc }), 'test.json');
}

const builtinRedaction = compilePolicy({ name: 'built-in' }).redaction;

interface Setup {
  readonly policy?: CompiledPolicy | undefined;
  readonly getPolicy?: () => CompiledPolicy | undefined;
  readonly toolLimits?: ToolRateLimits;
  readonly principal?: Omit<Principal, 'kind'>;
  readonly commandKey?: string;
  readonly clientKey?: string;
  readonly audit?: RecordingAudit;
  readonly stats?: PolicyStats;
}

function makeGuard(setup: Setup = {}) {
  const audit = setup.audit ?? new RecordingAudit();
  const stats = setup.stats ?? new PolicyStats();
  const principal: Principal = { kind: 'client', ...(setup.principal ?? { clientId: 'app-1', role: 'user' }) };
  const guard = new PolicyGuard(
    {
      policy: setup.getPolicy ?? (() => setup.policy),
      defaultRedaction: builtinRedaction,
      toolLimits: setup.toolLimits,
      audit,
      stats,
    },
    { principal, commandKey: setup.commandKey ?? 'sms', clientKey: setup.clientKey ?? `client:${principal.clientId}`, sessionTag: () => 'sess-tag' },
  );
  return { guard, audit, stats };
}

function req(method: string, params: unknown, id: RequestId = 1): JSONRPCMessage {
  return { jsonrpc: '2.0', id, method, params } as JSONRPCMessage;
}

function toolCall(name: string, args?: Record<string, unknown>, id: RequestId = 1): JSONRPCMessage {
  return req('tools/call', args === undefined ? { name } : { name, arguments: args }, id);
}

function textResult(id: RequestId, text: string, extra: Record<string, unknown> = {}): JSONRPCMessage {
  return { jsonrpc: '2.0', id, result: { content: [{ type: 'text', text }], ...extra } } as JSONRPCMessage;
}

/** The JSON-RPC error of a `{reply}` result. */
function replyError(result: InboundResult): { id: RequestId; code: number; message: string; data: Record<string, unknown> } {
  expect(result).toHaveProperty('reply');
  const reply = (result as { reply: { id: RequestId; error: { code: number; message: string; data: Record<string, unknown> } } }).reply;
  expect(reply).toMatchObject({ jsonrpc: '2.0' });
  return { id: reply.id, ...reply.error };
}

const argDigest = (args: unknown) => {
  const text = JSON.stringify(args ?? {});
  return { argBytes: Buffer.byteLength(text), argHash: createHash('sha256').update(text).digest('hex').slice(0, 32) };
};

let limiterStore: LimiterStore;
beforeAll(async () => {
  limiterStore = await createLimiterStore();
});
afterAll(async () => {
  await limiterStore.close();
});

describe('inbound decisions', () => {
  const p = policy({
    default: 'deny',
    tools: { allow: ['echo', 'send'] },
    resources: { allow: ['file:///public/*'] },
    prompts: { allow: ['greet'] },
    arguments: { send: { additionalArgs: false, args: { to: { required: true } } } },
  });

  it('a denied tools/call is answered with the same id and the policy_denied error', () => {
    const { guard, audit } = makeGuard({ policy: p });
    const error = replyError(guard.inbound(toolCall('rm_rf', { path: '/' }, 'req-7')) as InboundResult);
    expect(error).toEqual({
      id: 'req-7',
      code: ERROR_TABLE.policy_denied.rpc,
      message: 'denied by policy: tool_denied',
      data: { code: 'policy_denied', reason: 'tool_denied', rule: 'policy.default', name: 'rm_rf' },
    });
    expect(audit.records).toEqual([
      {
        event: 'tool_call',
        fields: {
          clientId: 'app-1',
          role: 'user',
          command: 'sms',
          session: 'sess-tag',
          era: 'legacy',
          tool: 'rm_rf',
          ...argDigest({ path: '/' }),
          decision: 'denied',
          rule: 'policy.default',
          reason: 'tool_denied',
          detail: undefined,
        },
      },
    ]);
  });

  it('keeps numeric ids, including 0', () => {
    const { guard } = makeGuard({ policy: p });
    expect(replyError(guard.inbound(toolCall('nope', {}, 0)) as InboundResult).id).toBe(0);
    expect(replyError(guard.inbound(toolCall('nope', {}, 42)) as InboundResult).id).toBe(42);
  });

  it('an argument rule denial carries reason, rule and detail', () => {
    const { guard, audit } = makeGuard({ policy: p });
    const error = replyError(guard.inbound(toolCall('send', { to: '+1', cc: '+2' })) as InboundResult);
    expect(error.code).toBe(ERROR_TABLE.policy_denied.rpc);
    expect(error.message).toBe('denied by policy: argument "cc" is not allowed');
    expect(error.data).toEqual({ code: 'policy_denied', reason: 'argument_rule', rule: 'policy.arguments["send"].additionalArgs', name: 'send' });
    expect(audit.toolCalls()[0]).toMatchObject({ decision: 'denied', reason: 'argument_rule', detail: 'argument "cc" is not allowed' });
  });

  it('a malformed tools/call is denied without echoing a target', () => {
    const { guard, audit } = makeGuard({ policy: p });
    const error = replyError(guard.inbound(req('tools/call', ['echo'], 5)) as InboundResult);
    expect(error).toMatchObject({ id: 5, code: ERROR_TABLE.policy_denied.rpc });
    expect(error.data).toEqual({ code: 'policy_denied', reason: 'malformed_request', rule: 'shape' });
    expect(audit.toolCalls()[0]).toMatchObject({ decision: 'denied', reason: 'malformed_request', tool: undefined });
  });

  it('a denied resources/read carries the uri and is audited as access', () => {
    const { guard, audit } = makeGuard({ policy: p });
    const error = replyError(guard.inbound(req('resources/read', { uri: 'file:///etc/shadow' }, 3)) as InboundResult);
    expect(error.data).toEqual({ code: 'policy_denied', reason: 'resource_denied', rule: 'policy.default', uri: 'file:///etc/shadow' });
    expect(audit.records).toEqual([
      {
        event: 'access',
        fields: expect.objectContaining({ method: 'resources/read', target: 'file:///etc/shadow', decision: 'denied', rule: 'policy.default', role: 'user' }),
      },
    ]);
  });

  it('a denied prompts/get carries the name', () => {
    const { guard, audit } = makeGuard({ policy: p });
    expect(replyError(guard.inbound(req('prompts/get', { name: 'jailbreak' })) as InboundResult).data).toMatchObject({
      reason: 'prompt_denied',
      name: 'jailbreak',
    });
    expect(audit.records[0]).toMatchObject({ event: 'access', fields: { method: 'prompts/get', target: 'jailbreak', decision: 'denied' } });
  });

  it('allowed resources/read and prompts/get are forwarded without audit', () => {
    const { guard, audit } = makeGuard({ policy: p });
    expect(guard.inbound(req('resources/read', { uri: 'file:///public/a' }))).toBe(FORWARD);
    expect(guard.inbound(req('prompts/get', { name: 'greet' }))).toBe(FORWARD);
    expect(audit.records).toEqual([]);
  });

  it('an allowed tools/call is forwarded and audited once its response arrives', () => {
    const { guard, audit } = makeGuard({ policy: p });
    expect(guard.inbound(toolCall('echo', { text: 'hi' }, 9))).toBe(FORWARD);
    expect(audit.records).toEqual([]);
    const response = textResult(9, 'hi');
    expect(guard.outbound(response, 'tools/call')).toBe(response);
    const [record] = audit.toolCalls();
    expect(record).toMatchObject({ decision: 'allowed', rule: 'policy.tools.allow "echo"', tool: 'echo', isError: false, redactions: 0, session: 'sess-tag' });
    expect(record?.['latencyMs']).toEqual(expect.any(Number));
    expect(record?.['latencyMs']).toBeGreaterThanOrEqual(0);
    expect(record).not.toHaveProperty('arguments');
  });

  it('marks isError for an error response and for a result with isError', () => {
    const { guard, audit } = makeGuard({ policy: p });
    void guard.inbound(toolCall('echo', {}, 1));
    void guard.inbound(toolCall('echo', {}, 2));
    guard.outbound({ jsonrpc: '2.0', id: 1, error: { code: -32603, message: 'boom' } } as JSONRPCMessage, 'tools/call');
    guard.outbound(textResult(2, 'failed', { isError: true }), 'tools/call');
    expect(audit.toolCalls().map((r) => r['isError'])).toEqual([true, true]);
  });

  it('non-guarded requests, notifications and responses pass', () => {
    const { guard, audit } = makeGuard({ policy: p });
    expect(guard.inbound(req('tools/list', {}))).toBe(FORWARD);
    expect(guard.inbound(req('ping', undefined))).toBe(FORWARD);
    expect(guard.inbound({ jsonrpc: '2.0', method: 'notifications/initialized' } as JSONRPCMessage)).toBe(FORWARD);
    expect(guard.inbound({ jsonrpc: '2.0', id: 1, result: {} } as JSONRPCMessage)).toBe(FORWARD);
    expect(audit.records).toEqual([]);
  });

  it('reads the current policy on every decision (hot reload reaches open sessions)', () => {
    let current = policy({ default: 'allow' });
    const { guard } = makeGuard({ getPolicy: () => current });
    expect(guard.inbound(toolCall('echo', {}, 1))).toBe(FORWARD);
    current = policy({ default: 'deny' });
    expect(replyError(guard.inbound(toolCall('echo', {}, 2)) as InboundResult).data['rule']).toBe('policy.default');
  });
});

describe('shadow mode', () => {
  const p = policy({ mode: 'shadow', default: 'deny', tools: { allow: ['echo'] }, resources: { allow: ['file:///ok'] } });

  it('forwards a denied tools/call and audits it as shadow-denied when answered', () => {
    const { guard, audit } = makeGuard({ policy: p });
    expect(guard.inbound(toolCall('rm_rf', { a: 1 }, 4))).toBe(FORWARD);
    expect(audit.records).toEqual([]);
    guard.outbound(textResult(4, 'done'), 'tools/call');
    expect(audit.toolCalls()).toEqual([
      expect.objectContaining({ decision: 'shadow-denied', rule: 'policy.default', reason: 'tool_denied', tool: 'rm_rf', isError: false }),
    ]);
  });

  it('forwards a denied resources/read and audits the access at once', () => {
    const { guard, audit } = makeGuard({ policy: p });
    expect(guard.inbound(req('resources/read', { uri: 'file:///secret' }))).toBe(FORWARD);
    expect(audit.records).toEqual([{ event: 'access', fields: expect.objectContaining({ decision: 'shadow-denied', target: 'file:///secret' }) }]);
  });

  it('does not filter lists, but still counts what would be hidden', () => {
    const { guard, stats } = makeGuard({ policy: p });
    void guard.inbound(req('tools/list', {}, 8));
    const list = { jsonrpc: '2.0', id: 8, result: { tools: [{ name: 'echo' }, { name: 'rm_rf' }] } } as JSONRPCMessage;
    expect(guard.outbound(list, 'tools/list')).toBe(list);
    expect(stats.forCommand('sms')['user']).toMatchObject({ allowed: 1, denied: 1 });
  });
});

describe('outbound list filtering', () => {
  const p = policy({
    default: 'deny',
    tools: { allow: ['post_sms_1_preview', 'post_sms_3_messages'] },
    resources: { allow: ['file:///public/*'] },
    prompts: { allow: ['greet'] },
    roles: { admin: { default: 'allow' } },
  });
  const tools = ['post_sms_1_preview', 'post_sms_2_send', 'post_sms_3_messages', 'delete_sms_6_message'].map((name) => ({
    name,
    inputSchema: { type: 'object' },
  }));
  const toolsList = (id: RequestId) => ({ jsonrpc: '2.0', id, result: { tools, nextCursor: 'page-2', _meta: { m: 1 } } }) as JSONRPCMessage;

  it('tools/list keeps only allowed tools, nextCursor and the other fields', () => {
    const { guard, stats } = makeGuard({ policy: p });
    const input = toolsList(1);
    const out = guard.outbound(input, 'tools/list') as unknown as { id: RequestId; result: { tools: { name: string }[]; nextCursor: string; _meta: unknown } };
    expect(out.id).toBe(1);
    expect(out.result.tools.map((t) => t.name)).toEqual(['post_sms_1_preview', 'post_sms_3_messages']);
    expect(out.result.nextCursor).toBe('page-2');
    expect(out.result._meta).toEqual({ m: 1 });
    expect(out.result.tools[0]).toBe(tools[0]); // items themselves untouched
    expect((input as unknown as { result: { tools: unknown[] } }).result.tools).toHaveLength(4); // input not mutated
    expect(stats.forCommand('sms')).toEqual({ user: { allowed: 2, denied: 2, at: expect.any(String) } });
    expect(stats.forCommand('other')).toEqual({});
  });

  it('returns the same message when nothing is hidden, and records stats per role', () => {
    const stats = new PolicyStats();
    const { guard } = makeGuard({ policy: p, stats, principal: { clientId: 'ops', role: 'admin' } });
    const input = toolsList(2);
    expect(guard.outbound(input, 'tools/list')).toBe(input);
    makeGuard({ policy: p, stats }).guard.outbound(toolsList(3), 'tools/list');
    expect(stats.forCommand('sms')).toEqual({
      admin: { allowed: 4, denied: 0, at: expect.any(String) },
      user: { allowed: 2, denied: 2, at: expect.any(String) },
    });
  });

  it('drops items whose name is not a string', () => {
    const { guard } = makeGuard({ policy: policy({}) });
    const out = guard.outbound({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'ok' }, { name: 5 }, null, 'x', {}] } } as JSONRPCMessage, 'tools/list');
    expect((out as unknown as { result: { tools: unknown[] } }).result.tools).toEqual([{ name: 'ok' }]);
  });

  it('resources/list is filtered by uri, prompts/list by name', () => {
    const { guard, stats } = makeGuard({ policy: p });
    const resources = guard.outbound(
      {
        jsonrpc: '2.0',
        id: 1,
        result: {
          resources: [
            { uri: 'file:///public/a', name: 'secret' },
            { uri: 'file:///etc/passwd', name: 'public' },
          ],
          nextCursor: 'c2',
        },
      } as JSONRPCMessage,
      'resources/list',
    ) as unknown as { result: { resources: { uri: string }[]; nextCursor: string } };
    expect(resources.result).toEqual({ resources: [{ uri: 'file:///public/a', name: 'secret' }], nextCursor: 'c2' });
    const prompts = guard.outbound(
      { jsonrpc: '2.0', id: 2, result: { prompts: [{ name: 'greet' }, { name: 'jailbreak' }] } } as JSONRPCMessage,
      'prompts/list',
    ) as unknown as { result: { prompts: { name: string }[] } };
    expect(prompts.result.prompts).toEqual([{ name: 'greet' }]);
    // only tool lists feed the stats
    expect(stats.forCommand('sms')).toEqual({});
  });

  it('leaves errors, malformed results and unrelated responses alone', () => {
    const { guard } = makeGuard({ policy: p });
    const error = { jsonrpc: '2.0', id: 1, error: { code: -1, message: 'x' } } as JSONRPCMessage;
    expect(guard.outbound(error, 'tools/list')).toBe(error);
    const odd = { jsonrpc: '2.0', id: 1, result: { tools: 'not a list' } } as JSONRPCMessage;
    expect(guard.outbound(odd, 'tools/list')).toBe(odd);
    const other = { jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'delete_x' }] } } as JSONRPCMessage;
    expect(guard.outbound(other, 'completion/complete')).toBe(other);
    expect(guard.outbound(other, undefined)).toBe(other);
  });
});

describe('redaction and audit fields', () => {
  it('redacts a tools/call result and audits the count, digest and no arguments', () => {
    const p = policy({});
    const { guard, audit } = makeGuard({ policy: p });
    const args = { profile: 'prod', note: 'é' };
    void guard.inbound(toolCall('get_credentials', args, 11));
    const out = guard.outbound(textResult(11, `key id: ${AWS_KEY_ID} (rotate soon)`), 'tools/call') as unknown as {
      id: RequestId;
      result: { content: { text: string }[] };
    };
    expect(out.id).toBe(11);
    expect(out.result.content[0]?.text).toBe('key id: [REDACTED:aws-access-key-id] (rotate soon)');
    expect(JSON.stringify(out)).not.toContain(AWS_KEY_ID);
    const [record] = audit.toolCalls();
    expect(record).toMatchObject({ redactions: 1, isError: false, decision: 'allowed', tool: 'get_credentials', ...argDigest(args) });
    expect(record?.['argBytes']).toBe(Buffer.byteLength(JSON.stringify(args)));
    expect(record?.['argHash']).toMatch(/^[0-9a-f]{32}$/);
    expect(record?.['latencyMs']).toEqual(expect.any(Number));
    expect(record).not.toHaveProperty('arguments');
    expect(JSON.stringify(record)).not.toContain('prod');
  });

  it('audits an empty-argument digest when arguments are absent', () => {
    const { guard, audit } = makeGuard({ policy: policy({}) });
    void guard.inbound(toolCall('t', undefined, 1));
    guard.outbound(textResult(1, 'x'), 'tools/call');
    expect(audit.toolCalls()[0]).toMatchObject(argDigest({}));
  });

  it('includes the arguments only with audit.includeArguments', () => {
    const { guard, audit } = makeGuard({ policy: policy({ audit: { includeArguments: true } }) });
    void guard.inbound(toolCall('t', { a: [1, 2] }, 1));
    guard.outbound(textResult(1, 'x'), 'tools/call');
    expect(audit.toolCalls()[0]?.['arguments']).toEqual({ a: [1, 2] });
    // denied calls too
    const denied = makeGuard({ policy: policy({ default: 'deny', audit: { includeArguments: true } }) });
    void denied.guard.inbound(toolCall('t', { b: 1 }, 2));
    expect(denied.audit.toolCalls()[0]).toMatchObject({ decision: 'denied', arguments: { b: 1 } });
  });

  it('exceptTools turns redaction off for matching tools only', () => {
    const p = policy({ redaction: { exceptTools: ['read_env', 'vault_*'] } });
    const { guard, audit } = makeGuard({ policy: p });
    void guard.inbound(toolCall('read_env', {}, 1));
    void guard.inbound(toolCall('vault_get', {}, 2));
    void guard.inbound(toolCall('read_envx', {}, 3));
    const raw = textResult(1, AWS_KEY_ID);
    expect(guard.outbound(raw, 'tools/call')).toBe(raw);
    expect(JSON.stringify(guard.outbound(textResult(2, AWS_KEY_ID), 'tools/call'))).toContain(AWS_KEY_ID);
    expect(JSON.stringify(guard.outbound(textResult(3, AWS_KEY_ID), 'tools/call'))).not.toContain(AWS_KEY_ID);
    expect(audit.toolCalls().map((r) => r['redactions'])).toEqual([0, 0, 1]);
  });

  it('redaction.enabled false passes results through', () => {
    const { guard, audit } = makeGuard({ policy: policy({ redaction: { enabled: false } }) });
    void guard.inbound(toolCall('t', {}, 1));
    const raw = textResult(1, AWS_KEY_ID);
    expect(guard.outbound(raw, 'tools/call')).toBe(raw);
    expect(audit.toolCalls()[0]?.['redactions']).toBe(0);
  });

  it('applies the policy custom patterns (the example internal-host detector)', () => {
    const p = policy({ redaction: { patterns: [{ name: 'internal-host', regex: '[a-z0-9-]+\\.corp\\.example' }] } });
    const { guard, audit } = makeGuard({ policy: p });
    void guard.inbound(toolCall('t', {}, 1));
    const out = guard.outbound(textResult(1, `db1.corp.example and ${AWS_KEY_ID}`), 'tools/call');
    expect(JSON.stringify(out)).toContain('[REDACTED:internal-host] and [REDACTED:aws-access-key-id]');
    expect(audit.toolCalls()[0]?.['redactions']).toBe(2);
  });

  it('redacts resources/read results without an audit record', () => {
    const { guard, audit } = makeGuard({ policy: policy({}) });
    void guard.inbound(req('resources/read', { uri: 'file:///public/env' }, 5));
    const out = guard.outbound(
      { jsonrpc: '2.0', id: 5, result: { contents: [{ uri: 'file:///public/env', text: `AWS_ACCESS_KEY_ID=${AWS_KEY_ID}` }] } } as JSONRPCMessage,
      'resources/read',
    );
    expect(JSON.stringify(out)).toContain('AWS_ACCESS_KEY_ID=[REDACTED:aws-access-key-id]');
    expect(audit.records).toEqual([]);
  });

  it('redacts structuredContent too', () => {
    const { guard } = makeGuard({ policy: policy({}) });
    void guard.inbound(toolCall('t', {}, 1));
    const out = guard.outbound(textResult(1, 'ok', { structuredContent: { creds: { id: AWS_KEY_ID } } }), 'tools/call');
    expect(JSON.stringify(out)).not.toContain(AWS_KEY_ID);
  });
});

describe('tool rate limits', () => {
  const limited = (extra: Record<string, unknown> = {}) => policy({ rateLimits: { echo: { calls: 2, perSeconds: 60, ...extra } } });

  it('the third call within the window is answered with rate_limited and audited', async () => {
    const toolLimits = new ToolRateLimits(limiterStore);
    const { guard, audit } = makeGuard({ policy: limited(), toolLimits, commandKey: 'rl-1' });
    expect(await guard.inbound(toolCall('echo', {}, 1))).toBe(FORWARD);
    expect(await guard.inbound(toolCall('echo', {}, 2))).toBe(FORWARD);
    const third = guard.inbound(toolCall('echo', { n: 3 }, 3));
    expect(third).toBeInstanceOf(Promise);
    const error = replyError(await third);
    expect(error.id).toBe(3);
    expect(error.code).toBe(ERROR_TABLE.rate_limited.rpc);
    expect(error.message).toMatch(/^rate limit reached for tool echo; retry in \d+ s$/);
    expect(error.data).toMatchObject({ code: 'rate_limited', reason: 'rate_limited', rule: 'policy.rateLimits "echo"', name: 'echo' });
    expect(error.data['retryAfterMs']).toBeGreaterThan(0);
    expect(error.data['retryAfterMs']).toBeLessThanOrEqual(60_000);
    expect(audit.toolCalls()).toEqual([
      expect.objectContaining({
        decision: 'rate-limited',
        rule: 'policy.rateLimits "echo"',
        tool: 'echo',
        retryAfterMs: error.data['retryAfterMs'],
        ...argDigest({ n: 3 }),
      }),
    ]);
  });

  it('a tool without a limit is decided synchronously and not counted', async () => {
    const toolLimits = new ToolRateLimits(limiterStore);
    const { guard } = makeGuard({ policy: limited(), toolLimits, commandKey: 'rl-2' });
    for (let i = 0; i < 5; i += 1) expect(guard.inbound(toolCall('other', {}, i))).toBe(FORWARD);
    expect(await guard.inbound(toolCall('echo', {}, 10))).toBe(FORWARD);
  });

  it('a denied call does not use up the budget', async () => {
    const toolLimits = new ToolRateLimits(limiterStore);
    const p = policy({ rateLimits: { echo: { calls: 1, perSeconds: 60 } }, arguments: { echo: { additionalArgs: false } } });
    const { guard } = makeGuard({ policy: p, toolLimits, commandKey: 'rl-3' });
    for (let i = 0; i < 3; i += 1) expect(replyError(guard.inbound(toolCall('echo', { x: 1 }, i)) as InboundResult).data['reason']).toBe('argument_rule');
    expect(await guard.inbound(toolCall('echo', {}, 9))).toBe(FORWARD);
  });

  it('by default each client has its own budget', async () => {
    const toolLimits = new ToolRateLimits(limiterStore);
    const a = makeGuard({ policy: limited(), toolLimits, commandKey: 'rl-4', principal: { clientId: 'a', role: 'user' } }).guard;
    const b = makeGuard({ policy: limited(), toolLimits, commandKey: 'rl-4', principal: { clientId: 'b', role: 'user' } }).guard;
    expect(await a.inbound(toolCall('echo', {}, 1))).toBe(FORWARD);
    expect(await a.inbound(toolCall('echo', {}, 2))).toBe(FORWARD);
    expect(await b.inbound(toolCall('echo', {}, 1))).toBe(FORWARD);
    expect(await b.inbound(toolCall('echo', {}, 2))).toBe(FORWARD);
    expect(replyError(await a.inbound(toolCall('echo', {}, 3))).code).toBe(ERROR_TABLE.rate_limited.rpc);
    expect(replyError(await b.inbound(toolCall('echo', {}, 3))).code).toBe(ERROR_TABLE.rate_limited.rpc);
  });

  it("per: 'role' shares one budget across the role's clients, not across roles", async () => {
    const toolLimits = new ToolRateLimits(limiterStore);
    const p = limited({ per: 'role' });
    const a = makeGuard({ policy: p, toolLimits, commandKey: 'rl-5', principal: { clientId: 'a', role: 'user' } }).guard;
    const b = makeGuard({ policy: p, toolLimits, commandKey: 'rl-5', principal: { clientId: 'b', role: 'user' } }).guard;
    const admin = makeGuard({ policy: p, toolLimits, commandKey: 'rl-5', principal: { clientId: 'c', role: 'admin' } }).guard;
    expect(await a.inbound(toolCall('echo', {}, 1))).toBe(FORWARD);
    expect(await b.inbound(toolCall('echo', {}, 1))).toBe(FORWARD);
    expect(replyError(await b.inbound(toolCall('echo', {}, 2))).code).toBe(ERROR_TABLE.rate_limited.rpc);
    expect(replyError(await a.inbound(toolCall('echo', {}, 2))).code).toBe(ERROR_TABLE.rate_limited.rpc);
    expect(await admin.inbound(toolCall('echo', {}, 1))).toBe(FORWARD);
  });

  it('budgets are per command key', async () => {
    const toolLimits = new ToolRateLimits(limiterStore);
    const p = policy({ rateLimits: { echo: { calls: 1, perSeconds: 60 } } });
    const one = makeGuard({ policy: p, toolLimits, commandKey: 'rl-6a' }).guard;
    const two = makeGuard({ policy: p, toolLimits, commandKey: 'rl-6b' }).guard;
    expect(await one.inbound(toolCall('echo', {}, 1))).toBe(FORWARD);
    expect(await two.inbound(toolCall('echo', {}, 1))).toBe(FORWARD);
    expect(replyError(await one.inbound(toolCall('echo', {}, 2))).code).toBe(ERROR_TABLE.rate_limited.rpc);
  });

  it('without toolLimits, rate limits are not applied', () => {
    const { guard } = makeGuard({ policy: policy({ rateLimits: { echo: { calls: 1, perSeconds: 60 } } }), commandKey: 'rl-7' });
    for (let i = 0; i < 3; i += 1) expect(guard.inbound(toolCall('echo', {}, i))).toBe(FORWARD);
  });

  it('an allowed, rate-limited call is audited as allowed once answered', async () => {
    const toolLimits = new ToolRateLimits(limiterStore);
    const { guard, audit } = makeGuard({ policy: limited(), toolLimits, commandKey: 'rl-8' });
    await guard.inbound(toolCall('echo', {}, 1));
    guard.outbound(textResult(1, 'x'), 'tools/call');
    expect(audit.toolCalls()).toEqual([expect.objectContaining({ decision: 'allowed', rule: 'implicit default (allow)' })]);
  });
});

describe('close()', () => {
  it('audits calls still open as "no response", once', () => {
    const { guard, audit } = makeGuard({ policy: policy({}) });
    void guard.inbound(toolCall('slow', { a: 1 }, 1));
    void guard.inbound(toolCall('fast', {}, 2));
    guard.outbound(textResult(2, 'ok'), 'tools/call');
    guard.close();
    guard.close();
    const calls = audit.toolCalls();
    expect(calls).toHaveLength(2);
    expect(calls[1]).toMatchObject({ tool: 'slow', decision: 'allowed', outcome: 'no response', ...argDigest({ a: 1 }) });
    expect(calls[1]?.['latencyMs']).toEqual(expect.any(Number));
    expect(calls[0]).not.toHaveProperty('outcome');
  });

  it('audits shadow-denied calls that were never answered', () => {
    const { guard, audit } = makeGuard({ policy: policy({ mode: 'shadow', default: 'deny' }) });
    void guard.inbound(toolCall('x', {}, 1));
    guard.close();
    expect(audit.toolCalls()).toEqual([expect.objectContaining({ decision: 'shadow-denied', outcome: 'no response' })]);
  });

  it('a response after close is not audited again', () => {
    const { guard, audit } = makeGuard({ policy: policy({}) });
    void guard.inbound(toolCall('x', {}, 1));
    guard.close();
    guard.outbound(textResult(1, 'late'), 'tools/call');
    expect(audit.toolCalls()).toHaveLength(1);
  });
});

describe('without a policy', () => {
  it('forwards everything and audits tool calls as allowed by "no policy"', () => {
    const { guard, audit, stats } = makeGuard({ policy: undefined });
    expect(guard.inbound(toolCall('delete_everything', { really: true }, 1))).toBe(FORWARD);
    expect(guard.inbound(req('resources/read', { uri: 'file:///etc/shadow' }, 2))).toBe(FORWARD);
    expect(guard.inbound(req('tools/call', ['malformed'], 3))).toBe(FORWARD);
    guard.outbound(textResult(1, 'done'), 'tools/call');
    expect(audit.toolCalls()[0]).toMatchObject({
      decision: 'allowed',
      rule: 'no policy',
      tool: 'delete_everything',
      isError: false,
      ...argDigest({ really: true }),
    });
    expect(audit.records.filter((r) => r.event === 'access')).toEqual([]);
    const list = { jsonrpc: '2.0', id: 4, result: { tools: [{ name: 'delete_everything' }] } } as JSONRPCMessage;
    expect(guard.outbound(list, 'tools/list')).toBe(list);
    expect(stats.forCommand('sms')).toEqual({});
  });

  it('still applies the built-in redaction', () => {
    const { guard, audit } = makeGuard({ policy: undefined });
    void guard.inbound(toolCall('env', {}, 1));
    const out = guard.outbound(textResult(1, AWS_KEY_ID), 'tools/call');
    expect(JSON.stringify(out)).toContain('[REDACTED:aws-access-key-id]');
    expect(audit.toolCalls()[0]?.['redactions']).toBe(1);
    const resource = guard.outbound({ jsonrpc: '2.0', id: 2, result: { contents: [{ uri: 'x', text: AWS_KEY_ID }] } } as JSONRPCMessage, 'resources/read');
    expect(JSON.stringify(resource)).not.toContain(AWS_KEY_ID);
  });
});

/**
 * Known gaps, each shown by a test that fails today (it.failing passes while the bug is
 * there). Remove `.failing` once fixed.
 */
describe('fixed gaps', () => {
  // README: "a guarded method sent as a notification — is denied". The engine denies it,
  // but PolicyGuard.inbound returns FORWARD for every message without an id before
  // consulting the engine, so the call reaches the child's stdin, unaudited.
  it('a tools/call sent as a notification does not reach the child', () => {
    const { guard, audit } = makeGuard({ policy: policy({ default: 'deny' }) });
    const notification = { jsonrpc: '2.0', method: 'tools/call', params: { name: 'delete_sms_6_message', arguments: { id: 'm1' } } } as JSONRPCMessage;
    expect(guard.inbound(notification)).not.toBe(FORWARD);
    expect(audit.toolCalls()).toEqual([expect.objectContaining({ decision: 'denied', reason: 'malformed_request' })]);
  });

  // README: shadow mode "blocks and filters nothing". A rate-limited tool is still refused.
  it('shadow mode does not block on a tool rate limit', async () => {
    const toolLimits = new ToolRateLimits(limiterStore);
    const p = policy({ mode: 'shadow', rateLimits: { echo: { calls: 1, perSeconds: 60 } } });
    const { guard } = makeGuard({ policy: p, toolLimits, commandKey: 'known-shadow' });
    expect(await guard.inbound(toolCall('echo', {}, 1))).toBe(FORWARD);
    expect(await guard.inbound(toolCall('echo', {}, 2))).toBe(FORWARD);
  });

  // A result nested deeper than redact's MAX_DEPTH makes outbound() throw (correctly: it
  // must not be forwarded unredacted), but the open call was already removed, so the
  // call never appears in the audit trail, not even at close().
  it('a tool call whose result cannot be redacted is answered with an error and audited', () => {
    const { guard, audit } = makeGuard({ policy: policy({}) });
    void guard.inbound(toolCall('deep', {}, 1));
    let nested: unknown = 'leaf';
    for (let i = 0; i < 600; i += 1) nested = { n: nested };
    const out = guard.outbound(textResult(1, 'x', { structuredContent: nested }), 'tools/call') as { id: number; error?: { code: number } };
    expect(out.id).toBe(1);
    expect(out.error?.code).toBe(ERROR_TABLE.upstream_protocol.rpc);
    expect(JSON.stringify(out)).not.toContain('leaf');
    guard.close();
    expect(audit.toolCalls()).toEqual([expect.objectContaining({ isError: true, outcome: 'result not checkable' })]);
  });
});

// ---------------------------------------------------------------------------------------
// Every string a child sends passes the same redaction
// ---------------------------------------------------------------------------------------

/** Assembled at runtime so secret scanners do not flag this file; the value is fake. */
const GITHUB_TOKEN = ['ghp', 'FAKEfakeTOKENtoken0123456789abcdefAB'].join('_');
const AWS_MARK = '[REDACTED:aws-access-key-id]';
const GH_MARK = '[REDACTED:github-token]';

function notification(method: string, params: unknown): JSONRPCMessage {
  return { jsonrpc: '2.0', method, params } as JSONRPCMessage;
}

/** Asserts no fake secret is left anywhere in `value`. */
function expectClean(value: unknown): void {
  const wire = JSON.stringify(value);
  expect(wire).not.toContain(AWS_KEY_ID);
  expect(wire).not.toContain(GITHUB_TOKEN);
}

describe('redaction of everything a child sends', () => {
  const p = policy({ redaction: { exceptTools: ['raw_*'] } });

  it('a tools/call JSON-RPC error: message and data, audited with the count', () => {
    const { guard, audit } = makeGuard({ policy: p });
    void guard.inbound(toolCall('deploy', {}, 1));
    const error = {
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32603, message: `auth failed for ${AWS_KEY_ID}`, data: { token: GITHUB_TOKEN, tries: [GITHUB_TOKEN, 2] } },
    } as JSONRPCMessage;
    const out = guard.outbound(error, 'tools/call') as unknown as { id: number; error: { code: number; message: string; data: unknown } };
    expect(out).toEqual({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32603, message: `auth failed for ${AWS_MARK}`, data: { token: GH_MARK, tries: [GH_MARK, 2] } },
    });
    expect(audit.toolCalls()).toEqual([expect.objectContaining({ tool: 'deploy', isError: true, redactions: 3 })]);
  });

  it('a JSON-RPC error of an exempt tool is still redacted (the exemption covers its result only)', () => {
    const { guard } = makeGuard({ policy: p });
    void guard.inbound(toolCall('raw_env', {}, 1));
    void guard.inbound(toolCall('raw_env', {}, 2));
    const error = { jsonrpc: '2.0', id: 1, error: { code: -1, message: AWS_KEY_ID, data: AWS_KEY_ID } } as JSONRPCMessage;
    expectClean(guard.outbound(error, 'tools/call'));
    expect(JSON.stringify(guard.outbound(textResult(2, AWS_KEY_ID), 'tools/call'))).toContain(AWS_KEY_ID);
  });

  it('a progress notification message', () => {
    const { guard } = makeGuard({ policy: p });
    const progress = notification('notifications/progress', { progressToken: 7, progress: 1, total: 2, message: `uploading with ${AWS_KEY_ID}` });
    expect(guard.outboundOther(progress)).toEqual(
      notification('notifications/progress', { progressToken: 7, progress: 1, total: 2, message: `uploading with ${AWS_MARK}` }),
    );
  });

  it.each([
    ['a string', `login ${GITHUB_TOKEN}`, `login ${GH_MARK}`],
    ['an object', { env: { AWS_ACCESS_KEY_ID: AWS_KEY_ID }, n: 1 }, { env: { AWS_ACCESS_KEY_ID: AWS_MARK }, n: 1 }],
    ['an array', [[GITHUB_TOKEN], { x: [AWS_KEY_ID] }], [[GH_MARK], { x: [AWS_MARK] }]],
  ])('a log notification whose data is %s', (_label, data, redacted) => {
    const { guard } = makeGuard({ policy: p });
    const out = guard.outboundOther(notification('notifications/message', { level: 'info', logger: 'srv', data }));
    expect(out).toEqual(notification('notifications/message', { level: 'info', logger: 'srv', data: redacted }));
  });

  it('tools/list: descriptions, titles and inputSchema text', () => {
    const { guard } = makeGuard({ policy: p });
    const tool = {
      name: 'deploy',
      title: `Deploy (${AWS_KEY_ID})`,
      description: `Uses ${GITHUB_TOKEN}`,
      inputSchema: { type: 'object', properties: { env: { type: 'string', description: `default ${AWS_KEY_ID}`, default: GITHUB_TOKEN } } },
      annotations: { title: GITHUB_TOKEN },
    };
    const out = guard.outbound({ jsonrpc: '2.0', id: 1, result: { tools: [tool] } } as JSONRPCMessage, 'tools/list') as unknown as {
      result: { tools: (typeof tool)[] };
    };
    expectClean(out);
    expect(out.result.tools[0]).toEqual({
      name: 'deploy',
      title: `Deploy (${AWS_MARK})`,
      description: `Uses ${GH_MARK}`,
      inputSchema: { type: 'object', properties: { env: { type: 'string', description: `default ${AWS_MARK}`, default: GH_MARK } } },
      annotations: { title: GH_MARK },
    });
  });

  it('resources/list and resources/templates/list descriptions', () => {
    const { guard } = makeGuard({ policy: p });
    const list = guard.outbound(
      { jsonrpc: '2.0', id: 1, result: { resources: [{ uri: 'file:///srv/a', name: 'a', description: AWS_KEY_ID }] } } as JSONRPCMessage,
      'resources/list',
    );
    expect(JSON.stringify(list)).toContain(`"description":"${AWS_MARK}"`);
    const templates = guard.outbound(
      { jsonrpc: '2.0', id: 2, result: { resourceTemplates: [{ uriTemplate: 'db://{id}', name: 't', description: GITHUB_TOKEN }] } } as JSONRPCMessage,
      'resources/templates/list',
    );
    expect(JSON.stringify(templates)).toContain(`"description":"${GH_MARK}"`);
  });

  it('a prompts/get result', () => {
    const { guard } = makeGuard({ policy: p });
    const prompt = {
      description: `Rotate ${AWS_KEY_ID}`,
      messages: [
        { role: 'user', content: { type: 'text', text: `my token is ${GITHUB_TOKEN}` } },
        { role: 'assistant', content: { type: 'resource', resource: { uri: 'file:///k', text: AWS_KEY_ID } } },
      ],
    };
    const out = guard.outbound({ jsonrpc: '2.0', id: 1, result: prompt } as JSONRPCMessage, 'prompts/get');
    expectClean(out);
    expect(JSON.stringify(out)).toContain(`my token is ${GH_MARK}`);
  });

  it('completion/complete values', () => {
    const { guard } = makeGuard({ policy: p });
    const out = guard.outbound(
      { jsonrpc: '2.0', id: 1, result: { completion: { values: ['dev', AWS_KEY_ID, `x ${GITHUB_TOKEN}`], total: 3 } } } as JSONRPCMessage,
      'completion/complete',
    ) as unknown as { result: { completion: { values: string[] } } };
    expect(out.result.completion.values).toEqual(['dev', AWS_MARK, `x ${GH_MARK}`]);
  });

  it('a server-to-client elicitation request; its id and method are left as they are', () => {
    const { guard } = makeGuard({ policy: p });
    const elicit = {
      jsonrpc: '2.0',
      id: 'srv-1',
      method: 'elicitation/create',
      params: { message: `Confirm ${AWS_KEY_ID}?`, requestedSchema: { type: 'object', properties: { ok: { type: 'boolean', description: GITHUB_TOKEN } } } },
    } as JSONRPCMessage;
    const out = guard.outboundOther(elicit) as unknown as { id: string; method: string; params: { message: string } };
    expectClean(out);
    expect(out.id).toBe('srv-1');
    expect(out.method).toBe('elicitation/create');
    expect(out.params.message).toBe(`Confirm ${AWS_MARK}?`);
  });

  it('a response the bridge could not match to a request, and the initialize instructions', () => {
    const { guard } = makeGuard({ policy: p });
    expectClean(guard.outbound(textResult(99, AWS_KEY_ID), undefined));
    const init = {
      jsonrpc: '2.0',
      id: 0,
      result: { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 's', version: '1' }, instructions: GITHUB_TOKEN },
    };
    expectClean(guard.outbound(init as JSONRPCMessage, 'initialize'));
  });

  it('without a policy file the built-in detectors apply to notifications too', () => {
    const { guard } = makeGuard({ policy: undefined });
    expectClean(guard.outboundOther(notification('notifications/message', { level: 'error', data: AWS_KEY_ID })));
  });

  it('redaction.enabled false passes notifications and errors through', () => {
    const { guard } = makeGuard({ policy: policy({ redaction: { enabled: false } }) });
    const log = notification('notifications/message', { level: 'error', data: AWS_KEY_ID });
    expect(guard.outboundOther(log)).toBe(log);
  });

  it('returns the same message when nothing matched (no copy on the hot path)', () => {
    const { guard } = makeGuard({ policy: p });
    const progress = notification('notifications/progress', { progressToken: 't', progress: 1, message: 'half way' });
    expect(guard.outboundOther(progress)).toBe(progress);
    const list = { jsonrpc: '2.0', id: 1, result: { prompts: [{ name: 'greet', description: 'hello' }] } } as JSONRPCMessage;
    expect(guard.outbound(list, 'prompts/list')).toBe(list);
  });

  it('object keys are left alone', () => {
    const { guard } = makeGuard({ policy: p });
    const out = guard.outboundOther(notification('notifications/message', { level: 'info', data: { [AWS_KEY_ID]: 1 } }));
    expect(out).toEqual(notification('notifications/message', { level: 'info', data: { [AWS_KEY_ID]: 1 } }));
  });

  it('too deep to check: a response becomes an error with its id, a notification is dropped', () => {
    const { guard } = makeGuard({ policy: p });
    let nested: unknown = AWS_KEY_ID;
    for (let i = 0; i < 600; i += 1) nested = [nested];
    const error = guard.outbound({ jsonrpc: '2.0', id: 4, error: { code: -1, message: 'x', data: nested } } as JSONRPCMessage, 'prompts/get') as {
      id: number;
      error: { code: number };
    };
    expect(error.id).toBe(4);
    expect(error.error.code).toBe(ERROR_TABLE.upstream_protocol.rpc);
    expectClean(error);
    expect(guard.outboundOther(notification('notifications/message', { level: 'info', data: nested }))).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------
// Tasks (2025-11-25): tools/call with params.task, then tasks/get, tasks/result, ...
// ---------------------------------------------------------------------------------------

const TASK_TIME = { ttl: 60_000, createdAt: 'created', lastUpdatedAt: 'updated' };

function taskCall(name: string, id: RequestId): JSONRPCMessage {
  return req('tools/call', { name, arguments: {}, task: { ttl: 60_000 } }, id);
}

function taskCreated(id: RequestId, taskId: string, statusMessage = 'queued'): JSONRPCMessage {
  return { jsonrpc: '2.0', id, result: { task: { taskId, status: 'working', statusMessage, ...TASK_TIME } } } as JSONRPCMessage;
}

/** A session with a task `t-<tool>` created by a tools/call of each tool. */
function withTasks(setup: Setup, tools: string[]) {
  const made = makeGuard(setup);
  tools.forEach((tool, i) => {
    expect(made.guard.inbound(taskCall(tool, `call-${i}`))).toBe(FORWARD);
    made.guard.outbound(taskCreated(`call-${i}`, `t-${tool}`), 'tools/call');
  });
  return made;
}

describe('tasks', () => {
  const p = policy({ default: 'deny', tools: { allow: ['report', 'raw_dump'] }, redaction: { exceptTools: ['raw_*'] } });

  it('tasks/result is redacted as the tool result and audited as the call outcome', () => {
    const { guard, audit } = withTasks({ policy: p }, ['report']);
    expect(audit.toolCalls()).toEqual([]); // the outcome is not known yet
    expect(guard.inbound(req('tasks/result', { taskId: 't-report' }, 'r1'))).toBe(FORWARD);
    const out = guard.outbound(textResult('r1', `key ${AWS_KEY_ID}`, { structuredContent: { blob: GITHUB_TOKEN } }), 'tasks/result');
    expectClean(out);
    expect(JSON.stringify(out)).toContain(`key ${AWS_MARK}`);
    expect(audit.toolCalls()).toEqual([
      expect.objectContaining({ tool: 'report', decision: 'allowed', task: true, isError: false, redactions: 2, ...argDigest({}) }),
    ]);
    // fetched again: redacted again, audited once
    expectClean(guard.outbound((guard.inbound(req('tasks/result', { taskId: 't-report' }, 'r2')), textResult('r2', AWS_KEY_ID)), 'tasks/result'));
    guard.close();
    expect(audit.toolCalls()).toHaveLength(1);
  });

  it('the CreateTaskResult itself passes the one rule', () => {
    const { guard } = makeGuard({ policy: p });
    void guard.inbound(taskCall('raw_dump', 1));
    expectClean(guard.outbound(taskCreated(1, 't-1', `waiting on ${AWS_KEY_ID}`), 'tools/call'));
  });

  it("tasks/result of an exempt tool's task is not redacted", () => {
    const { guard, audit } = withTasks({ policy: p }, ['raw_dump']);
    void guard.inbound(req('tasks/result', { taskId: 't-raw_dump' }, 'r1'));
    const raw = textResult('r1', AWS_KEY_ID);
    expect(guard.outbound(raw, 'tasks/result')).toBe(raw);
    expect(audit.toolCalls()).toEqual([expect.objectContaining({ tool: 'raw_dump', redactions: 0 })]);
  });

  it('a JSON-RPC error from tasks/result is redacted and audited as isError', () => {
    const { guard, audit } = withTasks({ policy: p }, ['report']);
    void guard.inbound(req('tasks/result', { taskId: 't-report' }, 'r1'));
    expectClean(guard.outbound({ jsonrpc: '2.0', id: 'r1', error: { code: -1, message: `failed: ${AWS_KEY_ID}` } } as JSONRPCMessage, 'tasks/result'));
    expect(audit.toolCalls()).toEqual([expect.objectContaining({ tool: 'report', task: true, isError: true, redactions: 1 })]);
  });

  it.each(['tasks/get', 'tasks/result', 'tasks/cancel'])('%s of a task this session never saw created is denied and not forwarded', (method) => {
    const { guard, audit } = withTasks({ policy: p }, ['report']);
    const error = replyError(guard.inbound(req(method, { taskId: 'someone-elses' }, 'q')) as InboundResult);
    expect(error).toEqual({
      id: 'q',
      code: ERROR_TABLE.policy_denied.rpc,
      message: 'denied by policy: unknown task',
      data: { code: 'policy_denied', reason: 'unknown_task', rule: 'session tasks' },
    });
    expect(JSON.stringify(error)).not.toContain('someone-elses');
    expect(audit.records.at(-1)).toMatchObject({ event: 'access', fields: { method, decision: 'denied', reason: 'unknown_task' } });
  });

  it('unknown tasks are refused without a policy file and in shadow mode too', () => {
    for (const setup of [{ policy: undefined }, { policy: policy({ mode: 'shadow', default: 'deny' }) }]) {
      const { guard } = makeGuard(setup);
      expect(replyError(guard.inbound(req('tasks/result', { taskId: 'x' }, 1)) as InboundResult).data).toMatchObject({ reason: 'unknown_task' });
    }
  });

  it('a tasks/* request without a usable taskId is malformed; sent as a notification it is dropped', () => {
    const { guard } = makeGuard({ policy: p });
    for (const params of [{}, { taskId: 7 }, { taskId: '' }, null]) {
      expect(replyError(guard.inbound(req('tasks/get', params, 1)) as InboundResult).data).toMatchObject({ reason: 'malformed_request' });
    }
    expect(guard.inbound(notification('tasks/cancel', { taskId: 'x' }))).toEqual({ drop: true });
  });

  it("after a reload that denies the tool, the task's get, result and cancel are denied like the call", () => {
    let current = p;
    const { guard } = withTasks({ getPolicy: () => current }, ['report']);
    current = policy({ default: 'deny', tools: { allow: ['raw_dump'] } });
    for (const method of ['tasks/get', 'tasks/result', 'tasks/cancel']) {
      expect(replyError(guard.inbound(req(method, { taskId: 't-report' }, 1)) as InboundResult)).toMatchObject({
        code: ERROR_TABLE.policy_denied.rpc,
        data: { code: 'policy_denied', reason: 'tool_denied', rule: 'policy.default', name: 'report' },
      });
    }
    // allowed again: forwarded
    current = p;
    expect(guard.inbound(req('tasks/get', { taskId: 't-report' }, 2))).toBe(FORWARD);
  });

  it('tasks/list keeps only this session’s tasks whose tool is still allowed, redacted', () => {
    let current = p;
    const { guard } = withTasks({ getPolicy: () => current }, ['report', 'raw_dump']);
    const task = (taskId: string, statusMessage = 'ok') => ({ taskId, status: 'working', statusMessage, ...TASK_TIME });
    const list = {
      jsonrpc: '2.0',
      id: 5,
      result: { tasks: [task('t-report', `using ${AWS_KEY_ID}`), task('foreign-1'), task('t-raw_dump'), 'junk', task('foreign-2')], nextCursor: 'n' },
    } as JSONRPCMessage;
    const ids = (m: JSONRPCMessage) => (m as unknown as { result: { tasks: { taskId: string }[] } }).result.tasks.map((t) => t.taskId);
    const out = guard.outbound(list, 'tasks/list');
    expect(ids(out)).toEqual(['t-report', 't-raw_dump']);
    expect((out as unknown as { result: { nextCursor: string } }).result.nextCursor).toBe('n');
    expectClean(out);
    current = policy({ default: 'deny', tools: { allow: ['raw_dump'] } });
    expect(ids(guard.outbound(list, 'tasks/list'))).toEqual(['t-raw_dump']);
  });

  it('a task status notification is delivered (redacted) for own visible tasks only', () => {
    let current = p;
    const { guard } = withTasks({ getPolicy: () => current }, ['report']);
    const status = (taskId: string) =>
      notification('notifications/tasks/status', { taskId, status: 'working', statusMessage: `at ${AWS_KEY_ID}`, ...TASK_TIME });
    const own = guard.outboundOther(status('t-report'));
    expect(own).toBeDefined();
    expectClean(own);
    expect(guard.outboundOther(status('foreign'))).toBeUndefined();
    current = policy({ default: 'deny' });
    expect(guard.outboundOther(status('t-report'))).toBeUndefined();
  });

  it('shadow mode forwards a task of a denied tool and audits it as shadow-denied', () => {
    const { guard, audit } = withTasks({ policy: policy({ mode: 'shadow', default: 'deny' }) }, ['report']);
    expect(guard.inbound(req('tasks/result', { taskId: 't-report' }, 1))).toBe(FORWARD);
    expect(audit.records.at(-1)).toMatchObject({ event: 'access', fields: { method: 'tasks/result', name: 'report', decision: 'shadow-denied' } });
  });

  it('close() audits a task whose result was never fetched, once', () => {
    const { guard, audit } = withTasks({ policy: p }, ['report']);
    guard.close();
    guard.close();
    expect(audit.toolCalls()).toEqual([expect.objectContaining({ tool: 'report', task: true, outcome: 'no task result fetched' })]);
  });

  it('a tasks/result too deep to check is an error, audited as the call outcome', () => {
    const { guard, audit } = withTasks({ policy: p }, ['report']);
    void guard.inbound(req('tasks/result', { taskId: 't-report' }, 'r'));
    let nested: unknown = AWS_KEY_ID;
    for (let i = 0; i < 600; i += 1) nested = { n: nested };
    const out = guard.outbound(textResult('r', 'x', { structuredContent: nested }), 'tasks/result') as { error?: { code: number } };
    expect(out.error?.code).toBe(ERROR_TABLE.upstream_protocol.rpc);
    expect(audit.toolCalls()).toEqual([expect.objectContaining({ tool: 'report', task: true, isError: true, outcome: 'result not checkable' })]);
  });
});

describe('SessionTasks', () => {
  it('forgets the oldest task past its bound and hands it back', () => {
    const tasks = new SessionTasks(2);
    const call = (tool: string) => ({ tool, started: 0, fields: {}, audited: false });
    expect(tasks.add('a', call('a'))).toEqual([]);
    expect(tasks.add('b', call('b'))).toEqual([]);
    expect(tasks.add('c', call('c'))).toEqual([call('a')]);
    expect(tasks.get('a')).toBeUndefined();
    expect(tasks.get('c')?.tool).toBe('c');
    expect(tasks.drain().map((t) => t.tool)).toEqual(['b', 'c']);
  });
});
