/**
 * Applies the policy to one session's stream. Client -> child: guarded requests are
 * decided (and rate limited) before they can reach the child's stdin; a denial is
 * answered with a JSON-RPC error carrying the reason and the deciding rule. Child ->
 * client: every message passes the one redaction rule (redactMessage.ts); list results
 * are filtered for the session's role; tool results (also when fetched later through a
 * task) get the tool-result redaction unless the tool is exempt. Every tool call is
 * audited with its decision and outcome.
 */
import { createHash } from 'node:crypto';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { AuditRecorder } from '../audit/recorder.js';
import type { Principal } from '../auth/bearer.js';
import type { ToolRateLimits } from '../ratelimit/toolLimits.js';
import type { CompiledPolicy, Kind } from './compile.js';
import { decideName, decideUri, evaluate, rateLimitFor, type Verdict } from './engine.js';
import { matchesExact } from './glob.js';
import { redactToolResult } from './redact.js';
import { redactMessage, type Redacted, type ResultRedactor } from './redactMessage.js';
import { denial, DROP, FORWARD, type InboundResult } from './replies.js';
import type { PolicyStats } from './stats.js';
import { createdTaskId, TASK_REQUESTS, TaskGuard, taskIdParam } from './tasks.js';

export { DROP, FORWARD, type InboundResult } from './replies.js';

/** What the bridge asks of a guard. */
export interface MessageGuard {
  inbound(message: JSONRPCMessage): InboundResult | Promise<InboundResult>;
  /**
   * A response (result or error) from the child. `method` is the method of the client
   * request it answers, undefined when the bridge knows of none. Returns what to deliver:
   * the response, redacted and filtered, or an error with the same id in its place.
   */
  outbound(message: JSONRPCMessage, method: string | undefined): JSONRPCMessage;
  /**
   * Any other message from the child: a notification or a server-to-client request.
   * Returns what to deliver, redacted, or undefined: drop it (a status of a task this
   * session may not see, or a message too deep to check for secrets).
   */
  outboundOther(message: JSONRPCMessage): JSONRPCMessage | undefined;
  /** The session ended: calls still open, and tasks whose result was never fetched, are audited. */
  close(): void;
}

export interface GuardDeps {
  /** Current policy, read on every decision (hot reload applies to open sessions). */
  readonly policy: () => CompiledPolicy | undefined;
  /** Built-in redaction when no policy configures it. */
  readonly defaultRedaction: CompiledPolicy['redaction'];
  readonly toolLimits: ToolRateLimits | undefined;
  readonly audit: AuditRecorder;
  readonly stats: PolicyStats;
  /** Told of each decision on a guarded request (allowed, denied, rate-limited, shadow-denied). */
  readonly onDecision?: (outcome: string) => void;
}

export interface GuardContext {
  readonly principal: Principal;
  readonly commandKey: string;
  readonly clientKey: string;
  /** The session id's hash, once known. */
  readonly sessionTag: () => string | undefined;
  /** The protocol era the client speaks (`modern`: 2026-07-28). @default 'legacy' */
  readonly era?: 'legacy' | 'modern';
}

interface OpenCall {
  readonly tool: string;
  readonly started: number;
  readonly fields: Record<string, unknown>;
}

const LIST_FIELDS: Readonly<Record<string, { kind: Kind; field: string; key: string }>> = {
  'tools/list': { kind: 'tools', field: 'tools', key: 'name' },
  'resources/list': { kind: 'resources', field: 'resources', key: 'uri' },
  'prompts/list': { kind: 'prompts', field: 'prompts', key: 'name' },
};

/** Audit fields of a denial (shadow mode records it without blocking). */
function denyFields(verdict: Extract<Verdict, { action: 'deny' }>, policy: CompiledPolicy): Record<string, unknown> {
  return { decision: policy.mode === 'shadow' ? 'shadow-denied' : 'denied', rule: verdict.rule, reason: verdict.reason, detail: verdict.detail };
}

function argDigest(args: unknown): { argBytes: number; argHash: string } {
  const text = JSON.stringify(args ?? {});
  return { argBytes: Buffer.byteLength(text), argHash: createHash('sha256').update(text).digest('hex').slice(0, 32) };
}

export class PolicyGuard implements MessageGuard {
  private readonly open = new Map<RequestId, OpenCall>();
  private readonly tasks: TaskGuard;

  constructor(
    private readonly deps: GuardDeps,
    private readonly ctx: GuardContext,
  ) {
    this.tasks = new TaskGuard({
      policy: deps.policy,
      mayCall: (policy, tool) => decideName(policy, 'tools', tool, ctx.principal.role, ctx.commandKey),
      redactToolResponse: (message, tool) => this.redact(message, this.toolResult(tool)),
      access: (fields) => {
        this.deps.onDecision?.(String(fields['decision']));
        this.deps.audit.record('access', { ...this.baseFields(), ...fields });
      },
      toolCall: (fields) => this.deps.audit.record('tool_call', fields),
    });
  }

  inbound(message: JSONRPCMessage): InboundResult | Promise<InboundResult> {
    if (!('method' in message)) return FORWARD;
    const policy = this.deps.policy();
    if (TASK_REQUESTS.has(message.method)) return this.tasks.inbound(message);
    if (!('id' in message)) {
      // A guarded method sent as a notification can't be answered: the engine denies it and
      // it is dropped (and audited) rather than forwarded.
      if (!policy) return FORWARD;
      const verdict = evaluate(message, this.ctx.principal.role, this.ctx.commandKey, policy);
      if (verdict.action !== 'deny') return FORWARD;
      const fields = denyFields(verdict, policy);
      if (message.method === 'tools/call') this.auditCall(message.params, fields, policy);
      else this.auditAccess(message.method, verdict, fields);
      return policy.mode === 'shadow' ? FORWARD : DROP;
    }
    if (!policy) {
      if (message.method === 'tools/call') this.remember(message.id, message.params, { decision: 'allowed', rule: 'no policy' }, undefined);
      return FORWARD;
    }
    const verdict = evaluate(message, this.ctx.principal.role, this.ctx.commandKey, policy);
    if (verdict.action === 'pass') return FORWARD;
    const isTool = message.method === 'tools/call';
    if (verdict.action === 'deny') {
      const fields = denyFields(verdict, policy);
      if (policy.mode === 'shadow') {
        if (isTool) this.remember(message.id, message.params, fields, policy);
        else this.auditAccess(message.method, verdict, fields);
        return FORWARD;
      }
      if (isTool) this.auditCall(message.params, fields, policy);
      else this.auditAccess(message.method, verdict, fields);
      return {
        reply: denial(message.id, 'policy_denied', `denied by policy: ${verdict.detail ?? verdict.reason}`, {
          reason: verdict.reason,
          rule: verdict.rule,
          ...(verdict.target === undefined ? {} : { [verdict.kind === 'resources' ? 'uri' : 'name']: verdict.target }),
        }),
      };
    }
    if (!isTool) return FORWARD;
    const limit = this.deps.toolLimits && rateLimitFor(policy, verdict.target, this.ctx.principal.role, this.ctx.commandKey);
    if (!limit || !this.deps.toolLimits) {
      this.remember(message.id, message.params, { decision: 'allowed', rule: verdict.rule }, policy);
      return FORWARD;
    }
    const scope = limit.rule.per === 'role' ? `role:${this.ctx.principal.role}` : this.ctx.clientKey;
    return this.deps.toolLimits
      .consume(`${this.ctx.commandKey}\u0000${scope}`, verdict.target, { points: limit.rule.calls, durationSeconds: limit.rule.perSeconds })
      .then((decision): InboundResult => {
        if (decision.allowed) {
          this.remember(message.id, message.params, { decision: 'allowed', rule: verdict.rule }, policy);
          return FORWARD;
        }
        if (policy.mode === 'shadow') {
          this.remember(message.id, message.params, { decision: 'shadow-rate-limited', rule: limit.label }, policy);
          return FORWARD;
        }
        this.auditCall(message.params, { decision: 'rate-limited', rule: limit.label, retryAfterMs: decision.retryAfterMs }, policy);
        return {
          reply: denial(message.id, 'rate_limited', `rate limit reached for tool ${verdict.target}; retry in ${Math.ceil(decision.retryAfterMs / 1000)} s`, {
            reason: 'rate_limited',
            rule: limit.label,
            name: verdict.target,
            retryAfterMs: decision.retryAfterMs,
          }),
        };
      });
  }

  outbound(message: JSONRPCMessage, method: string | undefined): JSONRPCMessage {
    const id = 'id' in message ? (message.id ?? null) : null;
    try {
      if (method === 'tools/call') return this.finishCall(message, id);
      if (method === 'tasks/result') return this.tasks.result(message, id);
      if (method === 'tasks/list') return this.redact(this.tasks.filterList(message)).message;
      const list = method === undefined ? undefined : LIST_FIELDS[method];
      return this.redact(list ? this.filterList(message, list) : message).message;
    } catch (error) {
      // Too deep (or cyclic) to check for secrets: never forwarded unchecked.
      return denial(id as RequestId, 'upstream_protocol', 'the response could not be checked for secrets', { reason: (error as Error).name });
    }
  }

  outboundOther(message: JSONRPCMessage): JSONRPCMessage | undefined {
    if ('method' in message && message.method === 'notifications/tasks/status' && !this.tasks.visible(taskIdParam(message.params))) return undefined;
    try {
      return this.redact(message).message;
    } catch {
      return undefined; // too deep to check: dropped, never forwarded unchecked
    }
  }

  close(): void {
    const now = Date.now();
    for (const [, call] of this.open) this.deps.audit.record('tool_call', { ...call.fields, outcome: 'no response', latencyMs: now - call.started });
    this.open.clear();
    this.tasks.close();
  }

  /** The one redaction rule over the whole message; `forResult` for a tool's result. */
  private redact(message: JSONRPCMessage, forResult?: ResultRedactor): Redacted {
    const redaction = this.redaction();
    if (!redaction) return { message, count: 0 };
    return redactMessage(message, redaction.detectors, forResult);
  }

  private redaction(): CompiledPolicy['redaction'] {
    const policy = this.deps.policy();
    return policy ? policy.redaction : this.deps.defaultRedaction;
  }

  /** How a tool's result is redacted: the tool-result rule, or not at all for an exempt tool (undefined: unknown, never exempt). */
  private toolResult(tool: string | undefined): ResultRedactor {
    const redaction = this.redaction();
    if (!redaction || (tool !== undefined && matchesExact(redaction.except, tool))) return (result) => ({ result, count: 0 });
    return (result) => redactToolResult(result, redaction.detectors);
  }

  private filterList(message: JSONRPCMessage, list: { kind: Kind; field: string; key: string }): JSONRPCMessage {
    const policy = this.deps.policy();
    if (!policy || !('result' in message)) return message;
    const items = (message.result as Record<string, unknown>)[list.field];
    if (!Array.isArray(items)) return message;
    const { role } = this.ctx.principal;
    const kept = items.filter((item: Record<string, unknown>) => {
      const name = item?.[list.key];
      if (typeof name !== 'string') return false;
      const decision =
        list.kind === 'resources' ? decideUri(policy, name, role, this.ctx.commandKey) : decideName(policy, list.kind, name, role, this.ctx.commandKey);
      return decision.allowed;
    });
    if (list.kind === 'tools') this.deps.stats.listed(this.ctx.commandKey, role, kept.length, items.length - kept.length);
    if (policy.mode === 'shadow' || kept.length === items.length) return message;
    return { ...message, result: { ...message.result, [list.field]: kept } } as JSONRPCMessage;
  }

  private finishCall(message: JSONRPCMessage, id: RequestId | null): JSONRPCMessage {
    const call = id === null ? undefined : this.open.get(id);
    if (id !== null) this.open.delete(id);
    const taskId = 'result' in message ? createdTaskId(message.result) : undefined;
    let out: Redacted;
    try {
      // A CreateTaskResult is not the tool's output (that comes with tasks/result): the one rule.
      out = this.redact(message, taskId === undefined ? this.toolResult(call?.tool) : undefined);
    } catch (error) {
      if (call) this.deps.audit.record('tool_call', { ...call.fields, isError: true, outcome: 'result not checkable', latencyMs: Date.now() - call.started });
      throw error;
    }
    if (!call) return out.message;
    if (taskId !== undefined) {
      this.tasks.created(taskId, call);
      return out.message;
    }
    const isError = 'error' in message || (message as { result?: { isError?: boolean } }).result?.isError === true;
    this.deps.audit.record('tool_call', { ...call.fields, isError, latencyMs: Date.now() - call.started, redactions: out.count });
    return out.message;
  }

  private remember(id: RequestId, params: unknown, fields: Record<string, unknown>, policy: CompiledPolicy | undefined): void {
    const p = (params ?? {}) as { name?: unknown; arguments?: unknown };
    const tool = typeof p.name === 'string' ? p.name : '';
    this.deps.onDecision?.(String(fields.decision));
    // Hashing the arguments is only worth it when an audit trail is written.
    const audited = this.deps.audit.enabled !== false;
    this.open.set(id, { tool, started: Date.now(), fields: audited ? this.callFields(p, fields, policy) : fields });
  }

  private auditCall(params: unknown, fields: Record<string, unknown>, policy: CompiledPolicy): void {
    this.deps.onDecision?.(String(fields.decision));
    this.deps.audit.record('tool_call', this.callFields((params ?? {}) as { name?: unknown; arguments?: unknown }, fields, policy));
  }

  private auditAccess(method: string, verdict: Verdict, fields: Record<string, unknown>): void {
    this.deps.onDecision?.(String(fields.decision));
    this.deps.audit.record('access', { ...this.baseFields(), method, target: 'target' in verdict ? verdict.target : undefined, ...fields });
  }

  private callFields(p: { name?: unknown; arguments?: unknown }, fields: Record<string, unknown>, policy: CompiledPolicy | undefined) {
    return {
      ...this.baseFields(),
      tool: typeof p.name === 'string' ? p.name : undefined,
      ...argDigest(p.arguments),
      ...(policy?.includeArguments ? { arguments: p.arguments } : {}),
      ...fields,
    };
  }

  private baseFields() {
    return {
      clientId: this.ctx.principal.clientId,
      role: this.ctx.principal.role,
      ...(this.ctx.principal.via ? { via: this.ctx.principal.via } : {}),
      command: this.ctx.commandKey,
      session: this.ctx.sessionTag(),
      era: this.ctx.era ?? 'legacy',
    };
  }
}
