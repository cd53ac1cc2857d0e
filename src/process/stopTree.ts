/**
 * What a stop signals, and the bounded waits between its stages.
 *
 * On Linux the target is a {@link ProcTree}: the processes below the child and their
 * process groups, read from /proc before the first signal and again before each stage, so
 * a parent that dies first does not hide its children and a helper that moved to a group
 * of its own (`detached: true`) is still reached. Each stage signals the child's group,
 * every remembered group and every remembered process (checked against pid reuse).
 *
 * Without /proc the target is the older one: the child's group, then tree-kill's `ps` walk
 * of the live tree (which finds nothing once the child is gone).
 */
import treeKill from 'tree-kill';
import { hasProc } from './procfs.js';
import { ProcTree, type StopSignal } from './procTree.js';

export type { StopSignal } from './procTree.js';

/** The processes a stop reaches, besides the child itself. */
export interface StopTarget {
  /** Processes seen below the child so far (empty without /proc). */
  readonly pids: readonly number[];
  /** Reads the tree again, remembering processes that appeared since. */
  refresh(): void;
  /** Signals the child's group, every remembered group and process; resolves once sent. */
  signal(signal: StopSignal): Promise<void>;
  /** SIGKILL to remembered groups that still have members: the sweep once the child is gone. */
  sweep(): void;
  /** True while a remembered process other than the child still runs. */
  othersAlive(): boolean;
}

let procAvailable: boolean | undefined;

/** The stop target for a child just spawned as the leader of its own process group. */
export function stopTarget(pid: number): StopTarget {
  procAvailable ??= hasProc();
  return procAvailable ? new ProcTarget(new ProcTree(pid)) : new WalkTarget(pid);
}

class ProcTarget implements StopTarget {
  constructor(private readonly tree: ProcTree) {}
  get pids(): readonly number[] {
    return this.tree.pids;
  }
  refresh(): void {
    this.tree.refresh();
  }
  signal(signal: StopSignal): Promise<void> {
    this.tree.signal(signal);
    return Promise.resolve();
  }
  sweep(): void {
    this.tree.signalGroups('SIGKILL');
  }
  othersAlive(): boolean {
    return this.tree.othersAlive();
  }
}

/** Without /proc: the group, then tree-kill's walk of whatever is still attached to the child. */
class WalkTarget implements StopTarget {
  readonly pids: readonly number[] = [];
  constructor(private readonly pid: number) {}
  refresh(): void {}
  async signal(signal: StopSignal): Promise<void> {
    signalGroup(this.pid, signal);
    await signalTree(this.pid, signal);
  }
  sweep(): void {
    signalGroup(this.pid, 'SIGKILL');
  }
  othersAlive(): boolean {
    return false;
  }
}

/** Sends `signal` to the process group led by `pid`; false when the group is gone. */
function signalGroup(pid: number, signal: StopSignal): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Sends `signal` to `pid`'s descendants and itself, walking the live tree with `ps`. */
function signalTree(pid: number, signal: StopSignal): Promise<void> {
  return new Promise((resolve) => {
    treeKill(pid, signal, () => resolve());
  });
}

/**
 * Resolves true as soon as `probe()` is true (checked now, then every `intervalMs`), false
 * once `ms` have passed. Its timers are unref'd and cleared when it resolves.
 */
export function until(probe: () => boolean, ms: number, intervalMs = 20): Promise<boolean> {
  if (probe()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const finish = (value: boolean): void => {
      clearInterval(poll);
      clearTimeout(deadline);
      resolve(value);
    };
    const poll = setInterval(() => {
      if (probe()) finish(true);
    }, intervalMs);
    const deadline = setTimeout(() => finish(probe()), ms);
    poll.unref();
    deadline.unref();
  });
}
