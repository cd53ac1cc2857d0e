/**
 * `logging/setLevel` on a shared child, kept per session. Each session's level is
 * remembered here (the session is answered at once); the child is set to the most verbose
 * level any open session asked for, and told again only when that changes. Until some
 * session asks, the child keeps its own default; when the sessions that asked have all
 * left, it keeps the last level it was given. `notifications/message` reaches a session
 * only at or above the level it asked for; a session that never asked gets everything the
 * child sends.
 */
import type { LoggingLevel } from '@modelcontextprotocol/sdk/types.js';

/** RFC 5424 severities, least severe first. */
export const LOGGING_LEVELS: readonly LoggingLevel[] = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

function rank(level: unknown): number {
  return LOGGING_LEVELS.indexOf(level as LoggingLevel);
}

export class SharedLogLevels<Session> {
  /** session -> rank of the level it asked for */
  private readonly chosen = new Map<Session, number>();
  /** The rank the child was last told; undefined while it keeps its default. */
  private childRank: number | undefined;

  /** @param tell sets the child's level (its answer is the caller's concern) */
  constructor(private readonly tell: (level: LoggingLevel) => void) {}

  /** Remembers `session`'s level; false (and nothing changes) when it is not one of the eight. */
  set(session: Session, level: unknown): boolean {
    const r = rank(level);
    if (r === -1) return false;
    this.chosen.set(session, r);
    this.follow();
    return true;
  }

  leave(session: Session): void {
    if (this.chosen.delete(session)) this.follow();
  }

  /** Whether a message at `level` is for `session`. A level that is none of the eight reaches only sessions that never asked. */
  admits(session: Session, level: unknown): boolean {
    const asked = this.chosen.get(session);
    return asked === undefined || rank(level) >= asked;
  }

  private follow(): void {
    let least: number | undefined;
    for (const r of this.chosen.values()) if (least === undefined || r < least) least = r;
    if (least === undefined || least === this.childRank) return;
    this.childRank = least;
    this.tell(LOGGING_LEVELS[least]!);
  }
}
