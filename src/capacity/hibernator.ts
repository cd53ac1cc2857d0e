/**
 * Puts quiet sessions' children to sleep: a session whose entry says `"idle": "hibernate"`
 * and that has been idle (src/capacity/evictor.ts `isIdle`) for its entry's
 * `hibernateAfterMs` (else `--hibernate-after-ms`) since its last message either way loses
 * its child; the session stays (src/process/hibernate.ts). One unref'd timer.
 */
import type { Logger } from '../logging/logger.js';
import { HibernatingPort } from '../process/hibernate.js';
import type { SessionStore } from '../transports/sessions.js';
import { isIdle } from './evictor.js';

export interface HibernatorOptions {
  /** How often sessions are looked at, ms. */
  readonly everyMs: number;
  readonly logger: Logger;
}

/** How often to look, for the shortest quiet time in use: a quarter of it, within 25 ms..5 s. */
export function sweepInterval(afterMs: readonly number[]): number {
  return Math.max(25, Math.min(5_000, Math.floor(Math.min(...afterMs) / 4)));
}

export class Hibernator {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sessions: SessionStore,
    private readonly options: HibernatorOptions,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sweep(Date.now()), this.options.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Puts to sleep every session due at `now`; returns how many. */
  sweep(now: number): number {
    let n = 0;
    for (const session of this.sessions.all()) {
      const port = session.bridge.child;
      if (!(port instanceof HibernatingPort) || port.current === undefined) continue;
      if (now - session.lastActivity < port.afterMs || !isIdle(session)) continue;
      void port
        .hibernate()
        .catch((error: unknown) => this.options.logger.warn('could not hibernate a session', { session: session.idHash, error: String(error) }));
      n += 1;
    }
    return n;
  }
}
