/**
 * The tasks (MCP 2025-11-25, experimental) one session's tool calls created. A `tools/call`
 * with `params.task` is answered with a CreateTaskResult `{task: {taskId, status, ...}}`;
 * the tool's CallToolResult comes later, as the result of `tasks/result`. Each task id is
 * noted with the tool and the audit fields of the call behind it, so:
 * - `tasks/get`, `tasks/result`, `tasks/cancel` name a task of this session whose tool the
 *   role may call now (the policy hot-reloads), or are denied like a denied tool call; a
 *   task id this session never saw created is denied as `unknown_task` (in every mode:
 *   that is isolation, not a policy rule);
 * - the `tasks/result` answer is redacted as that tool's result (its exemption applies)
 *   and audited as the call's outcome (`task: true`), once;
 * - `tasks/list` and `notifications/tasks/status` show only those tasks.
 * Bounded: past MAX_TASKS the oldest task is forgotten (and then refused).
 */
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { CompiledPolicy } from './compile.js';
import type { NameDecision } from './engine.js';
import type { Redacted } from './redactMessage.js';
import { denial, DROP, FORWARD, type InboundResult } from './replies.js';

/** Client requests that name a task of the server by `params.taskId`. */
export const TASK_REQUESTS: ReadonlySet<string> = new Set(['tasks/get', 'tasks/result', 'tasks/cancel']);

/** Most tasks remembered per session. */
export const MAX_TASKS = 1024;

export interface TaskCall {
  readonly tool: string;
  /** When the tools/call was decided (latency of the outcome counts from here). */
  readonly started: number;
  /** Audit fields of the call (decision, rule, tool, argument digest). */
  readonly fields: Record<string, unknown>;
  /** The outcome was audited (first tasks/result answer, or refused as unreadable). */
  audited: boolean;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The task id of a CreateTaskResult, else undefined (an ordinary CallToolResult). */
export function createdTaskId(result: unknown): string | undefined {
  if (!isObject(result) || !isObject(result['task'])) return undefined;
  const id = result['task']['taskId'];
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

/** `params.taskId` when it is a non-empty string. */
export function taskIdParam(params: unknown): string | undefined {
  if (!isObject(params)) return undefined;
  const id = params['taskId'];
  return typeof id === 'string' && id.length > 0 && id.length <= 2048 ? id : undefined;
}

export class SessionTasks {
  private readonly byId = new Map<string, TaskCall>();

  constructor(private readonly max = MAX_TASKS) {}

  /** Notes a task; returns the tasks forgotten to stay within `max`. */
  add(taskId: string, call: TaskCall): TaskCall[] {
    this.byId.delete(taskId); // re-added: becomes the newest
    this.byId.set(taskId, call);
    const forgotten: TaskCall[] = [];
    for (const [id, old] of this.byId) {
      if (this.byId.size <= this.max) break;
      this.byId.delete(id);
      forgotten.push(old);
    }
    return forgotten;
  }

  get(taskId: string): TaskCall | undefined {
    return this.byId.get(taskId);
  }

  /** Empties the book; returns every task it held. */
  drain(): TaskCall[] {
    const all = [...this.byId.values()];
    this.byId.clear();
    return all;
  }
}

/** What the task side needs from the session's guard. */
export interface TaskHost {
  readonly policy: () => CompiledPolicy | undefined;
  /** May this session's role call `tool` under `policy`? */
  mayCall(policy: CompiledPolicy, tool: string): NameDecision;
  /** Redacts a response whose result is `tool`'s result. @throws {RangeError} too deep to check */
  redactToolResponse(message: JSONRPCMessage, tool: string | undefined): Redacted;
  /** Records an `access` event and counts the decision. */
  access(fields: Record<string, unknown>): void;
  /** Records a `tool_call` event. */
  toolCall(fields: Record<string, unknown>): void;
}

export class TaskGuard {
  private readonly tasks: SessionTasks;
  /** tasks/result requests in flight: request id -> task id. */
  private readonly results = new Map<RequestId, string>();

  constructor(
    private readonly host: TaskHost,
    max = MAX_TASKS,
  ) {
    this.tasks = new SessionTasks(max);
  }

  /** A client's tasks/get, tasks/result or tasks/cancel. */
  inbound(message: { readonly method: string; readonly id?: RequestId; readonly params?: unknown }): InboundResult {
    const { id, method } = message;
    if (id === undefined) return DROP; // a request sent as a notification can't be answered
    const deny = (reason: string, rule: string, text: string, extra: Record<string, unknown> = {}): InboundResult => {
      this.host.access({ method, ...extra, decision: 'denied', rule, reason });
      return { reply: denial(id, 'policy_denied', `denied by policy: ${text}`, { reason, rule, ...extra }) };
    };
    const taskId = taskIdParam(message.params);
    if (taskId === undefined) return deny('malformed_request', 'shape', 'params.taskId must be a non-empty string');
    const task = this.tasks.get(taskId);
    if (!task) return deny('unknown_task', 'session tasks', 'unknown task');
    const policy = this.host.policy();
    const decision = policy && this.host.mayCall(policy, task.tool);
    if (policy && decision && !decision.allowed) {
      if (policy.mode !== 'shadow') return deny('tool_denied', decision.rule, 'tool_denied', { name: task.tool });
      this.host.access({ method, name: task.tool, decision: 'shadow-denied', rule: decision.rule, reason: 'tool_denied' });
    }
    if (method === 'tasks/result') this.results.set(id, taskId);
    return FORWARD;
  }

  /** A tools/call answered with a CreateTaskResult: the call's outcome comes with tasks/result. */
  created(taskId: string, call: { readonly tool: string; readonly started: number; readonly fields: Record<string, unknown> }): void {
    for (const task of this.tasks.add(taskId, { ...call, audited: false })) this.unfetched(task, Date.now());
  }

  /** Is `taskId` a task of this session whose tool the role may call now (shadow: any of its tasks)? */
  visible(taskId: string | undefined): boolean {
    const task = taskId === undefined ? undefined : this.tasks.get(taskId);
    if (!task) return false;
    const policy = this.host.policy();
    return !policy || policy.mode === 'shadow' || this.host.mayCall(policy, task.tool).allowed;
  }

  /** The answer to tasks/result: redacted as the tool's result, audited once as the call's outcome. */
  result(message: JSONRPCMessage, id: RequestId | null): JSONRPCMessage {
    const taskId = id === null ? undefined : this.results.get(id);
    if (id !== null) this.results.delete(id);
    const task = taskId === undefined ? undefined : this.tasks.get(taskId);
    let out: Redacted;
    try {
      out = this.host.redactToolResponse(message, task?.tool);
    } catch (error) {
      this.outcome(task, { isError: true, outcome: 'result not checkable' });
      throw error;
    }
    const isError = 'error' in message || (message as { result?: { isError?: boolean } }).result?.isError === true;
    this.outcome(task, { isError, redactions: out.count });
    return out.message;
  }

  /** The answer to tasks/list: only visible tasks. */
  filterList(message: JSONRPCMessage): JSONRPCMessage {
    if (!('result' in message)) return message;
    const items = (message.result as Record<string, unknown>)['tasks'];
    if (!Array.isArray(items)) return message;
    const kept = items.filter((item: unknown) => this.visible(taskIdParam(item)));
    if (kept.length === items.length) return message;
    return { ...message, result: { ...message.result, tasks: kept } } as JSONRPCMessage;
  }

  /** The session ended: tasks whose result was never fetched are audited as such. */
  close(): void {
    this.results.clear();
    const now = Date.now();
    for (const task of this.tasks.drain()) this.unfetched(task, now);
  }

  private outcome(task: TaskCall | undefined, fields: Record<string, unknown>): void {
    if (!task || task.audited) return;
    task.audited = true;
    this.host.toolCall({ ...task.fields, task: true, ...fields, latencyMs: Date.now() - task.started });
  }

  private unfetched(task: TaskCall, now: number): void {
    if (!task.audited) this.host.toolCall({ ...task.fields, task: true, outcome: 'no task result fetched', latencyMs: now - task.started });
  }
}
