/**
 * Where the memory budget comes from: the setting; else the lowest cgroup limit on the
 * gateway's path (v2 `memory.max`, then v1 `memory.limit_in_bytes`), ignoring `max` and
 * "no limit" values; else the machine's memory. The files are made up here.
 */
import { describe, expect, it } from '@jest/globals';
import { cgroupLimit, detectBudget, MiB } from '../../../src/capacity/budget.js';

const GiB = 1024 * MiB;
const TOTAL = 8 * GiB;

function readers(files: Record<string, string>) {
  return { read: (path: string) => files[path], totalBytes: TOTAL, cgroupRoot: '/cg' };
}

describe('detectBudget', () => {
  it('takes --memory-budget-mb as given, with the reserve', () => {
    expect(detectBudget({ memoryBudgetMb: 1024, memoryReserveMb: 160 }, readers({ '/cg/memory.max': String(GiB) }))).toEqual({
      bytes: GiB,
      source: '--memory-budget-mb',
      reserveBytes: 160 * MiB,
    });
  });

  it("reads a cgroup v2 limit, the lowest on the path to the gateway's cgroup", () => {
    const files = {
      '/proc/self/cgroup': '0::/app/worker\n',
      '/cg/app/worker/memory.max': 'max\n',
      '/cg/app/memory.max': String(GiB),
      '/cg/memory.max': String(2 * GiB),
    };
    expect(detectBudget({ memoryReserveMb: 0 }, readers(files))).toEqual({ bytes: GiB, source: 'cgroup v2 memory.max', reserveBytes: 0 });
  });

  it('reads a cgroup v1 limit, and takes 2^63-1 (page aligned) as no limit', () => {
    const files = {
      '/proc/self/cgroup': '5:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n',
      '/cg/memory/docker/abc/memory.limit_in_bytes': String(512 * MiB),
      '/cg/memory/memory.limit_in_bytes': '9223372036854771712',
    };
    expect(cgroupLimit(readers(files))).toEqual({ bytes: 512 * MiB, source: 'cgroup v1 memory.limit_in_bytes' });
    expect(cgroupLimit(readers({ '/proc/self/cgroup': '5:memory:/\n', '/cg/memory/memory.limit_in_bytes': '9223372036854771712' }))).toBeUndefined();
  });

  it("falls back to the machine's memory; a limit above it means none", () => {
    expect(detectBudget({ memoryReserveMb: 160 }, readers({ '/cg/memory.max': String(16 * GiB) }))).toEqual({
      bytes: TOTAL,
      source: 'total memory',
      reserveBytes: 160 * MiB,
    });
    expect(detectBudget({ memoryReserveMb: 160 }, readers({}))).toMatchObject({ bytes: TOTAL, source: 'total memory' });
  });
});
