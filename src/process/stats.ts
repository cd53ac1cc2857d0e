/** Counters per command, reported by /status. */
export interface CommandStats {
  /** Processes started (cold and warm). */
  spawns: number;
  /** Start attempts repeated after a failed start. */
  restarts: number;
  /** Failed starts: spawn errors, exits in the startup window, exits before any reply. */
  failures: number;
  /** Children that exited on their own while serving a session. */
  crashes: number;
  /** The most recent exit codes (or signal names), newest last. */
  readonly lastExits: (number | string)[];
}

export function newStats(): CommandStats {
  return { spawns: 0, restarts: 0, failures: 0, crashes: 0, lastExits: [] };
}

export function recordExit(stats: CommandStats, exit: number | string, keep = 10): void {
  stats.lastExits.push(exit);
  if (stats.lastExits.length > keep) stats.lastExits.shift();
}
