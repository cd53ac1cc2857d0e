/**
 * Requests a client sent that the child has not answered yet, with the progress tokens
 * they carry (so progress notifications find their request's stream). An id stays taken
 * from the moment the request arrives (before any policy decision) until its reply; a
 * request the client cancelled keeps its id taken, so a late reply to it is recognised
 * and dropped instead of answering a newer request that reused the id.
 */
import type { JSONRPCRequest, RequestId } from '@modelcontextprotocol/sdk/types.js';

type ProgressToken = string | number;

interface Entry {
  readonly method: string;
  readonly token: ProgressToken | undefined;
  readonly at: number;
  cancelled: boolean;
}

/** What the reply to a pending request is matched with. */
export interface TakenRequest {
  readonly method: string;
  readonly elapsedMs: number;
  /** The client cancelled it: its reply must not be forwarded. */
  readonly cancelled: boolean;
}

/** Cancelled requests remembered per session at most (the oldest is forgotten first). */
const MAX_CANCELLED = 1024;

export class PendingRequests {
  private readonly byId = new Map<RequestId, Entry>();
  private readonly byToken = new Map<ProgressToken, RequestId>();
  private readonly cancelledIds: RequestId[] = [];

  /** Requests still awaiting a reply (cancelled ones excluded). */
  get size(): number {
    return this.byId.size - this.cancelledIds.length;
  }

  /** True while `id` is taken: in flight, or cancelled and not yet answered. */
  has(id: RequestId): boolean {
    return this.byId.has(id);
  }

  add(request: JSONRPCRequest): void {
    const token = request.params?._meta?.progressToken;
    const progressToken = typeof token === 'string' || typeof token === 'number' ? token : undefined;
    this.byId.set(request.id, { method: request.method, token: progressToken, at: performance.now(), cancelled: false });
    if (progressToken !== undefined) this.byToken.set(progressToken, request.id);
  }

  delete(id: RequestId): boolean {
    return this.take(id) !== undefined;
  }

  /** The client cancelled `id`: its progress stops, its id stays taken until a reply comes. */
  cancel(id: RequestId): boolean {
    const entry = this.byId.get(id);
    if (!entry || entry.cancelled) return false;
    entry.cancelled = true;
    this.forgetToken(id, entry);
    this.cancelledIds.push(id);
    if (this.cancelledIds.length > MAX_CANCELLED) this.take(this.cancelledIds[0]!);
    return true;
  }

  /** Removes a pending request: its method, how long it waited, whether it was cancelled. */
  take(id: RequestId): TakenRequest | undefined {
    const entry = this.byId.get(id);
    if (!entry) return undefined;
    this.byId.delete(id);
    this.forgetToken(id, entry);
    if (entry.cancelled) this.cancelledIds.splice(this.cancelledIds.indexOf(id), 1);
    return { method: entry.method, elapsedMs: performance.now() - entry.at, cancelled: entry.cancelled };
  }

  byProgressToken(token: ProgressToken | undefined): RequestId | undefined {
    return token === undefined ? undefined : this.byToken.get(token);
  }

  /** Removes every request and returns the ids still awaiting a reply (not the cancelled). */
  drain(): RequestId[] {
    const ids = [...this.byId].filter(([, entry]) => !entry.cancelled).map(([id]) => id);
    this.byId.clear();
    this.byToken.clear();
    this.cancelledIds.length = 0;
    return ids;
  }

  private forgetToken(id: RequestId, entry: Entry): void {
    if (entry.token !== undefined && this.byToken.get(entry.token) === id) this.byToken.delete(entry.token);
  }
}
