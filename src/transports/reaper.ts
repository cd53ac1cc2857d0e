/**
 * Closes sessions that went quiet (no message in either direction for `idleTimeoutMs`;
 * keep-alive comments don't count) or outlived `maxSessionMs`. One unref'd timer.
 */
import type { Logger } from '../logging/logger.js';
import type { SessionStore } from './sessions.js';

export interface ReaperOptions {
  /** Idle time after which a session is closed. @default 1800000 (30 min) */
  readonly idleTimeoutMs: number;
  /** Longest a session may live; 0 for no limit. @default 0 */
  readonly maxSessionMs: number;
  readonly logger: Logger;
}

export class SessionReaper {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sessions: SessionStore,
    private readonly options: ReaperOptions,
  ) {}

  start(): void {
    if (this.timer) return;
    const limits = [this.options.idleTimeoutMs, this.options.maxSessionMs].filter((ms) => ms > 0);
    if (limits.length === 0) return;
    const every = Math.max(25, Math.min(30_000, Math.min(...limits) / 4));
    this.timer = setInterval(() => this.sweep(Date.now()), every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Closes what is due at `now`; returns how many sessions were closed. */
  sweep(now: number): number {
    const { idleTimeoutMs, maxSessionMs, logger } = this.options;
    let closed = 0;
    for (const session of this.sessions.all()) {
      // A session waiting for a reply is not idle, up to twice the timeout (a hung server
      // still gets reaped).
      const limit = session.bridge.inFlight > 0 ? idleTimeoutMs * 2 : idleTimeoutMs;
      const idle = idleTimeoutMs > 0 && now - session.lastActivity >= limit;
      const old = maxSessionMs > 0 && now - session.createdAt >= maxSessionMs;
      if (!old && session.busy) continue;
      if (!idle && !old) continue;
      const why = idle ? 'idle timeout' : 'maximum session lifetime';
      logger.info('reaping session', { session: session.idHash, command: session.commandKey, why });
      void session.close(why);
      closed += 1;
    }
    return closed;
  }
}
