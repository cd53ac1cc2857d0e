/**
 * The client side of a legacy HTTP+SSE session as an SDK Transport: `start()` opens the
 * event stream and announces the endpoint to POST to; messages from those POSTs arrive
 * through `receive()` (already validated); `send()` writes `message` events. `close()` is
 * idempotent and `onclose` fires once, whether the gateway or the client ended the stream.
 * It meters its one stream, so the bridge can tell a client that stopped reading.
 */
import type { ServerResponse } from 'node:http';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { ClientPort } from '../bridge/clientPort.js';
import { plainSessionId, type MintSessionId } from '../fly/sessionIds.js';
import { EventStream, messageEvent } from './eventStream.js';
import { OutboundMeter } from './outboundMeter.js';

export class SseSessionTransport implements ClientPort {
  onmessage?: (message: JSONRPCMessage) => void;
  onerror?: (error: Error) => void;
  onclose?: () => void;

  readonly sessionId: string;
  private stream: EventStream | undefined;
  private ended = false;
  readonly outbound: OutboundMeter;

  /**
   * @param endpoint path the client POSTs to (the session id is added as `?sessionId=`)
   * @param keepAliveMs interval of keep-alive comments
   * @param maxBacklogBytes how far the client may fall behind before the session is dropped
   * @param mintSessionId where the session id comes from (on Fly.io it names the machine)
   */
  constructor(
    private readonly endpoint: string,
    private readonly res: ServerResponse,
    private readonly keepAliveMs: number,
    maxBacklogBytes: number,
    mintSessionId: MintSessionId = plainSessionId,
  ) {
    this.sessionId = mintSessionId();
    this.outbound = new OutboundMeter(maxBacklogBytes);
    this.outbound.track(res);
  }

  async start(): Promise<void> {
    if (this.stream) throw new Error('SseSessionTransport already started');
    this.stream = new EventStream(this.res, this.keepAliveMs);
    this.res.once('close', () => this.finish());
    this.stream.write(`event: endpoint\ndata: ${this.endpoint}?sessionId=${this.sessionId}\n\n`);
  }

  /** A message the client POSTed. */
  receive(message: JSONRPCMessage): void {
    if (!this.ended) this.onmessage?.(message);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (!this.stream?.write(messageEvent(message))) throw new Error('Not connected');
  }

  async close(): Promise<void> {
    this.stream?.end();
    this.finish();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    const onclose = this.onclose;
    this.onclose = undefined;
    onclose?.();
  }
}
