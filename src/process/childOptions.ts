/**
 * Options of a ChildTransport (its stop stages, line cap, tree sampling, byte counters) and
 * what its exit reports.
 */

/** How long each stage of a stop may take before the next, harsher one. */
export interface StopTimeouts {
  /** After closing stdin, wait this long for a voluntary exit. @default 1000 */
  readonly eofMs: number;
  /** After SIGTERM to the tree, wait this long before SIGKILL. @default 2000 */
  readonly termMs: number;
  /** After SIGKILL, wait at most this long for the child and its listed descendants to be gone. @default 2000 */
  readonly killMs: number;
}

export const DEFAULT_STOP_TIMEOUTS: StopTimeouts = { eofMs: 1000, termMs: 2000, killMs: 2000 };

export interface ChildTransportOptions {
  /** Longest line the child may write on stdout, in bytes. @default 16 MiB */
  readonly maxLineBytes?: number;
  readonly stopTimeouts?: StopTimeouts;
  /**
   * After the child writes output, list the processes below it once within this many ms,
   * so helpers it started are known if it later dies on its own. 0: only when stopping.
   * @default 1000
   */
  readonly treeSampleMs?: number;
  /** Counts bytes written to stdin (`in`) and read from stdout (`out`). */
  readonly bytes?: { readonly in: { inc(n: number): void }; readonly out: { inc(n: number): void } };
}

export const DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_TREE_SAMPLE_MS = 1000;

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: string | null;
  /** `stopped`: the gateway asked it to stop; `exited`: it ended on its own. */
  readonly reason: 'stopped' | 'exited';
}
