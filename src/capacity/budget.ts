/**
 * How much memory the gateway may plan for: `--memory-budget-mb` when set, else the memory
 * limit of the cgroup the gateway runs in (v2 `memory.max`, v1 `memory.limit_in_bytes`, the
 * lowest of its own and its ancestors'), else the machine's total memory, never more than
 * that. `--memory-reserve-mb` of it is never planned for children: it covers what the RSS
 * figures do not show (kernel memory charged to the machine, page cache, the gateway's own
 * peaks between two samples). The readers are parameters so the detection can be tested on
 * made-up files.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';

export const MiB = 1024 * 1024;

export type BudgetSource = '--memory-budget-mb' | 'cgroup v2 memory.max' | 'cgroup v1 memory.limit_in_bytes' | 'total memory';

export interface MemoryBudget {
  /** Memory for the gateway and every child, bytes. */
  readonly bytes: number;
  /** Where `bytes` came from. */
  readonly source: BudgetSource;
  /** Part of `bytes` never planned for children, bytes. */
  readonly reserveBytes: number;
}

export interface BudgetReaders {
  /** Reads a file's text, undefined when it cannot be read. */
  readonly read?: (path: string) => string | undefined;
  /** The machine's memory, bytes. @default os.totalmem() */
  readonly totalBytes?: number;
  /** Where cgroup file systems are mounted. @default /sys/fs/cgroup */
  readonly cgroupRoot?: string;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** A limit file's value in bytes; undefined for `max`, nonsense, or a value meaning "no limit". */
function limitValue(text: string | undefined, totalBytes: number): number | undefined {
  const value = text?.trim();
  if (!value || !/^\d+$/.test(value)) return undefined;
  const bytes = Number(value);
  // cgroup v1 writes "no limit" as a page-aligned 2^63-1; anything past the machine's memory means the same.
  return bytes > 0 && bytes < totalBytes ? bytes : undefined;
}

/** `/a/b/c` -> [`/a/b/c`, `/a/b`, `/a`, ``]: the cgroup and its ancestors. */
function ancestors(path: string): string[] {
  const parts = path.split('/').filter(Boolean);
  const out: string[] = [];
  for (let n = parts.length; n >= 0; n -= 1) out.push(n === 0 ? '' : `/${parts.slice(0, n).join('/')}`);
  return out;
}

/** The lowest limit in `files` (one per cgroup level), if any. */
function lowest(files: string[], read: (path: string) => string | undefined, totalBytes: number): number | undefined {
  let found: number | undefined;
  for (const file of files) {
    const value = limitValue(read(file), totalBytes);
    if (value !== undefined && (found === undefined || value < found)) found = value;
  }
  return found;
}

/** The cgroup memory limit of this process, and which version set it. */
export function cgroupLimit(readers: BudgetReaders = {}): { bytes: number; source: BudgetSource } | undefined {
  const read = readers.read ?? readText;
  const total = readers.totalBytes ?? totalmem();
  const root = readers.cgroupRoot ?? '/sys/fs/cgroup';
  const lines = (read('/proc/self/cgroup') ?? '').split('\n');
  const v2 =
    lines
      .find((l) => l.startsWith('0::'))
      ?.slice(3)
      .trim() ?? '/';
  const v2Limit = lowest(
    ancestors(v2).map((p) => `${root}${p}/memory.max`),
    read,
    total,
  );
  if (v2Limit !== undefined) return { bytes: v2Limit, source: 'cgroup v2 memory.max' };
  const v1 =
    lines
      .map((l) => l.split(':'))
      .find((f) => f.length >= 3 && f[1]!.split(',').includes('memory'))
      ?.slice(2)
      .join(':')
      .trim() ?? '/';
  const v1Limit = lowest(
    ancestors(v1).map((p) => `${root}/memory${p}/memory.limit_in_bytes`),
    read,
    total,
  );
  if (v1Limit !== undefined) return { bytes: v1Limit, source: 'cgroup v1 memory.limit_in_bytes' };
  return undefined;
}

/** The budget from the settings, the cgroup, or the machine. */
export function detectBudget(settings: { readonly memoryBudgetMb?: number; readonly memoryReserveMb: number }, readers: BudgetReaders = {}): MemoryBudget {
  const total = readers.totalBytes ?? totalmem();
  const reserveBytes = settings.memoryReserveMb * MiB;
  if (settings.memoryBudgetMb !== undefined) return { bytes: settings.memoryBudgetMb * MiB, source: '--memory-budget-mb', reserveBytes };
  const cgroup = cgroupLimit({ ...readers, totalBytes: total });
  if (cgroup) return { ...cgroup, reserveBytes };
  return { bytes: total, source: 'total memory', reserveBytes };
}
