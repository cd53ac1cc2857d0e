/**
 * What the rest of the gateway needs from the audit trail: somewhere to record an event.
 * AuditLog (auditLog.ts) is the real one; the supervisor records spawns and exits, the
 * policy guard records tool calls and their decisions.
 */
export interface AuditRecorder {
  /** False when nothing is recorded: callers may skip building the fields. @default true */
  readonly enabled?: boolean;
  record(event: string, fields: Record<string, unknown>): void;
}
