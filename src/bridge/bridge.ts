/**
 * The one place where messages cross between a client session and its child.
 * Client -> child: requests are remembered until answered. Child -> client: responses
 * and progress go back on the stream of the request they belong to. When either side
 * closes, the other is closed; requests still in flight get a JSON-RPC error at once.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  isJSONRPCNotification,
  isJSONRPCRequest,
  type JSONRPCMessage,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { errorBody, toWardenError, UpstreamExitedError, type WardenError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ChildTransport } from '../process/childTransport.js';
import { OutboundMeter } from './outboundMeter.js';
import { PendingRequests } from './pending.js';

export interface BridgeOptions {
  readonly logger: Logger;
  /** Tags for log lines (session id hash, command key). Never secrets. */
  readonly tags: Readonly<Record<string, string>>;
  /** Called for every message in either direction (activity tracking). */
  readonly onActivity?: () => void;
  /** Bytes a client may fall behind before its session is dropped. @default 16 MiB */
  readonly maxClientBacklogBytes?: number;
}

export class Bridge {
  /** Fires once, after both sides are closed. */
  onclose: (() => void) | undefined;

  /** The client's response streams, to see when it stops reading. */
  readonly outbound: OutboundMeter;
  private readonly pending = new PendingRequests();
  private closing: Promise<void> | undefined;

  constructor(
    readonly client: Transport,
    readonly child: ChildTransport,
    private readonly options: BridgeOptions,
  ) {
    this.outbound = new OutboundMeter(options.maxClientBacklogBytes ?? 16 * 1024 * 1024);
  }

  /** Wires both sides and starts them (the client transport last: it opens the stream). */
  async start(): Promise<void> {
    const { client, child } = this;
    client.onmessage = (message) => this.fromClient(message);
    client.onerror = (error) => this.options.logger.debug('client transport error', { ...this.options.tags, error: error.message });
    client.onclose = () => void this.close('client closed');
    child.onmessage = (message) => this.fromChild(message);
    child.onerror = (error) => this.options.logger.debug('child transport error', { ...this.options.tags, error: error.message });
    child.onclose = () => void this.close('child exited');
    await child.start();
    await client.start();
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Closes both sides; in-flight requests are answered with an error first. Idempotent. */
  close(why = 'closed'): Promise<void> {
    this.closing ??= this.shutdown(why);
    return this.closing;
  }

  private fromClient(message: JSONRPCMessage): void {
    this.options.onActivity?.();
    if (isJSONRPCRequest(message)) this.pending.add(message);
    else if (isJSONRPCNotification(message) && message.method === 'notifications/cancelled') {
      const id = message.params?.requestId;
      if (typeof id === 'string' || typeof id === 'number') this.pending.delete(id);
    }
    this.child.send(message).catch((error: unknown) => {
      if (isJSONRPCRequest(message)) this.failRequest(message.id, toWardenError(error));
    });
  }

  private fromChild(message: JSONRPCMessage): void {
    this.options.onActivity?.();
    let relatedRequestId: RequestId | undefined;
    if ('id' in message && !('method' in message)) {
      // A response (result or error) to one of the client's requests.
      relatedRequestId = message.id ?? undefined;
      if (relatedRequestId !== undefined) this.pending.delete(relatedRequestId);
    } else if (isJSONRPCNotification(message) && message.method === 'notifications/progress') {
      relatedRequestId = this.pending.byProgressToken(message.params?.progressToken as string | number | undefined);
    }
    this.deliver(message, relatedRequestId);
  }

  private deliver(message: JSONRPCMessage, relatedRequestId?: RequestId): void {
    if (this.closing) return;
    if (this.outbound.add(message)) {
      this.options.logger.warn('client is not reading its stream; dropping the session', {
        ...this.options.tags,
        backlogBytes: this.outbound.backlog,
      });
      this.outbound.destroyAll();
      void this.close('client not reading');
      return;
    }
    const options = relatedRequestId === undefined ? undefined : { relatedRequestId };
    this.client.send(message, options).catch((error: unknown) => {
      this.options.logger.debug('could not deliver to client', {
        ...this.options.tags,
        error: error instanceof Error ? error.message : String(error),
      });
    });
  }

  private failRequest(id: RequestId, error: WardenError): void {
    if (!this.pending.delete(id)) return;
    this.deliver(errorBody(error, id) as JSONRPCMessage, id);
  }

  private async shutdown(why: string): Promise<void> {
    this.options.logger.debug('closing session', { ...this.options.tags, why, inFlight: this.pending.size });
    const error = this.child.closeError ?? new UpstreamExitedError(why === 'child exited' ? 'exited' : 'session closed');
    const sends = this.pending.drain().map((id) =>
      this.client.send(errorBody(error, id) as JSONRPCMessage, { relatedRequestId: id }).catch(() => undefined),
    );
    await Promise.allSettled(sends);
    await Promise.allSettled([this.client.close(), this.child.close()]);
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.();
  }
}
