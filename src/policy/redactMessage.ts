/**
 * The one redaction rule for everything a child sends to a client: every string value,
 * at any depth, of every member of the message except the envelope (`jsonrpc`, `id`,
 * `method`, which route the message and are never rewritten). Object keys are left
 * alone. A response's `result` may be handed to a more specific redactor (a tool's
 * CallToolResult); its `error` (`message`, `data`, anything else in it) always takes the
 * one rule. Pure: no I/O.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { redactValue, type Detector } from './redact.js';

export interface Redacted {
  /** The input itself when nothing was replaced. */
  readonly message: JSONRPCMessage;
  /** Markers written, over the whole message. */
  readonly count: number;
}

/** Redacts a response's `result`; returns it as it is when nothing matched. */
export type ResultRedactor = (result: unknown) => { readonly result: unknown; readonly count: number };

const ENVELOPE = new Set(['jsonrpc', 'id', 'method']);

/**
 * Applies the rule to `message`. `forResult` replaces it for `result` only (`undefined`:
 * the one rule). Copies only what changed.
 * @throws {RangeError} when a member nests deeper than redact's MAX_DEPTH (or is cyclic):
 * the message must then not be forwarded.
 */
export function redactMessage(message: JSONRPCMessage, detectors: readonly Detector[], forResult?: ResultRedactor): Redacted {
  const source = message as unknown as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  let count = 0;
  for (const key of Object.keys(source)) {
    if (ENVELOPE.has(key)) continue;
    const value = source[key];
    const out = key === 'result' && forResult ? forResult(value) : redactValue(value, detectors);
    if (out.count === 0) continue;
    count += out.count;
    // The spread copies an own `__proto__` key as a plain property (see redact.ts walkObject).
    copy ??= { ...source };
    copy[key] = out.result;
  }
  return { message: (copy ?? message) as JSONRPCMessage, count };
}
