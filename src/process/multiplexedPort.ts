/**
 * One session's view of a shared child (see multiplexer.ts): a ChildPort whose requests go
 * through the Multiplexer. Requests the multiplexer answers itself (initialize, tasks,
 * subscriptions, logging levels) are answered here, under the session's own id, unless the
 * session cancelled them meanwhile.
 */
import type { JSONRPCMessage, JSONRPCRequest, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { ChildPort } from '../bridge/childPort.js';
import { isNotification, isRequest } from '../bridge/jsonrpc.js';
import type { CommandSpec } from '../commands/types.js';
import { errorBody, toWardenError, UpstreamExitedError, type WardenError } from '../errors.js';
import type { Multiplexer } from './multiplexer.js';
import type { Outcome } from './sharedSubscriptions.js';

export class MultiplexedPort implements ChildPort {
  onmessage?: (message: JSONRPCMessage) => void;
  onerror?: (error: Error) => void;
  onclose?: () => void;
  readonly pooled = true;
  closeError: WardenError | undefined;
  private closed = false;
  /** Ids of this session's requests that the multiplexer answers itself, still unanswered. */
  private readonly answering = new Set<RequestId>();

  constructor(private readonly shared: Multiplexer) {}

  get pid(): number {
    return this.shared.child.pid;
  }

  get spec(): CommandSpec {
    return this.shared.child.spec;
  }

  get writableLength(): number {
    return this.shared.child.writableLength;
  }

  async start(): Promise<void> {}

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) throw this.closeError ?? new UpstreamExitedError('session closed');
    if (isRequest(message)) {
      const answer = this.shared.answer(this, message);
      if (answer) this.reply(message, answer);
      else await this.shared.forward(this, message);
      return;
    }
    if (isNotification(message) && message.method === 'notifications/cancelled') {
      const requestId = message.params?.requestId;
      if (typeof requestId !== 'string' && typeof requestId !== 'number') return;
      // One answered here is not the child's to cancel: it just gets no reply.
      if (!this.answering.delete(requestId)) await this.shared.cancel(this, requestId, message.params?.reason);
    }
    // notifications/initialized was already sent by the gateway; other client
    // notifications and responses have no meaning for a server shared by many.
  }

  deliver(message: JSONRPCMessage): void {
    if (!this.closed) this.onmessage?.(message);
  }

  /** The shared child died: this session ends with `error`. */
  end(error: WardenError): void {
    if (this.closed) return;
    this.closeError = error;
    this.finish();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.shared.detach(this);
    this.finish();
  }

  /** Answers `request` with `outcome` once it settles (a failure: the child could not be asked). */
  private reply(request: JSONRPCRequest, outcome: Promise<Outcome>): void {
    const { id } = request;
    this.answering.add(id);
    outcome.then(
      (settled) => {
        if (this.answering.delete(id)) this.deliver({ jsonrpc: '2.0', id, ...settled } as JSONRPCMessage);
      },
      (error: unknown) => {
        if (this.answering.delete(id)) this.deliver(errorBody(toWardenError(error), id) as JSONRPCMessage);
      },
    );
  }

  private finish(): void {
    this.closed = true;
    this.answering.clear();
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.();
  }
}
