/**
 * Signalling a child's whole tree. Children are spawned as process-group leaders, so the
 * group reaches descendants even after their parent died (re-parented grandchildren);
 * tree-kill also reaches descendants that moved to a group of their own while their
 * parent lives.
 */
import treeKill from 'tree-kill';

export type StopSignal = 'SIGTERM' | 'SIGKILL';

/** Sends `signal` to the process group led by `pid`; false when the group is gone. */
export function signalGroup(pid: number, signal: StopSignal): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Sends `signal` to `pid`'s descendants and itself, walking the live tree. */
export function signalTree(pid: number, signal: StopSignal): Promise<void> {
  return new Promise((resolve) => {
    treeKill(pid, signal, () => resolve());
  });
}

/** Group first (cheap, synchronous), then the tree walk for escaped descendants. */
export async function signalAll(pid: number, signal: StopSignal): Promise<void> {
  signalGroup(pid, signal);
  await signalTree(pid, signal);
}

/** Resolves true when `done` settles within `ms`, false otherwise; the timer is unref'd. */
export function within(done: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    timer.unref();
    done.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(true);
      },
    );
  });
}
