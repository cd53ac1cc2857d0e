/**
 * What a session told its server that a new server process must be told again before it
 * can take the session's next message: the client's `initialize` (its params) and
 * `notifications/initialized`, the last logging level it set, and the resources it is
 * subscribed to (a subscribe counts once the server agreed to it; an unsubscribe the client
 * sent removes it). Fed with every message in both directions; bounded.
 */
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { isNotification, isRequest, isResponse } from '../bridge/jsonrpc.js';

/** Resources one session may hold subscribed (as the multiplexer's default). */
const MAX_SUBSCRIPTIONS = 1000;
/** Subscribe/unsubscribe requests remembered while their answer is awaited. */
const MAX_WAITING = 1000;

type Params = Record<string, unknown>;

export class SessionReplay {
  private initializeParams: Params | undefined;
  private initialized = false;
  private level: unknown;
  private readonly uris = new Set<string>();
  private readonly waiting = new Map<RequestId, { readonly uri: string; readonly subscribe: boolean }>();

  /** A message the client sent to its server. */
  fromClient(message: JSONRPCMessage): void {
    if (isNotification(message)) {
      if (message.method === 'notifications/initialized') this.initialized = true;
      return;
    }
    if (!isRequest(message)) return;
    const params = (message.params ?? {}) as Params;
    if (message.method === 'initialize') this.initializeParams ??= params;
    else if (message.method === 'logging/setLevel') this.level = params.level;
    else if ((message.method === 'resources/subscribe' || message.method === 'resources/unsubscribe') && typeof params.uri === 'string') {
      if (this.waiting.size >= MAX_WAITING) this.waiting.delete(this.waiting.keys().next().value!);
      this.waiting.set(message.id, { uri: params.uri, subscribe: message.method === 'resources/subscribe' });
    }
  }

  /** A message the server sent to the client: the answers to subscribes and unsubscribes count. */
  fromServer(message: JSONRPCMessage): void {
    if (!isResponse(message)) return;
    const id = (message as { id?: RequestId }).id;
    const change = id === undefined ? undefined : this.waiting.get(id);
    if (!change) return;
    this.waiting.delete(id!);
    if (!('result' in message)) return;
    if (!change.subscribe) this.uris.delete(change.uri);
    else if (this.uris.size < MAX_SUBSCRIPTIONS) this.uris.add(change.uri);
  }

  /** The params of the client's `initialize`, if it sent one. */
  get initialize(): Params | undefined {
    return this.initializeParams;
  }

  /** True once the client sent `notifications/initialized`. */
  get wasInitialized(): boolean {
    return this.initialized;
  }

  /** The last logging level the client set, if any. */
  get logLevel(): unknown {
    return this.level;
  }

  /** The resources the client holds subscribed. */
  get subscriptions(): readonly string[] {
    return [...this.uris];
  }
}
