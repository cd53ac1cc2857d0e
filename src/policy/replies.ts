/** What the guard answers an inbound message with, and the JSON-RPC error it replies with. */
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { ERROR_TABLE } from '../errors.js';

export type InboundResult = { readonly forward: true } | { readonly reply: JSONRPCMessage } | { readonly drop: true };
export const FORWARD: InboundResult = Object.freeze({ forward: true });
export const DROP: InboundResult = Object.freeze({ drop: true });

/** A JSON-RPC error with `data.code` the stable code of ERROR_TABLE. Never put secrets in `data`. */
export function denial(id: RequestId, code: keyof typeof ERROR_TABLE, message: string, data: Record<string, unknown>): JSONRPCMessage {
  return { jsonrpc: '2.0', id, error: { code: ERROR_TABLE[code].rpc, message, data: { code, ...data } } } as JSONRPCMessage;
}
