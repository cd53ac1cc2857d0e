/**
 * One open `text/event-stream` response. Events written in the same turn of the event loop
 * leave in one socket write (the response is corked until the turn ends), keep-alive
 * comments keep idle proxies from cutting it, and the headers keep proxies from buffering.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

export const EVENT_STREAM_HEADERS: Readonly<OutgoingHttpHeaders> = Object.freeze({
  'Content-Type': 'text/event-stream',
  'Cache-Control': 'no-cache, no-transform',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
});

/** One `message` event carrying a JSON-RPC message. */
export function messageEvent(message: unknown): string {
  return `event: message\ndata: ${JSON.stringify(message)}\n\n`;
}

export class EventStream {
  private keepAlive: NodeJS.Timeout | undefined;
  private corked = false;
  private wrote = false;

  /** Sends the headers; `: keepalive` comments follow every `keepAliveMs` (0: none). */
  constructor(
    readonly res: ServerResponse,
    keepAliveMs: number,
    headers: OutgoingHttpHeaders = {},
  ) {
    res.writeHead(200, { ...EVENT_STREAM_HEADERS, ...headers });
    if (keepAliveMs > 0 && this.open) {
      this.keepAlive = setInterval(() => this.write(': keepalive\n\n'), keepAliveMs);
      this.keepAlive.unref();
    }
    res.once('close', () => this.stopKeepAlive());
  }

  /** False once the response ended or its connection closed. */
  get open(): boolean {
    return !this.res.writableEnded && !this.res.destroyed;
  }

  /** Sends the headers now, before any event (a client may wait for them). */
  flush(): void {
    // `headersSent` turns true at writeHead, before anything reached the socket.
    if (!this.wrote) this.res.flushHeaders();
    this.wrote = true;
  }

  /** Writes raw event text; false when the stream is no longer open. */
  write(text: string): boolean {
    if (!this.open) return false;
    if (!this.corked) {
      this.corked = true;
      this.res.cork();
      setImmediate(this.uncork);
    }
    this.wrote = true;
    this.res.write(text);
    return true;
  }

  /** Ends the response (after anything still corked). Idempotent. */
  end(): void {
    this.stopKeepAlive();
    // Uncork first: Node 22 writes the closing chunk of a corked chunked response before
    // the chunks it holds, which the client reads as a broken response.
    this.uncork();
    if (this.open) this.res.end();
  }

  private readonly uncork = (): void => {
    if (!this.corked) return;
    this.corked = false;
    this.res.uncork();
  };

  private stopKeepAlive(): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }
}
