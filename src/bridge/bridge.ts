/**
 * The one place where messages cross between a client session and its child.
 * Client -> child: requests are remembered until answered. Child -> client: responses
 * and progress go back on the stream of the request they belong to. When either side
 * closes, the other is closed; requests still in flight get a JSON-RPC error at once.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { errorBody, toWardenError, UpstreamExitedError, type WardenError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ChildPort } from '../process/childPort.js';
import type { InboundResult, MessageGuard } from '../policy/guard.js';
import { isNotification, isRequest } from './jsonrpc.js';
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
  /** Policy, audit and redaction on the stream; absent: messages pass untouched. */
  readonly guard?: MessageGuard;
  /** Observes request durations by method. */
  readonly requestSeconds?: { observe(labels: { method: string }, seconds: number): void };
}

export class Bridge {
  /** Fires once, as soon as closing begins (the session is then gone for new requests). */
  onclosing: (() => void) | undefined;
  /** Fires once, after both sides are closed. */
  onclose: (() => void) | undefined;

  /** The client's response streams, to see when it stops reading. */
  readonly outbound: OutboundMeter;
  private readonly pending = new PendingRequests();
  private closing: Promise<void> | undefined;
  /** Set while a guard decision is asynchronous: later messages queue behind it, in order. */
  private inboundTail: Promise<void> | undefined;

  constructor(
    readonly client: Transport,
    readonly child: ChildPort,
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
    if (!this.closing) {
      const onclosing = this.onclosing;
      this.onclosing = undefined;
      onclosing?.();
      this.closing = this.shutdown(why);
    }
    return this.closing;
  }

  private fromClient(message: JSONRPCMessage): void {
    this.options.onActivity?.();
    const guard = this.options.guard;
    if (!guard) return this.forward(message);
    if (this.inboundTail) {
      this.queueInbound(message, this.inboundTail.then(() => guard.inbound(message)));
      return;
    }
    const result = guard.inbound(message);
    if (result instanceof Promise) this.queueInbound(message, result);
    else this.apply(message, result);
  }

  /** Applies an asynchronous decision in arrival order; a failed one answers with an error. */
  private queueInbound(message: JSONRPCMessage, decision: Promise<InboundResult>): void {
    const tail: Promise<void> = decision
      .then(
        (result) => this.apply(message, result),
        (error: unknown) => {
          this.options.logger.error('policy check failed', { ...this.options.tags, error: String(error) });
          if (isRequest(message)) this.deliver(errorBody(toWardenError(error), message.id) as JSONRPCMessage, message.id);
        },
      )
      .finally(() => {
        if (this.inboundTail === tail) this.inboundTail = undefined;
      });
    this.inboundTail = tail;
  }

  private apply(message: JSONRPCMessage, result: InboundResult): void {
    if ('drop' in result) return;
    if ('reply' in result) {
      const id = 'id' in result.reply ? result.reply.id : undefined;
      this.deliver(result.reply, id ?? undefined);
      return;
    }
    this.forward(message);
  }

  private forward(message: JSONRPCMessage): void {
    if (isRequest(message)) this.pending.add(message);
    else if (isNotification(message) && message.method === 'notifications/cancelled') {
      const id = message.params?.requestId;
      if (typeof id === 'string' || typeof id === 'number') this.pending.delete(id);
    }
    this.child.send(message).catch((error: unknown) => {
      if (isRequest(message)) this.failRequest(message.id, toWardenError(error));
    });
  }

  private fromChild(message: JSONRPCMessage): void {
    this.options.onActivity?.();
    let relatedRequestId: RequestId | undefined;
    if ('id' in message && !('method' in message)) {
      // A response (result or error) to one of the client's requests.
      relatedRequestId = message.id ?? undefined;
      const request = relatedRequestId === undefined ? undefined : this.pending.take(relatedRequestId);
      if (request) this.options.requestSeconds?.observe({ method: request.method }, request.elapsedMs / 1000);
      if (this.options.guard) message = this.options.guard.outbound(message, request?.method);
    } else if (isNotification(message) && message.method === 'notifications/progress') {
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
    this.options.guard?.close();
    await Promise.allSettled([this.client.close(), this.child.close()]);
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.();
  }
}
