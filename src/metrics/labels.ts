/**
 * Label values for the metrics. A label whose value a client or a child can choose would
 * let anyone who can send a message create series without bound (each distinct value is a
 * series kept for the life of the process), so such values are mapped onto a known set
 * here, and everything else becomes `other`. The metrics module applies these mappings
 * itself, so no caller can forget them.
 */

/** The label value for anything outside a known set. */
export const OTHER = 'other';

/**
 * Every request method of the MCP specifications the gateway speaks (2025-11-25 and
 * 2026-07-28), in both directions: client to server and server to client.
 */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  // client to server
  'initialize',
  'ping',
  'server/discover',
  'completion/complete',
  'logging/setLevel',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'subscriptions/listen',
  'tools/list',
  'tools/call',
  'tasks/get',
  'tasks/result',
  'tasks/list',
  'tasks/cancel',
  // server to client
  'sampling/createMessage',
  'elicitation/create',
  'roots/list',
]);

/** Outcomes the policy guard reports (src/policy/guard.ts). */
export const KNOWN_OUTCOMES: ReadonlySet<string> = new Set(['allowed', 'denied', 'rate-limited', 'shadow-denied', 'shadow-rate-limited']);

/**
 * Limits a refusal can name (`LimitReachedError`'s `limit`, or the error code when it
 * names none). A new limit must be added here to get its own series.
 */
export const KNOWN_LIMITS: ReadonlySet<string> = new Set([
  'maxSessionsPerClient',
  'maxChildren',
  'maxChildren for this command',
  'memoryBudget',
  'httpRequestsPerClient',
  'authFailuresPerAddress',
  'rate_limited',
  'limit_reached',
]);

function known(set: ReadonlySet<string>, value: unknown): string {
  return typeof value === 'string' && set.has(value) ? value : OTHER;
}

/** A JSON-RPC method as a label: itself when the specifications define it, else `other`. */
export function knownMethod(method: unknown): string {
  return known(KNOWN_METHODS, method);
}

/** A policy outcome as a label. */
export function knownOutcome(outcome: unknown): string {
  return known(KNOWN_OUTCOMES, outcome);
}

/** A limit name as a label. */
export function knownLimit(limit: unknown): string {
  return known(KNOWN_LIMITS, limit);
}
