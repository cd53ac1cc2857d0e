/**
 * Process-tree helpers for tests (Linux only): read /proc directly, never spawn `ps`.
 * Every reader tolerates processes vanishing mid-read.
 */
import { readFileSync, readdirSync } from 'node:fs';

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // ENOENT / ESRCH: the process is gone
  }
}

/** Fields of /proc/<pid>/stat after the comm field, which may contain spaces and parentheses. */
function statFields(pid: number): string[] | undefined {
  const stat = readOrUndefined(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  const close = stat.lastIndexOf(')');
  if (close === -1) return undefined;
  // [0] = state, [1] = ppid, ...
  return stat.slice(close + 2).split(' ');
}

/** The state letter from /proc/<pid>/stat ('R', 'S', 'D', 'Z', ...), or undefined if gone. */
export function processState(pid: number): string | undefined {
  return statFields(pid)?.[0];
}

function parentOf(pid: number): number | undefined {
  const ppid = statFields(pid)?.[1];
  return ppid === undefined ? undefined : Number(ppid);
}

/** True if the process exists and is not a zombie (or dead). */
export function isAlive(pid: number): boolean {
  const state = processState(pid);
  return state !== undefined && state !== 'Z' && state !== 'X' && state !== 'x';
}

/** The command line, arguments joined by spaces; '' if gone (or a zombie / kernel thread). */
export function cmdline(pid: number): string {
  return (readOrUndefined(`/proc/${pid}/cmdline`) ?? '').replace(/\0+$/, '').split('\0').join(' ');
}

function listPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

function childrenFromTasks(pid: number): number[] | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return []; // the process is gone: no children
  }
  const children = new Set<number>();
  for (const tid of tasks) {
    const text = readOrUndefined(`/proc/${pid}/task/${tid}/children`);
    if (text === undefined) {
      // thread gone, or the kernel lacks CONFIG_PROC_CHILDREN: fall back if the file never exists
      if (readOrUndefined(`/proc/${pid}/task/${tid}/stat`) !== undefined) return undefined;
      continue;
    }
    for (const child of text.split(/\s+/)) if (child) children.add(Number(child));
  }
  return [...children];
}

/** Direct children of pid. */
export function childrenOf(pid: number): number[] {
  const fromTasks = childrenFromTasks(pid);
  if (fromTasks !== undefined) return fromTasks.sort((a, b) => a - b);
  return listPids().filter((candidate) => parentOf(candidate) === pid);
}

/** All descendants of pid (children, grandchildren, ...), zombies included. */
export function descendantsOf(pid: number): number[] {
  const result: number[] = [];
  const seen = new Set<number>([pid]);
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    for (const child of childrenOf(next)) {
      if (seen.has(child)) continue;
      seen.add(child);
      result.push(child);
      queue.push(child);
    }
  }
  return result;
}

/** Descendants of pid that are zombies (exited, not yet reaped). */
export function zombiesUnder(pid: number): number[] {
  return descendantsOf(pid).filter((p) => processState(p) === 'Z');
}

export interface WaitForOptions {
  /** @default 10000 */
  readonly timeoutMs?: number;
  /** @default 25 */
  readonly intervalMs?: number;
  /** Names what was awaited, in the timeout error. */
  readonly message?: string;
}

type Falsy = undefined | null | false | 0 | '';

/**
 * Poll `probe` until it returns a truthy value and resolve with it. After `timeoutMs`,
 * reject with an Error naming `message` and the last value (or the last error thrown).
 */
export async function waitFor<T>(
  probe: () => T | Falsy | Promise<T | Falsy>,
  { timeoutMs = 10_000, intervalMs = 25, message = 'condition' }: WaitForOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value as T;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const shown = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${message}; last value: ${shown}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Descendants of pid with their command lines, for error messages. */
export function describeDescendants(pid: number): string {
  return descendantsOf(pid)
    .map((p) => `${p} [${processState(p) ?? 'gone'}] ${cmdline(p)}`)
    .join('\n');
}

/**
 * Wait until pid has no descendants at all (zombies count: nobody reaped them); same
 * defaults as waitFor (10 s deadline, 25 ms interval).
 * Rejects listing the leftover pids, their states and command lines.
 */
export async function waitForNoDescendants(pid: number = process.pid, opts: WaitForOptions = {}): Promise<void> {
  try {
    await waitFor(() => descendantsOf(pid).length === 0, opts);
  } catch {
    const leftovers = describeDescendants(pid);
    throw new Error(`${opts.message ?? `process ${pid}`} still has descendants after ${opts.timeoutMs ?? 10_000} ms:\n${leftovers}`);
  }
}
