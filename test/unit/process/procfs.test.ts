import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { childrenFromTasks, descendants, hasProc, parentIndex, parseStat, readStat } from '../../../src/process/procfs.js';
import { FakeProc, statLine } from '../../helpers/fakeProc.js';
import { isAlive, waitFor, waitForNoDescendants } from '../../helpers/procs.js';

// Pids above any real pid_max (2^22), so nothing here can be mistaken for a real process.
const A = 5_000_001;
const B = 5_000_002;
const C = 5_000_003;
const D = 5_000_004;
const E = 5_000_005;

const fakes: FakeProc[] = [];
function fake(childrenFiles = true): FakeProc {
  const proc = new FakeProc(childrenFiles);
  fakes.push(proc);
  return proc;
}
afterEach(() => {
  for (const proc of fakes.splice(0)) proc.cleanup();
});

describe('parseStat', () => {
  it('finds the fields after a command name with spaces and parentheses', () => {
    expect(parseStat(A, statLine({ pid: A, ppid: B, pgid: C, start: '987654', state: 'Z' }))).toEqual({
      pid: A,
      state: 'Z',
      ppid: B,
      pgid: C,
      start: '987654',
    });
    expect(parseStat(A, `${A} (a) b) (c)) S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 4242 1 2\n`)).toMatchObject({ ppid: 1, pgid: 2, start: '4242' });
  });

  it('rejects a line that is cut short or has no command name', () => {
    expect(parseStat(A, `${A} (x) S 1 2 3`)).toBeUndefined();
    expect(parseStat(A, `${A} x S 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 4242`)).toBeUndefined();
    expect(parseStat(A, '')).toBeUndefined();
  });

  it('reads this process from the real /proc', () => {
    expect(hasProc()).toBe(true);
    const self = readStat(process.pid);
    expect(self).toMatchObject({ pid: process.pid, ppid: process.ppid, state: expect.stringMatching(/^[RS]$/) });
    expect(self!.start).toMatch(/^\d+$/);
    expect(readStat(A)).toBeUndefined();
  });
});

describe('children and descendants of a made-up tree', () => {
  // A -> B (forked by A's second thread) -> D ; A -> C -> E
  const TREE = [
    { pid: A, ppid: 1, pgid: A, threads: [A + 100] },
    { pid: B, ppid: A, pgid: A, forkedBy: A + 100 },
    { pid: C, ppid: A, pgid: C },
    { pid: D, ppid: B, pgid: D },
    { pid: E, ppid: C, pgid: C, start: '2000' },
  ];

  it('lists the children of every thread', () => {
    const proc = fake().add(...TREE);
    expect(childrenFromTasks(A, proc.root)?.sort()).toEqual([B, C]);
    expect(childrenFromTasks(D, proc.root)).toEqual([]);
    expect(childrenFromTasks(A + 999, proc.root)).toEqual([]); // gone: no children
  });

  it('walks breadth first, with each process as /proc shows it', () => {
    const proc = fake().add(...TREE);
    const found = descendants([A], 100, proc.root);
    expect([...found.keys()].sort()).toEqual([B, C, D, E]);
    expect(found.get(E)).toEqual({ pid: E, state: 'S', ppid: C, pgid: C, start: '2000' });
    expect([...descendants([C], 100, proc.root).keys()]).toEqual([E]);
  });

  it('stops at the limit', () => {
    const proc = fake().add(...TREE);
    expect(descendants([A], 2, proc.root).size).toBe(2);
  });

  it('falls back to one scan of the stat files when the kernel has no children files', () => {
    const proc = fake(false).add(...TREE);
    expect(childrenFromTasks(A, proc.root)).toBeUndefined();
    expect(parentIndex(proc.root).get(A)?.sort()).toEqual([B, C]);
    expect([...descendants([A], 100, proc.root).keys()].sort()).toEqual([B, C, D, E]);
  });
});

describe('descendants of real processes', () => {
  afterEach(() => waitForNoDescendants(process.pid, { timeoutMs: 5_000 }));

  it('finds a detached grandchild, in a process group of its own', async () => {
    // The child starts a detached grandchild, prints its pid, and waits to be killed.
    const code = `
      const { spawn } = require('node:child_process');
      const g = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { detached: true, stdio: 'ignore' });
      console.log(g.pid);
      setInterval(() => {}, 1 << 30);`;
    const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'ignore'] });
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const grandchild = Number(line.toString().trim());
    try {
      const found = descendants([process.pid], 100);
      expect(found.get(child.pid!)).toMatchObject({ ppid: process.pid, pgid: readStat(process.pid)!.pgid });
      expect(found.get(grandchild)).toMatchObject({ ppid: child.pid, pgid: grandchild });
    } finally {
      child.kill('SIGKILL');
      process.kill(grandchild, 'SIGKILL');
      await waitFor(() => !isAlive(grandchild), { message: 'grandchild gone' });
    }
  });
});
