/**
 * How much a client is behind. While every response stream of a session can take more
 * bytes, the backlog is zero (the HTTP layer pulls as fast as it writes). Once one needs
 * `drain`, every message handed to the client is counted until it drains; past the
 * bound the client is not reading and the session should be dropped.
 */
import type { ServerResponse } from 'node:http';

export class OutboundMeter {
  private readonly open = new Set<ServerResponse>();
  private backlogBytes = 0;

  /** @param maxBytes the backlog a session may build before it is dropped */
  constructor(private readonly maxBytes: number) {}

  get backlog(): number {
    return this.backlogBytes;
  }

  /** Watches a response stream of this session until it closes. */
  track(res: ServerResponse): void {
    this.open.add(res);
    res.once('close', () => this.open.delete(res));
  }

  /** Cuts every open stream of the session (a client that stopped reading). */
  destroyAll(): void {
    for (const res of this.open) res.destroy();
    this.open.clear();
  }

  /** Accounts one outgoing message; true once the backlog passed the bound. */
  add(message: unknown): boolean {
    let backedUp = false;
    for (const res of this.open) {
      if (res.writableNeedDrain) {
        backedUp = true;
        break;
      }
    }
    if (!backedUp) {
      this.backlogBytes = 0;
      return false;
    }
    this.backlogBytes += JSON.stringify(message).length;
    return this.backlogBytes > this.maxBytes;
  }
}
