/**
 * What is below one child, remembered: every process seen under it (pid, process group,
 * start time) and every process group those were in. A snapshot survives the deaths that
 * hide a tree from a live walk: a parent that exits re-parents its children to pid 1, and a
 * helper started with `detached: true` sits in a group (and session) of its own, so neither
 * the child's group nor a walk after the parent died would find it.
 *
 * Nothing is signalled on the strength of a pid alone: a remembered process is signalled
 * only while /proc shows the same start time for that pid (else the pid was reused), and a
 * remembered group only while it can still be ours (see {@link ProcTree.mayKillGroup}).
 */
import { descendants, isDead, PROC_ROOT, readStat, type ProcStat } from './procfs.js';

export type StopSignal = 'SIGTERM' | 'SIGKILL';

export interface ProcTreeOptions {
  /** Where /proc is. @default '/proc' */
  readonly procRoot?: string;
  /** Most processes remembered below one child; a fork bomb must not make the list unbounded. @default 4096 */
  readonly limit?: number;
  /** Sends a signal (0: only checks); a negative pid is a process group. @default process.kill */
  readonly kill?: (pid: number, signal: StopSignal | 0) => void;
}

const DEFAULT_TREE_LIMIT = 4096;

export class ProcTree {
  /** Remembered processes below the child (the child itself not included). */
  private readonly members = new Map<number, ProcStat>();
  /** Every process group a remembered process (or the child) was seen in. */
  private readonly groups = new Set<number>();
  private readonly root: ProcStat | undefined;
  private readonly procRoot: string;
  private readonly limit: number;
  private readonly kill: (pid: number, signal: StopSignal | 0) => void;
  /** The gateway's own group, never signalled whatever a child did. */
  private readonly ownGroup: number | undefined;

  /** Call it right after the spawn: the child's start time is what later walks trust. */
  constructor(
    readonly pid: number,
    options: ProcTreeOptions = {},
  ) {
    this.procRoot = options.procRoot ?? PROC_ROOT;
    this.limit = options.limit ?? DEFAULT_TREE_LIMIT;
    this.kill = options.kill ?? ((target, signal) => process.kill(target, signal));
    this.root = readStat(pid, this.procRoot);
    this.ownGroup = readStat(process.pid, this.procRoot)?.pgid;
    this.groups.add(pid); // spawned as the leader of its own group
    if (this.root) this.groups.add(this.root.pgid);
  }

  /** Pids remembered below the child, in the order they were first seen. */
  get pids(): number[] {
    return [...this.members.keys()];
  }

  /**
   * Walks /proc again from the child (while it is the same process) and from every
   * remembered process still alive, and remembers what is new. Forgets processes that are
   * gone and groups that are empty (neither can come back as ours), so a server that runs
   * thousands of short-lived commands keeps a short list. Cost: a few small reads per
   * process in the tree (one per thread), synchronous.
   */
  refresh(): void {
    const from: number[] = [];
    if (this.root && this.isSame(this.root)) from.push(this.pid);
    for (const member of this.members.values()) {
      if (this.isSame(member)) from.push(member.pid);
      else this.members.delete(member.pid);
    }
    for (const group of this.groups) if (!this.groupExists(group)) this.groups.delete(group);
    if (from.length === 0) return;
    const room = this.limit - this.members.size;
    for (const [pid, stat] of descendants(from, Math.max(room, 0), this.procRoot)) {
      if (pid === process.pid || pid <= 1 || this.members.has(pid)) continue;
      this.members.set(pid, stat);
      if (stat.pgid > 1) this.groups.add(stat.pgid);
    }
  }

  /**
   * Sends `signal` to the child's group, every remembered group that can still be ours,
   * and every remembered process still carrying its start time. Returns how many signals
   * were delivered.
   */
  signal(signal: StopSignal): number {
    const current = this.current();
    let sent = this.sendToGroups(current, signal);
    for (const pid of current.keys()) if (this.send(pid, signal)) sent++;
    if (this.root && this.isSame(this.root) && this.send(this.pid, signal)) sent++;
    return sent;
  }

  /**
   * Sends `signal` to every remembered group that still has members and can still be
   * ours, whether or not those members were ever seen (a grandchild re-parented before any
   * walk is still in its group). Returns how many groups it reached.
   */
  signalGroups(signal: StopSignal): number {
    return this.sendToGroups(this.current(), signal);
  }

  /** True while any remembered process other than the child is still running (zombies are not). */
  othersAlive(): boolean {
    for (const member of this.members.values()) {
      const now = readStat(member.pid, this.procRoot);
      if (now && now.start === member.start && !isDead(now.state)) return true;
    }
    return false;
  }

  /**
   * A pid that leads a group, or is any process's group, is not handed out again while
   * that group has members. So a group whose leader pid is absent from /proc is made only
   * of processes that were in it when the leader lived: ours. A leader pid that is present
   * must be the remembered leader (same start time), or a remembered live process must
   * still be in that group. Anything else may be a stranger's new group.
   */
  private mayKillGroup(group: number, current: ReadonlyMap<number, ProcStat>): boolean {
    if (group <= 1 || group === this.ownGroup) return false;
    const leader = readStat(group, this.procRoot);
    if (!leader) return true;
    const known = group === this.pid ? this.root : this.members.get(group);
    if (known && known.start === leader.start) return true;
    for (const member of current.values()) if (member.pgid === group) return true;
    return false;
  }

  private sendToGroups(current: ReadonlyMap<number, ProcStat>, signal: StopSignal): number {
    let sent = 0;
    for (const group of this.groups) if (this.mayKillGroup(group, current) && this.send(-group, signal)) sent++;
    return sent;
  }

  /** Remembered processes still carrying their start time, as /proc shows them now. */
  private current(): Map<number, ProcStat> {
    const current = new Map<number, ProcStat>();
    for (const member of this.members.values()) {
      const now = readStat(member.pid, this.procRoot);
      if (now && now.start === member.start) {
        current.set(member.pid, now);
        if (now.pgid > 1) this.groups.add(now.pgid); // it may have moved since it was first seen
      }
    }
    return current;
  }

  private groupExists(group: number): boolean {
    if (group <= 1) return false;
    try {
      this.kill(-group, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: there, not ours to check
    }
  }

  private isSame(stat: ProcStat): boolean {
    const now = readStat(stat.pid, this.procRoot);
    return now !== undefined && now.start === stat.start;
  }

  private send(target: number, signal: StopSignal): boolean {
    if (target === process.pid || target === 0 || target === 1 || target === -1) return false;
    try {
      this.kill(target, signal);
      return true;
    } catch {
      return false; // ESRCH: already gone
    }
  }
}
