/**
 * Requests a client sent that the child has not answered yet, with the progress tokens
 * they carry (so progress notifications find their request's stream).
 */
import type { JSONRPCRequest, RequestId } from '@modelcontextprotocol/sdk/types.js';

type ProgressToken = string | number;

export class PendingRequests {
  private readonly byId = new Map<RequestId, { readonly method: string; readonly token: ProgressToken | undefined; readonly at: number }>();

  private readonly byToken = new Map<ProgressToken, RequestId>();

  get size(): number {
    return this.byId.size;
  }

  add(request: JSONRPCRequest): void {
    const token = request.params?._meta?.progressToken;
    const progressToken = typeof token === 'string' || typeof token === 'number' ? token : undefined;
    this.byId.set(request.id, { method: request.method, token: progressToken, at: performance.now() });
    if (progressToken !== undefined) this.byToken.set(progressToken, request.id);
  }

  delete(id: RequestId): boolean {
    return this.take(id) !== undefined;
  }

  /** Removes a pending request: its method and how long it waited (undefined if not pending). */
  take(id: RequestId): { readonly method: string; readonly elapsedMs: number } | undefined {
    const entry = this.byId.get(id);
    if (!entry) return undefined;
    this.byId.delete(id);
    if (entry.token !== undefined && this.byToken.get(entry.token) === id) this.byToken.delete(entry.token);
    return { method: entry.method, elapsedMs: performance.now() - entry.at };
  }

  byProgressToken(token: ProgressToken | undefined): RequestId | undefined {
    return token === undefined ? undefined : this.byToken.get(token);
  }

  /** Removes and returns every pending id. */
  drain(): RequestId[] {
    const ids = [...this.byId.keys()];
    this.byId.clear();
    this.byToken.clear();
    return ids;
  }
}
