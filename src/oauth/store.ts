/**
 * What the authorization server keeps: one record per grant (who approved which client for
 * which resource, its refresh-token generation, when it was last used) and single-use marks
 * (redeemed authorization codes). Tokens themselves are sealed and never stored; a revoked
 * grant's record is deleted, so its tokens stop working everywhere the store is shared.
 *
 * Two implementations: in memory (one machine; a restart forgets every grant, so everyone
 * signs in again) and Redis (src/oauth/redisStore.ts, every machine of a deployment).
 */

/** A grant as the admin sees it: never a token or an env value. */
export interface GrantRecord {
  readonly id: string;
  /** The OAuth client: its client_id and self-asserted name. */
  readonly clientId: string;
  readonly clientName: string;
  /** The credential entered at consent: `shared-secret` or `client:<id>`. */
  readonly via: string;
  readonly role: string;
  readonly resource: string;
  readonly scope: string;
  readonly createdAt: number;
  readonly lastUsedAt: number;
}

/**
 * What presenting refresh-token generation `n` did: `rotated` (it was current; the next
 * one is now), `replay` (the one just rotated, inside the grace window: the same answer
 * again), `reuse` (an older one, or after the window: the grant is revoked), `gone`.
 */
export type RotateOutcome =
  { readonly kind: 'rotated' } | { readonly kind: 'replay'; readonly response: string } | { readonly kind: 'reuse' } | { readonly kind: 'gone' };

export interface RotateRequest {
  /** The grant's OAuth client (its index lives as long as the grant). */
  readonly clientId: string;
  readonly generation: number;
  readonly at: number;
  readonly graceMs: number;
  /** The sealed answer to give a replay of this generation inside the grace window. */
  readonly response: string;
  /** The grant's new lifetime from `at`. */
  readonly ttlMs: number;
}

export interface GrantStore {
  /** True when every machine sees the same grants (Redis). */
  readonly shared: boolean;
  /** Stores a new grant (refresh generation 0), living `ttlMs` unless refreshed. */
  create(record: GrantRecord, ttlMs: number): Promise<void>;
  /** True while the grant exists (not revoked, not expired). */
  active(id: string): Promise<boolean>;
  /** Notes a use (for the admin's list). */
  touch(id: string, at: number): Promise<void>;
  rotate(id: string, request: RotateRequest): Promise<RotateOutcome>;
  /** True the first time `name` is claimed within `ttlMs` (a redeemed code). */
  claimOnce(name: string, ttlMs: number): Promise<boolean>;
  /** Deletes the grant; true when it existed. */
  revoke(id: string): Promise<boolean>;
  /** Deletes every grant of an OAuth client; the ids revoked. */
  revokeClient(clientId: string): Promise<string[]>;
  list(): Promise<GrantRecord[]>;
}

interface MemoryGrant {
  record: GrantRecord;
  generation: number;
  previous?: { generation: number; at: number; response: string };
  expiresAt: number;
}

/** The grant store of one machine. */
export class MemoryGrantStore implements GrantStore {
  readonly shared = false;
  private readonly grants = new Map<string, MemoryGrant>();
  private readonly claims = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  async create(record: GrantRecord, ttlMs: number): Promise<void> {
    this.prune();
    this.grants.set(record.id, { record, generation: 0, expiresAt: this.now() + ttlMs });
  }

  async active(id: string): Promise<boolean> {
    return this.live(id) !== undefined;
  }

  async touch(id: string, at: number): Promise<void> {
    const grant = this.live(id);
    if (grant) grant.record = { ...grant.record, lastUsedAt: at };
  }

  async rotate(id: string, request: RotateRequest): Promise<RotateOutcome> {
    const grant = this.live(id);
    if (!grant) return { kind: 'gone' };
    if (request.generation === grant.generation) {
      grant.previous = { generation: grant.generation, at: request.at, response: request.response };
      grant.generation += 1;
      grant.expiresAt = request.at + request.ttlMs;
      grant.record = { ...grant.record, lastUsedAt: request.at };
      return { kind: 'rotated' };
    }
    const previous = grant.previous;
    if (previous && previous.generation === request.generation && request.at - previous.at <= request.graceMs) {
      return { kind: 'replay', response: previous.response };
    }
    this.grants.delete(id);
    return { kind: 'reuse' };
  }

  async claimOnce(name: string, ttlMs: number): Promise<boolean> {
    const now = this.now();
    for (const [claimed, until] of this.claims) if (until < now) this.claims.delete(claimed);
    if (this.claims.has(name)) return false;
    this.claims.set(name, now + ttlMs);
    return true;
  }

  async revoke(id: string): Promise<boolean> {
    return this.grants.delete(id);
  }

  async revokeClient(clientId: string): Promise<string[]> {
    const ids = [...this.grants.values()].filter((g) => g.record.clientId === clientId).map((g) => g.record.id);
    for (const id of ids) this.grants.delete(id);
    return ids;
  }

  async list(): Promise<GrantRecord[]> {
    this.prune();
    return [...this.grants.values()].map((g) => g.record);
  }

  private live(id: string): MemoryGrant | undefined {
    const grant = this.grants.get(id);
    if (grant && grant.expiresAt < this.now()) {
      this.grants.delete(id);
      return undefined;
    }
    return grant;
  }

  private prune(): void {
    const now = this.now();
    for (const [id, grant] of this.grants) if (grant.expiresAt < now) this.grants.delete(id);
  }
}
