/**
 * Every error the gateway answers with is a WardenError with a stable string `code`.
 * The one table below maps each code to its HTTP status and JSON-RPC error code.
 *
 * JSON-RPC codes: the standard ones where the meaning matches (parse error, invalid
 * request, method not found, invalid params, internal error); the three the MCP
 * specification (2026-07-28) defines in its reserved range -32020..-32099 with exactly their
 * meaning (-32020 header mismatch, -32021 missing client capability, -32022 unsupported
 * protocol version); "session not found" keeps -32001, the code the SDK's Streamable HTTP
 * transport answers with. Everything else is the gateway's own, in -31001..-31099, outside
 * the range JSON-RPC and MCP reserve (-32768..-32000), so no client reads a spec meaning
 * into it. `data.code` names the condition in words.
 */
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';

export interface ErrorMapping {
  readonly status: number;
  readonly rpc: number;
}

export const ERROR_TABLE = {
  unauthorized: { status: 401, rpc: -31001 },
  forbidden_origin: { status: 403, rpc: -31002 },
  forbidden_host: { status: 403, rpc: -31002 },
  forbidden: { status: 403, rpc: -31003 },
  unknown_command: { status: 404, rpc: -31004 },
  session_not_found: { status: 404, rpc: -32001 },
  env_rejected: { status: 400, rpc: -31005 },
  bad_request: { status: 400, rpc: ErrorCode.InvalidRequest },
  duplicate_request_id: { status: 400, rpc: ErrorCode.InvalidRequest },
  parse_error: { status: 400, rpc: ErrorCode.ParseError },
  invalid_params: { status: 400, rpc: ErrorCode.InvalidParams },
  method_not_found: { status: 404, rpc: ErrorCode.MethodNotFound },
  header_mismatch: { status: 400, rpc: -32020 },
  missing_client_capability: { status: 400, rpc: -32021 },
  unsupported_protocol_version: { status: 400, rpc: -32022 },
  payload_too_large: { status: 413, rpc: -31006 },
  method_not_allowed: { status: 405, rpc: -31007 },
  not_acceptable: { status: 406, rpc: -31008 },
  unsupported_media_type: { status: 415, rpc: -31009 },
  conflict: { status: 409, rpc: -31010 },
  rate_limited: { status: 429, rpc: -31011 },
  limit_reached: { status: 503, rpc: -31012 },
  draining: { status: 503, rpc: -31013 },
  backpressure: { status: 503, rpc: -31014 },
  upstream_failed: { status: 502, rpc: -31015 },
  upstream_timeout: { status: 504, rpc: -31016 },
  upstream_exited: { status: 502, rpc: -31017 },
  upstream_protocol: { status: 502, rpc: -31018 },
  policy_denied: { status: 403, rpc: -31019 },
  misdirected: { status: 421, rpc: -31030 },
  length_required: { status: 411, rpc: -31031 },
  insufficient_scope: { status: 403, rpc: -31020 },
  unavailable: { status: 503, rpc: -31021 },
  memory_exceeded: { status: 502, rpc: -31040 },
  internal: { status: 500, rpc: ErrorCode.InternalError },
} as const satisfies Record<string, ErrorMapping>;

export type ErrorCodeName = keyof typeof ERROR_TABLE;

export interface WardenErrorOptions {
  /** Extra machine-readable detail sent as JSON-RPC `error.data`. Never put secrets here. */
  readonly data?: Record<string, unknown>;
  /** Seconds after which a retry may succeed; sent as `Retry-After`. */
  readonly retryAfter?: number;
  /** Extra response headers (e.g. `WWW-Authenticate`). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
}

export class WardenError extends Error {
  readonly code: ErrorCodeName;
  readonly data: Record<string, unknown> | undefined;
  readonly retryAfter: number | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCodeName, message: string, options: WardenErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.data = options.data;
    this.retryAfter = options.retryAfter;
    this.headers = options.headers ?? {};
  }

  get status(): number {
    return ERROR_TABLE[this.code].status;
  }

  get rpcCode(): number {
    return ERROR_TABLE[this.code].rpc;
  }
}

/** The challenge of a 401 when OAuth is off: the realm only. */
const PLAIN_CHALLENGE = 'Bearer realm="mcp-warden"';

export class UnauthorizedError extends WardenError {
  /** @param challenge the `WWW-Authenticate` value (OAuth adds where its metadata is). */
  constructor(message = 'missing or invalid bearer token', challenge = PLAIN_CHALLENGE) {
    super('unauthorized', message, { headers: { 'WWW-Authenticate': challenge } });
  }
}

/** A valid OAuth token without a scope the request needs (RFC 6750 §3.1). */
export class InsufficientScopeError extends WardenError {
  constructor(message: string, challenge: string) {
    super('insufficient_scope', message, { headers: { 'WWW-Authenticate': challenge } });
  }
}

export class ForbiddenError extends WardenError {
  constructor(message: string) {
    super('forbidden', message);
  }
}

export class UnknownCommandError extends WardenError {
  constructor() {
    super('unknown_command', 'unknown command');
  }
}

export class SessionNotFoundError extends WardenError {
  constructor() {
    super('session_not_found', 'Session not found');
  }
}

export class DuplicateRequestIdError extends WardenError {
  /** The id itself is not repeated back: it is client input. */
  constructor() {
    super('duplicate_request_id', 'Invalid Request: a request with this id is already in flight in this session; use a new id');
  }
}

/** Extra detail of an EnvRejectedError; names and settings only, never a value. */
export interface EnvRejectedDetail {
  /** Appended to the message after the reason, e.g. `(a family that ...); an admin may ...`. */
  readonly detail?: string;
  /** Stable fields added to `data`, e.g. `setting` (what would accept it) and `family`. */
  readonly data?: Readonly<Record<string, string>>;
}

export class EnvRejectedError extends WardenError {
  /**
   * `name` is the variable's name only; its value is never part of an error. `data` holds
   * `variable`, the stable `reason`, and whatever `more.data` adds.
   */
  constructor(name: string, reason: string, more: EnvRejectedDetail = {}) {
    const detail = more.detail === undefined ? '' : ` ${more.detail}`;
    super('env_rejected', `environment variable ${name} is not accepted: ${reason}${detail}`, {
      data: { variable: name, reason, ...more.data },
    });
  }
}

export class PayloadTooLargeError extends WardenError {
  constructor(limitBytes: number) {
    super('payload_too_large', `request body exceeds the limit of ${limitBytes} bytes`, {
      data: { limitBytes },
    });
  }
}

export class DrainingError extends WardenError {
  /** @param headers e.g. `fly-replay: elsewhere=true`, sending a new session to another machine */
  constructor(headers?: Readonly<Record<string, string>>) {
    super('draining', 'gateway is shutting down', { retryAfter: 1, headers });
  }
}

export class UpstreamExitedError extends WardenError {
  constructor(detail: string) {
    super('upstream_exited', `MCP server exited: ${detail}`);
  }
}

export class UpstreamFailedError extends WardenError {
  constructor(detail: string, retryAfter?: number) {
    super('upstream_failed', `upstream failed to start: ${detail}`, { retryAfter });
  }
}

export class LimitReachedError extends WardenError {
  constructor(limit: string, max: number, retryAfter = 1, code: 'limit_reached' | 'rate_limited' = 'limit_reached') {
    super(code, `limit reached: ${limit} (${max})`, { data: { limit, max }, retryAfter });
  }
}

/** A child tree used more memory than its entry (or the gateway) allows: it was stopped. */
export class MemoryExceededError extends WardenError {
  /** @param setting what sets the limit: `maxMemoryMb of this entry` or `--max-child-memory-mb` */
  constructor(usedMb: number, limitMb: number, setting: string) {
    super('memory_exceeded', `the MCP server used ${usedMb} MB, over its limit of ${limitMb} MB (${setting}); it was stopped and this session ended`, {
      data: { usedMb, limitMb, setting },
    });
  }
}

/** A new child does not fit in the memory budget, even after idle sessions gave theirs back. */
export class MemoryBudgetError extends WardenError {
  constructor(budgetMb: number, usedMb: number, neededMb: number, source: string, retryAfter = 5) {
    super(
      'limit_reached',
      `limit reached: memoryBudget (${budgetMb} MB, ${source}): ${usedMb} MB in use and no idle session to free, this server needs about ${neededMb} MB; an admin can raise --memory-budget-mb or lower --memory-reserve-mb`,
      { data: { limit: 'memoryBudget', max: budgetMb, usedMb, neededMb }, retryAfter },
    );
  }
}

/** Turns anything thrown into a WardenError without leaking internals to the client. */
export function toWardenError(error: unknown): WardenError {
  if (error instanceof WardenError) return error;
  return new WardenError('internal', 'internal error', { cause: error });
}

/** The JSON-RPC error body every HTTP rejection uses. */
export function errorBody(error: WardenError, id: string | number | null = null) {
  return {
    jsonrpc: '2.0' as const,
    error: {
      code: error.rpcCode,
      message: error.message,
      data: { code: error.code, ...error.data },
    },
    id,
  };
}
