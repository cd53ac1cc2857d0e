/**
 * In-memory stand-ins for the two sides of a bridge, for unit tests of message logic:
 * a client-side Transport that records what the gateway sends it, and a ChildPort that
 * records what reaches "the child". Both close idempotently and fire onclose once, as the
 * real ones must. Waiting is on events (a message arriving), never on time.
 */
import type { ClientPort } from '../../src/bridge/clientPort.js';
import type { TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { ChildPort } from '../../src/bridge/childPort.js';
import type { CommandSpec } from '../../src/commands/types.js';
import type { WardenError } from '../../src/errors.js';
import { fixtureSpec } from './children.js';

/** Messages seen so far, and a promise for the first one (seen or still to come) that matches. */
export class MessageLog<T> {
  readonly items: T[] = [];
  private readonly waiters: { match: (item: T) => boolean; resolve: (item: T) => void }[] = [];

  push(item: T): void {
    this.items.push(item);
    for (const waiter of [...this.waiters]) {
      if (!waiter.match(item)) continue;
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve(item);
    }
  }

  /** The first item matching `match`; rejects naming `what` after `ms` (a stuck test fails, it does not hang). */
  next(match: (item: T) => boolean, what: string, ms = 5_000): Promise<T> {
    const seen = this.items.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms; got ${JSON.stringify(this.items)}`)), ms);
      timer.unref();
      this.waiters.push({
        match,
        resolve: (item) => {
          clearTimeout(timer);
          resolve(item);
        },
      });
    });
  }
}

export interface Delivered {
  readonly message: JSONRPCMessage;
  readonly relatedRequestId: RequestId | undefined;
}

/** True for a message with this id (response or request). */
export const withId =
  (id: RequestId) =>
  (m: JSONRPCMessage | Delivered): boolean => {
    const message = 'message' in m ? m.message : m;
    return 'id' in message && message.id === id;
  };

/** The client side of a session: `receive` is the client talking, `sent` what it was sent. */
export class FakeClient implements ClientPort {
  onmessage?: (message: JSONRPCMessage) => void;
  onerror?: (error: Error) => void;
  onclose?: () => void;
  /** Set `lags` to make the client count as lagging (the bridge then drops the session). */
  readonly outbound = {
    lags: false,
    backlog: 0,
    cut: 0,
    add(): boolean {
      return this.lags;
    },
    destroyAll(): void {
      this.cut += 1;
    },
  };
  readonly sent = new MessageLog<Delivered>();
  closeCalls = 0;
  closed = false;

  async start(): Promise<void> {}

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (this.closed) throw new Error('client transport closed');
    this.sent.push({ message, relatedRequestId: options?.relatedRequestId });
  }

  /** The client sends `message` to the gateway. */
  receive(message: JSONRPCMessage): void {
    this.onmessage?.(message);
  }

  async close(): Promise<void> {
    this.closeCalls += 1;
    if (this.closed) return;
    this.closed = true;
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.();
  }
}

/** "The child" of a session: `emit` is the child talking, `received` what reached it. */
export class FakeChild implements ChildPort {
  onmessage?: (message: JSONRPCMessage) => void;
  onerror?: (error: Error) => void;
  onclose?: () => void;
  readonly pid = 0;
  readonly spec: CommandSpec = fixtureSpec('fake');
  readonly pooled = false;
  readonly writableLength = 0;
  closeError: WardenError | undefined;
  readonly received = new MessageLog<JSONRPCMessage>();
  closeCalls = 0;
  closed = false;

  async start(): Promise<void> {}

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) throw this.closeError ?? new Error('child closed');
    this.received.push(message);
  }

  /** The child writes `message` to the gateway. */
  emit(message: JSONRPCMessage): void {
    this.onmessage?.(message);
  }

  /** The child ends on its own with `error` as the reason. */
  die(error: WardenError): void {
    this.closeError = error;
    this.end();
  }

  async close(): Promise<void> {
    this.closeCalls += 1;
    this.end();
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.();
  }
}
