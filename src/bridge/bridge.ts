/**
 * The one place where messages cross between a client session and its child.
 * Client -> child: requests are remembered until answered; an id already in flight is
 * refused (it would take over the other request's reply). Child -> client: responses and
 * progress go back on the stream of the request they belong to. Fail closed: a response
 * that matches no request in flight (a repeated id, a late reply after a cancel) and
 * progress for no known request are dropped and logged, never forwarded unchecked; the
 * same holds for client responses to requests the child never sent. An error answer to
 * `initialize` ends the session once the client has it. When either side closes, the
 * other is closed; requests still in flight get a JSON-RPC error at once.
 */
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { DuplicateRequestIdError, errorBody, toWardenError, UpstreamExitedError, WardenError } from '../errors.js';
import { LogThrottle, type Logger } from '../logging/logger.js';
import type { InboundResult, MessageGuard } from '../policy/guard.js';
import type { ChildPort } from './childPort.js';
import { explainInitializeRefusal } from './initializeRefusal.js';
import { isNotification, isRequest, isResponse } from './jsonrpc.js';
import type { ClientPort } from './clientPort.js';
import { PendingRequests } from './pending.js';

export interface BridgeOptions {
  readonly logger: Logger;
  /** Tags for log lines (session id hash, command key). Never secrets. */
  readonly tags: Readonly<Record<string, string>>;
  /** Called for every message in either direction (activity tracking). */
  readonly onActivity?: () => void;
  /** Policy, audit and redaction on the stream; absent: messages pass untouched. */
  readonly guard?: MessageGuard;
  /** Observes request durations by method. */
  readonly requestSeconds?: { observe(labels: { method: string }, seconds: number): void };
  /** How long the child may take to answer `initialize` before the session ends, ms. @default 30000 */
  readonly initializeTimeoutMs?: number;
}

/** Server-to-client requests awaiting the client's answer, per session at most. */
const MAX_CHILD_REQUESTS = 1024;

export class Bridge {
  /** Fires once, as soon as closing begins (the session is then gone for new requests). */
  onclosing: (() => void) | undefined;
  /** Fires once, after both sides are closed. */
  onclose: (() => void) | undefined;

  private readonly pending = new PendingRequests();
  /** Ids of the child's own requests to the client that await the client's answer. */
  private readonly childRequests = new Set<RequestId>();
  private readonly dropThrottle = new LogThrottle(5, 10_000);
  private initializeTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  /** Set while a guard decision is asynchronous: later messages queue behind it, in order. */
  private inboundTail: Promise<void> | undefined;

  constructor(
    readonly client: ClientPort,
    readonly child: ChildPort,
    private readonly options: BridgeOptions,
  ) {}

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

  /**
   * Throws DuplicateRequestIdError when one of `messages` is a request whose id is already
   * in flight in this session (or repeated among them). Transports call it before they
   * accept a POST, so the refusal is the POST's own answer.
   */
  admit(messages: readonly JSONRPCMessage[]): void {
    let seen: Set<RequestId> | undefined;
    for (const message of messages) {
      if (!isRequest(message)) continue;
      if (this.pending.has(message.id) || seen?.has(message.id)) throw new DuplicateRequestIdError();
      if (messages.length > 1) (seen ??= new Set()).add(message.id);
    }
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
    if (isRequest(message)) {
      // Transports refuse a repeated id before this point; should one get here, it is
      // answered on the stream and never reaches the guard or the child.
      if (this.pending.has(message.id)) return this.deliver(errorBody(new DuplicateRequestIdError(), message.id) as JSONRPCMessage);
      // The id is taken from now on, while the policy decides too.
      this.pending.add(message);
      if (message.method === 'initialize') this.boundInitialize(message.id);
    } else if (isResponse(message)) {
      const id = (message as { id?: RequestId }).id;
      if (id === undefined || !this.childRequests.delete(id)) return this.dropped('a client response that matches no request of the server', message);
    }
    const guard = this.options.guard;
    if (!guard) return this.forward(message);
    if (this.inboundTail) {
      this.queueInbound(
        message,
        this.inboundTail.then(() => guard.inbound(message)),
      );
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
          if (isRequest(message)) this.failRequest(message.id, toWardenError(error));
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
      if (id !== undefined && id !== null) this.pending.delete(id);
      this.deliver(result.reply, id ?? undefined);
      return;
    }
    this.forward(message);
  }

  private forward(message: JSONRPCMessage): void {
    if (isNotification(message) && message.method === 'notifications/cancelled') {
      // Its id stays taken until the child answers; that late answer is then dropped.
      const id = message.params?.requestId;
      if (typeof id === 'string' || typeof id === 'number') this.pending.cancel(id);
    }
    this.child.send(message).catch((error: unknown) => {
      if (isRequest(message)) this.failRequest(message.id, toWardenError(error));
    });
  }

  private fromChild(message: JSONRPCMessage): void {
    this.options.onActivity?.();
    let relatedRequestId: RequestId | undefined;
    if (isResponse(message)) {
      // A response (result or error) to one of the client's requests, or nothing we know.
      const id = (message as { id?: RequestId }).id;
      const request = id === undefined ? undefined : this.pending.take(id);
      if (!request) return this.dropped('a reply that matches no request in flight', message);
      if (request.cancelled) return this.dropped('a late reply to a cancelled request', message);
      relatedRequestId = id;
      this.options.requestSeconds?.observe({ method: request.method }, request.elapsedMs / 1000);
      if (this.options.guard) message = this.options.guard.outbound(message, request.method);
      if (request.method === 'initialize' && 'error' in message) {
        // No session can follow a refused initialize: answer, then end it (and the child).
        this.deliver(explainInitializeRefusal(message), id);
        void this.close('initialize refused');
        return;
      }
    } else {
      if (isNotification(message) && message.method === 'notifications/progress') {
        // Attributed by the token as the child sent it (redaction may change a token that looks secret).
        relatedRequestId = this.pending.byProgressToken(message.params?.progressToken as string | number | undefined);
        if (relatedRequestId === undefined) return this.dropped('progress for no request in flight', message);
      }
      // Notifications and the child's own requests pass the same redaction as responses.
      const checked = this.options.guard ? this.options.guard.outboundOther(message) : message;
      if (checked === undefined) {
        this.dropped('a message the policy withheld', message);
        if (isRequest(message))
          void this.child
            .send(errorBody(new WardenError('upstream_protocol', 'the gateway withheld this request from the client'), message.id) as JSONRPCMessage)
            .catch(() => undefined);
        return;
      }
      if (isRequest(message)) {
        this.childRequests.add(message.id);
        // Bounded: a child that sends requests nobody answers forgets the oldest.
        if (this.childRequests.size > MAX_CHILD_REQUESTS) this.childRequests.delete(this.childRequests.values().next().value!);
      }
      message = checked;
    }
    this.deliver(message, relatedRequestId);
  }

  /**
   * A child that never answers `initialize` would hang the client and then linger (the
   * client never learned a session id): past the bound, the client gets an error and the
   * session (and so the child) ends.
   */
  private boundInitialize(id: RequestId): void {
    const ms = this.options.initializeTimeoutMs ?? 30_000;
    clearTimeout(this.initializeTimer);
    this.initializeTimer = setTimeout(() => {
      if (!this.pending.has(id)) return;
      this.failRequest(
        id,
        new WardenError('upstream_timeout', `the MCP server did not answer initialize within ${ms} ms; an admin can raise --initialize-timeout-ms`),
      );
      void this.close('initialize timeout');
    }, ms);
    this.initializeTimer.unref();
  }

  /** Logs (throttled) a message that could not be attributed; it goes nowhere. */
  private dropped(why: string, message: JSONRPCMessage): void {
    if (this.dropThrottle.allow((n) => this.options.logger.warn('unattributable messages dropped', { ...this.options.tags, count: n }))) {
      this.options.logger.warn(`dropped ${why}`, { ...this.options.tags, kind: 'method' in message ? 'notification' : 'response' });
    }
  }

  private deliver(message: JSONRPCMessage, relatedRequestId?: RequestId): void {
    if (this.closing) return;
    if (this.client.outbound.add(message)) {
      this.options.logger.warn('client is not reading its stream; dropping the session', {
        ...this.options.tags,
        backlogBytes: this.client.outbound.backlog,
      });
      this.client.outbound.destroyAll();
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
    clearTimeout(this.initializeTimer);
    this.options.logger.debug('closing session', { ...this.options.tags, why, inFlight: this.pending.size });
    const error = this.child.closeError ?? new UpstreamExitedError(why === 'child exited' ? 'exited' : 'session closed');
    const sends = this.pending.drain().map((id) => this.client.send(errorBody(error, id) as JSONRPCMessage, { relatedRequestId: id }).catch(() => undefined));
    await Promise.allSettled(sends);
    this.options.guard?.close();
    await Promise.allSettled([this.client.close(), this.child.close()]);
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.();
  }
}
