/**
 * What a process tree costs in memory, read from Linux's /proc: the resident set (VmRSS of
 * /proc/<pid>/status) of a process and of everything below it. Pages shared between
 * processes (a runtime's code, mapped by every Node child) count in each of them, so the
 * sum errs on the high side, which is the safe side for a budget. Every reader tolerates
 * a process vanishing mid-read (it then counts as nothing).
 */
import { readFileSync } from 'node:fs';
import { descendants, PROC_ROOT } from './procfs.js';

/** Most processes counted below one child (as many as a tree stop lists). */
const TREE_LIMIT = 4096;

export interface TreeMemory {
  /** Resident bytes of the root and every descendant. */
  readonly bytes: number;
  /** Processes counted (the root included), 0 when the root is gone. */
  readonly processes: number;
}

/** VmRSS of one process in bytes, or undefined when it is gone (or a zombie, which has none). */
export function processRss(pid: number, root: string = PROC_ROOT): number | undefined {
  let text: string;
  try {
    text = readFileSync(`${root}/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** The resident memory of `pid` and every process below it. */
export function treeRss(pid: number, root: string = PROC_ROOT): TreeMemory {
  const own = processRss(pid, root);
  if (own === undefined) return { bytes: 0, processes: 0 };
  let bytes = own;
  let processes = 1;
  for (const child of descendants([pid], TREE_LIMIT, root).keys()) {
    const rss = processRss(child, root);
    if (rss === undefined) continue;
    bytes += rss;
    processes += 1;
  }
  return { bytes, processes };
}
