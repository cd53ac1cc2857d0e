import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { ProcTree } from '../../../src/process/procTree.js';
import { FakeProc, type FakeProcess } from '../../helpers/fakeProc.js';
import { isAlive, waitFor, waitForNoDescendants } from '../../helpers/procs.js';

// Pids above any real pid_max (2^22), so nothing here can be mistaken for a real process.
const CHILD = 5_000_001;
const SAME_GROUP = 5_000_002;
const HELPER = 5_000_003; // detached: a group of its own
const HELPER_CHILD = 5_000_004; // detached from the helper: a third group
const STRANGER = 5_000_005;

// The child (a group leader) -> a grandchild in its group, and a detached helper -> its own detached child.
const TREE: FakeProcess[] = [
  { pid: CHILD, ppid: 1, pgid: CHILD },
  { pid: SAME_GROUP, ppid: CHILD, pgid: CHILD },
  { pid: HELPER, ppid: CHILD, pgid: HELPER },
  { pid: HELPER_CHILD, ppid: HELPER, pgid: HELPER_CHILD },
];

const fakes: FakeProc[] = [];
function treeOf(procs: FakeProcess[], limit?: number): { proc: FakeProc; tree: ProcTree } {
  const proc = new FakeProc().add(...procs);
  fakes.push(proc);
  return { proc, tree: new ProcTree(CHILD, { procRoot: proc.root, kill: proc.kill, limit }) };
}
afterEach(() => {
  for (const proc of fakes.splice(0)) proc.cleanup();
});

describe('ProcTree on a made-up /proc', () => {
  it('signals the child group, every listed group, every listed process, then the child', () => {
    const { proc, tree } = treeOf(TREE);
    tree.refresh();
    expect(tree.pids).toEqual([SAME_GROUP, HELPER, HELPER_CHILD]);
    expect(tree.signal('SIGTERM')).toBe(7);
    expect(proc.sent).toEqual([
      [-CHILD, 'SIGTERM'],
      [-HELPER, 'SIGTERM'],
      [-HELPER_CHILD, 'SIGTERM'],
      [SAME_GROUP, 'SIGTERM'],
      [HELPER, 'SIGTERM'],
      [HELPER_CHILD, 'SIGTERM'],
      [CHILD, 'SIGTERM'],
    ]);
    expect(tree.othersAlive()).toBe(true);
  });

  it('still reaches a detached helper once its parent, the child, is gone', () => {
    const { proc, tree } = treeOf(TREE);
    tree.refresh(); // the listing taken before the first signal
    // The child exits (on stdin EOF): its children go to pid 1, its group keeps a member.
    proc.remove(CHILD).add({ pid: SAME_GROUP, ppid: 1, pgid: CHILD }, { pid: HELPER, ppid: 1, pgid: HELPER });
    tree.refresh();
    tree.signal('SIGKILL');
    expect(proc.sent).toEqual([
      [-CHILD, 'SIGKILL'], // no leader any more, members left: the group is still ours
      [-HELPER, 'SIGKILL'],
      [-HELPER_CHILD, 'SIGKILL'],
      [SAME_GROUP, 'SIGKILL'],
      [HELPER, 'SIGKILL'],
      [HELPER_CHILD, 'SIGKILL'],
    ]);
  });

  it('adds processes that appeared below remembered ones since the last listing', () => {
    const { proc, tree } = treeOf(TREE);
    tree.refresh();
    const late = 5_000_010;
    proc.remove(CHILD).add({ pid: HELPER, ppid: 1, pgid: HELPER }, { pid: late, ppid: HELPER_CHILD, pgid: HELPER_CHILD });
    tree.refresh();
    expect(tree.pids).toContain(late);
  });

  it('never signals a pid that now belongs to another process, nor that process group', () => {
    const { proc, tree } = treeOf(TREE);
    tree.refresh();
    // The helper died and its pid went to an unrelated process leading a group of its own.
    proc.remove(HELPER_CHILD).add({ pid: HELPER, ppid: 1, pgid: HELPER, start: '99999' });
    tree.signal('SIGTERM');
    expect(proc.sent).not.toContainEqual([HELPER, 'SIGTERM']);
    expect(proc.sent).not.toContainEqual([-HELPER, 'SIGTERM']);
    expect(proc.sent).toContainEqual([SAME_GROUP, 'SIGTERM']);
    tree.refresh(); // forgets it; walking from it would list a stranger's children
    expect(tree.pids).not.toContain(HELPER);
  });

  it('signals a group whose leader pid was reused while a remembered member is still in it', () => {
    const { proc, tree } = treeOf([...TREE, { pid: 5_000_011, ppid: HELPER, pgid: HELPER }]);
    tree.refresh();
    // Cannot happen on Linux (a group keeps its pid), but if it did, a live member decides.
    proc.add({ pid: HELPER, ppid: 1, pgid: HELPER, start: '99999' });
    tree.signal('SIGTERM');
    expect(proc.sent).toContainEqual([-HELPER, 'SIGTERM']);
    expect(proc.sent).not.toContainEqual([HELPER, 'SIGTERM']);
  });

  it("never signals the gateway's own process group, pid 1 or the gateway", () => {
    const own = 5_000_099; // the gateway's group, as the made-up /proc shows it
    const { proc, tree } = treeOf([
      { pid: CHILD, ppid: 1, pgid: CHILD },
      { pid: STRANGER, ppid: CHILD, pgid: own },
      { pid: process.pid, ppid: CHILD, pgid: own }, // cannot be, and must not matter
      { pid: 1, ppid: CHILD, pgid: 1 },
    ]);
    tree.refresh();
    tree.signal('SIGKILL');
    expect(proc.sent.map(([target]) => target).sort()).toEqual([-CHILD, CHILD, STRANGER].sort());
  });

  it('forgets processes that are gone and groups that are empty; zombies do not count as alive', () => {
    const { proc, tree } = treeOf(TREE);
    tree.refresh();
    proc.remove(HELPER, HELPER_CHILD).add({ pid: SAME_GROUP, ppid: CHILD, pgid: CHILD, state: 'Z' });
    expect(tree.othersAlive()).toBe(false);
    tree.refresh();
    expect(tree.pids).toEqual([SAME_GROUP]);
    expect(tree.signalGroups('SIGKILL')).toBe(1);
    expect(proc.sent).toEqual([[-CHILD, 'SIGKILL']]);
  });

  it('remembers at most `limit` processes', () => {
    const { tree } = treeOf(TREE, 2);
    tree.refresh();
    tree.refresh();
    expect(tree.pids).toHaveLength(2);
  });
});

describe('ProcTree on real processes', () => {
  afterEach(() => waitForNoDescendants(process.pid, { timeoutMs: 5_000 }));

  it('ends a detached grandchild that ignores SIGTERM after its parent died first', async () => {
    const code = `
      const { spawn } = require('node:child_process');
      const g = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1 << 30); process.send('up')"], {
        detached: true, stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      });
      g.once('message', () => { g.disconnect(); g.unref(); console.log(g.pid); });
      setInterval(() => {}, 1 << 30);`;
    const child = spawn(process.execPath, ['-e', code], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const grandchild = Number(line.toString().trim());
    const tree = new ProcTree(child.pid!);
    try {
      tree.refresh();
      expect(tree.pids).toEqual([grandchild]);
      expect(tree.signal('SIGTERM')).toBeGreaterThan(0); // the child dies; the grandchild ignores it
      await once(child, 'exit');
      expect(isAlive(grandchild)).toBe(true);
      expect(tree.othersAlive()).toBe(true);
      tree.refresh();
      tree.signal('SIGKILL');
      await waitFor(() => !tree.othersAlive() && !isAlive(grandchild), { message: `grandchild ${grandchild} gone` });
    } finally {
      if (isAlive(grandchild)) process.kill(grandchild, 'SIGKILL');
    }
  });
});
