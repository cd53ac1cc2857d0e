/**
 * Reading the process table from Linux's /proc, never by spawning `ps`. Every reader
 * tolerates a process vanishing mid-read (it is then simply not there). The root directory
 * is a parameter so the parsing can be tested on a made-up tree.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';

export const PROC_ROOT = '/proc';

/** The fields of /proc/<pid>/stat a tree stop needs. */
export interface ProcStat {
  readonly pid: number;
  /** Field 3, one letter: R, S, D, Z (zombie), X (dead), ... */
  readonly state: string;
  /** Field 4. */
  readonly ppid: number;
  /** Field 5, the process group. */
  readonly pgid: number;
  /**
   * Field 22, clock ticks after boot when the process started. Two processes that carry
   * the same pid at different times have different start times: the check against reuse.
   */
  readonly start: string;
}

/** True when this system has a /proc to read (Linux). */
export function hasProc(root: string = PROC_ROOT): boolean {
  return existsSync(`${root}/self/stat`) || existsSync(`${root}/1/stat`);
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // ENOENT / ESRCH: gone
  }
}

/**
 * Parses one /proc/<pid>/stat line. The command name (field 2) is in parentheses and may
 * itself contain spaces and parentheses, so the fields after it are found from the last ')'.
 */
export function parseStat(pid: number, text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close === -1) return undefined;
  // fields[0] is field 3 (state), so field n is fields[n - 3]
  const fields = text
    .slice(close + 2)
    .trim()
    .split(' ');
  const state = fields[0];
  const ppid = Number(fields[1]);
  const pgid = Number(fields[2]);
  const start = fields[19];
  if (!state || !Number.isInteger(ppid) || !Number.isInteger(pgid) || !start || !/^\d+$/.test(start)) return undefined;
  return { pid, state, ppid, pgid, start };
}

export function readStat(pid: number, root: string = PROC_ROOT): ProcStat | undefined {
  const text = read(`${root}/${pid}/stat`);
  return text === undefined ? undefined : parseStat(pid, text);
}

/** True for a state that will never run again (a zombie waiting to be reaped, or dead). */
export function isDead(state: string): boolean {
  return state === 'Z' || state === 'X' || state === 'x';
}

function pidsIn(dir: string): string[] {
  try {
    return readdirSync(dir).filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
}

/**
 * Direct children of `pid` from /proc/<pid>/task/<tid>/children (one file per thread: a
 * child is listed under the thread that forked it). Undefined when the kernel does not
 * provide those files (CONFIG_PROC_CHILDREN off): use {@link parentIndex} instead.
 */
export function childrenFromTasks(pid: number, root: string = PROC_ROOT): number[] | undefined {
  const children = new Set<number>();
  for (const tid of pidsIn(`${root}/${pid}/task`)) {
    const text = read(`${root}/${pid}/task/${tid}/children`);
    if (text === undefined) {
      if (existsSync(`${root}/${pid}/task/${tid}/stat`)) return undefined; // the thread is there, the file is not
      continue; // the thread ended meanwhile
    }
    for (const child of text.split(/\s+/)) if (child) children.add(Number(child));
  }
  return [...children];
}

/** Every process's children, from one scan of /proc/<pid>/stat: the fallback to the children files. */
export function parentIndex(root: string = PROC_ROOT): Map<number, number[]> {
  const index = new Map<number, number[]>();
  for (const name of pidsIn(root)) {
    const stat = readStat(Number(name), root);
    if (!stat) continue;
    const siblings = index.get(stat.ppid);
    if (siblings) siblings.push(stat.pid);
    else index.set(stat.ppid, [stat.pid]);
  }
  return index;
}

/**
 * Every process below the `from` processes (not themselves), breadth first, at most `limit`
 * of them. Reads the children files; on a kernel without them, one scan of all stat files.
 */
export function descendants(from: Iterable<number>, limit: number, root: string = PROC_ROOT): Map<number, ProcStat> {
  const found = new Map<number, ProcStat>();
  const queue = [...from];
  const seen = new Set<number>(queue);
  let index: Map<number, number[]> | undefined;
  while (queue.length > 0 && found.size < limit) {
    const pid = queue.shift()!;
    let children = index ? (index.get(pid) ?? []) : childrenFromTasks(pid, root);
    if (children === undefined) {
      index = parentIndex(root);
      children = index.get(pid) ?? [];
    }
    for (const child of children) {
      if (seen.has(child) || found.size >= limit) continue;
      seen.add(child);
      const stat = readStat(child, root);
      if (!stat) continue; // exited since it was listed
      found.set(child, stat);
      queue.push(child);
    }
  }
  return found;
}
