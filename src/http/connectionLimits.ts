/**
 * How many connections the gateway may hold at once. Every socket is a file descriptor,
 * and so is every pipe to a child: a flood of idle or trickling sockets must not take the
 * descriptors that children and `/health` need. The default leaves room for every child's
 * pipes and some headroom out of the process's open-files limit.
 */
import { readFileSync } from 'node:fs';

/** Descriptors a child costs the gateway (stdin, stdout, stderr and the spawn's own). */
const FDS_PER_CHILD = 4;
/** Descriptors kept for the gateway itself (logs, audit file, Redis, listeners). */
const RESERVED_FDS = 64;

/** The soft open-files limit of this process (from /proc), or undefined where unknown. */
export function fileDescriptorLimit(limitsFile = '/proc/self/limits'): number | undefined {
  try {
    const line = readFileSync(limitsFile, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft === undefined || soft === 'unlimited') return undefined;
    const value = Number(soft);
    return Number.isInteger(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Connections allowed by default: what the limit leaves after children and the gateway. */
export function defaultMaxConnections(fdLimit: number | undefined, maxChildren: number): number {
  if (fdLimit === undefined) return 4096;
  return Math.max(32, fdLimit - RESERVED_FDS - FDS_PER_CHILD * maxChildren);
}
