/**
 * Live client sessions of both transports, by session id. A session owns one bridge
 * (and so one child); closing it stops that child. Lookups check the transport kind,
 * the command and the principal, so a session id is useless to anyone else.
 */
import { createHash } from 'node:crypto';
import { samePrincipal, type Principal } from '../auth/bearer.js';
import type { Bridge } from '../bridge/bridge.js';
import type { ModernClientPort } from '../modern/port.js';
import type { SseSessionTransport } from './sseSession.js';
import type { StreamableSessionTransport } from './streamableSession.js';

export type TransportKind = 'sse' | 'streamable' | 'modern';

/** The client transport of each kind of session. */
export interface ClientTransportOf {
  readonly sse: SseSessionTransport;
  readonly streamable: StreamableSessionTransport;
  /** A modern (2026-07-28) conversation: one principal, key and env, no session id of its own. */
  readonly modern: ModernClientPort;
}

export interface SessionInfo {
  readonly id: string;
  readonly kind: TransportKind;
  readonly commandKey: string;
  readonly principal: Principal;
}

export class Session<K extends TransportKind = TransportKind> implements SessionInfo {
  readonly createdAt = Date.now();
  lastActivity = Date.now();
  /** Short, non-reversible id for logs and audit. */
  readonly idHash: string;

  constructor(
    readonly id: string,
    readonly kind: K,
    readonly commandKey: string,
    readonly principal: Principal,
    /** Whom per-client limits count this session against. */
    readonly clientKey: string,
    /** The client side of the session, typed by its kind. */
    readonly transport: ClientTransportOf[K],
    readonly bridge: Bridge,
  ) {
    this.idHash = hashSessionId(id);
  }

  touch(): void {
    this.lastActivity = Date.now();
  }

  /** Holding something open (a listen stream, a request waiting for the client's input): never idle. */
  get busy(): boolean {
    return 'busy' in this.transport && this.transport.busy;
  }

  close(why?: string): Promise<void> {
    return this.bridge.close(why);
  }
}

function isKind<K extends TransportKind>(session: Session, kind: K): session is Session<K> {
  return session.kind === kind;
}

export function hashSessionId(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 16);
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  get size(): number {
    return this.sessions.size;
  }

  add(session: Session): void {
    this.sessions.set(session.id, session);
  }

  delete(session: Session): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
  }

  /**
   * The session, if it exists and belongs to this transport, command and principal, with the
   * role it was opened with: a caller whose role changed (an identity provider's token with
   * other groups) gets a new session under the new role's policy, never the old one's.
   */
  find<K extends TransportKind>(id: string | undefined, kind: K, commandKey: string, principal: Principal | undefined): Session<K> | undefined {
    if (id === undefined) return undefined;
    const session = this.sessions.get(id);
    if (!session || session.commandKey !== commandKey || !isKind(session, kind)) return undefined;
    if (!principal || !samePrincipal(session.principal, principal) || session.principal.role !== principal.role) return undefined;
    return session;
  }

  /** Open sessions of one client. */
  countByClient(clientKey: string): number {
    let n = 0;
    for (const session of this.sessions.values()) if (session.clientKey === clientKey) n += 1;
    return n;
  }

  /** Open sessions of one command. */
  countByCommand(commandKey: string): number {
    let n = 0;
    for (const session of this.sessions.values()) if (session.commandKey === commandKey) n += 1;
    return n;
  }

  all(): Session[] {
    return [...this.sessions.values()];
  }

  async closeAll(why = 'shutdown'): Promise<void> {
    await Promise.allSettled(this.all().map((s) => s.close(why)));
  }
}
