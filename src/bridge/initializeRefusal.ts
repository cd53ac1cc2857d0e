/**
 * A child's error answer to `initialize`. The session cannot go on after it (the client has
 * no usable session), so the bridge forwards it and ends the session, and with it the child.
 * One refusal gets a sentence of its own: a server that speaks only 2026-07-28 answers a
 * 2025 `initialize` with -32022 (unsupported protocol version) and lists only modern
 * revisions; the message then says that a 2025 client can't use this server through the
 * gateway and what to connect with instead. Code and data stay the server's.
 */
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ERROR_TABLE } from '../errors.js';

type Bag = Record<string, unknown>;

/** The revisions a -32022 error lists, when every one of them is a 2026 or later revision. */
function modernOnly(error: Bag): string[] | undefined {
  if (error.code !== ERROR_TABLE.unsupported_protocol_version.rpc) return undefined;
  const supported = (error.data as Bag | undefined)?.supported;
  if (!Array.isArray(supported) || supported.length === 0) return undefined;
  if (!supported.every((v): v is string => typeof v === 'string' && v >= '2026')) return undefined;
  return supported;
}

/** The error as the client gets it: with the explanation when the server speaks only 2026-07-28. */
export function explainInitializeRefusal(message: JSONRPCMessage): JSONRPCMessage {
  const error = (message as { error?: Bag }).error;
  const versions = error && modernOnly(error);
  if (!error || !versions) return message;
  const why =
    `this MCP server speaks only protocol revision ${versions.join(', ')}, not the 2025 revision this client asked for; ` +
    `connect with a client that speaks ${versions[0]} (requests with the _meta envelope, e.g. the v2 SDK client): ` +
    `the gateway does not translate a 2025 session for such a server`;
  return { ...message, error: { ...error, message: `${String(error.message)} (${why})` } } as JSONRPCMessage;
}
