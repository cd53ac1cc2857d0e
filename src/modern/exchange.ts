/**
 * The HTTP response of one modern request. The final reply goes back as one
 * `application/json` body when it is the first thing to send and comes within the reply
 * window; otherwise (progress or a log line first, or a slow reply) the response becomes an
 * event stream scoped to this request, which ends with the reply. A client that closes the
 * response before the reply has cancelled the request (`onAbandoned`).
 */
import type { ServerResponse } from 'node:http';
import { EventStream, messageEvent } from '../transports/eventStream.js';

export interface ExchangeOptions {
  /** How long to wait for the reply to answer it as JSON, ms; 0: always an event stream. */
  readonly jsonReplyWindowMs: number;
  /** Keep-alive comment interval on the event stream, ms. */
  readonly keepAliveMs: number;
}

export class ModernExchange {
  private stream: EventStream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private finished = false;

  /** @param onAbandoned called once if the client goes away before the reply was written */
  constructor(
    readonly res: ServerResponse,
    private readonly options: ExchangeOptions,
    onAbandoned: () => void,
    streamAtOnce = false,
  ) {
    if (streamAtOnce || options.jsonReplyWindowMs === 0) this.toStream().flush();
    else this.timer = setTimeout(() => this.toStream().flush(), options.jsonReplyWindowMs);
    res.once('close', () => {
      this.stopTimer();
      if (!this.finished) {
        this.finished = true;
        onAbandoned();
      }
    });
  }

  /** False once the reply was written or the client left. */
  get open(): boolean {
    return !this.finished;
  }

  /** A notification that belongs to this request (progress, a log line): the response streams. */
  notify(message: unknown): void {
    if (this.finished) return;
    this.toStream().write(messageEvent(message));
  }

  /** The final reply; the response ends with it. */
  finish(message: unknown, status = 200): void {
    if (this.finished) return;
    this.finished = true;
    this.stopTimer();
    if (this.res.destroyed || this.res.writableEnded) return;
    if (!this.stream) {
      this.res.writeHead(status, { 'Content-Type': 'application/json' });
      this.res.end(JSON.stringify(message));
      return;
    }
    this.stream.write(messageEvent(message));
    this.stream.end();
  }

  private toStream(): EventStream {
    this.stopTimer();
    this.stream ??= new EventStream(this.res, this.options.keepAliveMs);
    return this.stream;
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
