/**
 * What a session's bridge needs from "its client": a Transport that also knows how far the
 * client lags behind on its response streams (each client transport meters its own).
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';

/** How far a client is behind on its streams (src/transports/outboundMeter.ts is one). */
export interface ClientLag {
  /** Accounts one message about to be sent; true once the client fell past its bound. */
  add(message: unknown): boolean;
  /** Bytes the client is behind (for logs). */
  readonly backlog: number;
  /** Cuts every open stream of the session (a client that stopped reading). */
  destroyAll(): void;
}

export interface ClientPort extends Transport {
  readonly outbound: ClientLag;
}
