/**
 * A bounded wait on a promise, for the process layer's deadlines (startup window, stop
 * stages, initialize of a shared child). The timer is unref'd: a pending wait never keeps
 * the gateway alive.
 */

/** Resolves true when `done` settles (either way) within `ms`, false otherwise. */
export function within(done: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    timer.unref();
    const settled = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    done.then(settled, settled);
  });
}
