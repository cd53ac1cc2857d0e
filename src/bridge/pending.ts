/**
 * Requests a client sent that the child has not answered yet, with the progress tokens
 * they carry (so progress notifications find their request's stream).
 */
import type { JSONRPCRequest, RequestId } from '@modelcontextprotocol/sdk/types.js';

type ProgressToken = string | number;

export class PendingRequests {
  private readonly byId = new Map<RequestId, ProgressToken | undefined>();
  private readonly byToken = new Map<ProgressToken, RequestId>();

  get size(): number {
    return this.byId.size;
  }

  add(request: JSONRPCRequest): void {
    const token = request.params?._meta?.progressToken;
    const progressToken = typeof token === 'string' || typeof token === 'number' ? token : undefined;
    this.byId.set(request.id, progressToken);
    if (progressToken !== undefined) this.byToken.set(progressToken, request.id);
  }

  delete(id: RequestId): boolean {
    if (!this.byId.has(id)) return false;
    const token = this.byId.get(id);
    this.byId.delete(id);
    if (token !== undefined) this.byToken.delete(token);
    return true;
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
