/**
 * Which sessions give way, and how. A session may give way only when it is idle: nothing in
 * flight (`bridge.inFlight === 0`), no listen stream open and no multi round-trip request
 * held (`Session.busy`). Among those, the one with the oldest activity (a message either
 * way, `Session.lastActivity`) goes first.
 *
 * - For memory (the budget's releaser): idle sessions that hold a child, oldest first, until
 *   their children cover the shortfall. A session whose entry hibernates only loses its
 *   child; any other session is closed. Sessions on a shared child hold none of their own.
 * - At `--max-sessions-per-client`: the client's least recently used session, if it has been
 *   idle at least `--evict-idle-ms`, is closed so the client's new one can open. Colleagues
 *   who share a secret are one client: a session in use is never taken from them.
 */
import type { Logger } from '../logging/logger.js';
import { ChildTransport } from '../process/childTransport.js';
import { HibernatingPort } from '../process/hibernate.js';
import type { Session, SessionStore } from '../transports/sessions.js';
import type { Capacity } from './capacity.js';
import type { MemorySampler } from './sampler.js';

export type EvictionReason = 'memory_budget' | 'client_cap';

export interface EvictorDeps {
  readonly sessions: SessionStore;
  readonly sampler: MemorySampler;
  readonly capacity: Capacity;
  readonly logger: Logger;
  /** Told of every session closed or put to sleep to make room. */
  readonly onEvict?: (reason: EvictionReason, hibernated: boolean) => void;
}

/** The child a session holds now: none while it sleeps or when it is on a shared child. */
export function ownChild(session: Session): ChildTransport | undefined {
  const port = session.bridge.child;
  if (port instanceof ChildTransport) return port;
  if (port instanceof HibernatingPort) return port.current;
  return undefined;
}

/** True when nothing of the session is under way. */
export function isIdle(session: Session): boolean {
  return session.bridge.inFlight === 0 && !session.busy;
}

function oldestFirst(a: Session, b: Session): number {
  return a.lastActivity - b.lastActivity;
}

export class IdleEvictor {
  constructor(private readonly deps: EvictorDeps) {}

  /**
   * Frees at least `shortfall` bytes of child memory if idle sessions hold that much (or
   * what they hold); resolves once their children are gone. False when no session could give way.
   */
  readonly forMemory = async (shortfall: number): Promise<boolean> => {
    const { sessions, sampler, capacity, logger } = this.deps;
    const candidates = sessions
      .all()
      .filter((s) => isIdle(s) && ownChild(s) !== undefined)
      .sort(oldestFirst);
    const stops: Promise<boolean>[] = [];
    let freed = 0;
    for (const session of candidates) {
      if (freed >= shortfall) break;
      const child = ownChild(session)!;
      freed += sampler.cost(child, capacity.expectedCost(child.spec));
      const port = session.bridge.child;
      const hibernates = port instanceof HibernatingPort;
      logger.info(hibernates ? 'hibernating an idle session to free memory' : 'closing an idle session to free memory', {
        session: session.idHash,
        command: session.commandKey,
        idleMs: Date.now() - session.lastActivity,
      });
      this.deps.onEvict?.('memory_budget', hibernates);
      stops.push(hibernates ? port.hibernate() : session.close('evicted to free memory for a new session').then(() => true));
    }
    const done = await Promise.all(stops);
    return done.some(Boolean);
  };

  /**
   * Closes `clientKey`'s least recently used session if it has been idle for `idleMs`;
   * resolves true once it is closed, false when the client has none that idle.
   */
  async forClient(clientKey: string, idleMs: number): Promise<boolean> {
    const now = Date.now();
    const victim = this.deps.sessions
      .all()
      .filter((s) => s.clientKey === clientKey && isIdle(s) && now - s.lastActivity >= idleMs)
      .sort(oldestFirst)[0];
    if (!victim) return false;
    this.deps.logger.info('closing the least recently used session of a client at its session limit', {
      session: victim.idHash,
      command: victim.commandKey,
      idleMs: now - victim.lastActivity,
    });
    this.deps.onEvict?.('client_cap', false);
    await victim.close('evicted: its client opened a new session at --max-sessions-per-client');
    return true;
  }
}
