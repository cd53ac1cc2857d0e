/**
 * A made-up /proc in a temp directory, for the /proc readers: stat files (with a command
 * name full of spaces and parentheses, as the kernel allows), task directories and their
 * children files, and a kill() that answers for the made-up processes and records signals.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakeProcess {
  readonly pid: number;
  readonly ppid: number;
  readonly pgid: number;
  /** Field 22 of stat. @default '1000' */
  readonly start?: string;
  /** @default 'S' */
  readonly state?: string;
  /** Thread ids besides the main one; children are listed under the main thread unless forkedBy says otherwise. */
  readonly threads?: readonly number[];
  /** The thread that forked it (its parent's tid), for the per-thread children files. */
  readonly forkedBy?: number;
}

/** One stat line: pid (comm) state ppid pgrp session ... starttime(22) ... */
export function statLine(p: FakeProcess): string {
  const fields = [
    p.state ?? 'S',
    p.ppid,
    p.pgid,
    p.pgid,
    0,
    -1,
    4194560,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    20,
    0,
    1 + (p.threads?.length ?? 0),
    0,
    p.start ?? '1000',
    123456,
    789,
  ];
  return `${p.pid} (odd) name (x) ${fields.join(' ')}\n`;
}

export class FakeProc {
  readonly root = mkdtempSync(join(tmpdir(), 'warden-fakeproc-'));
  /** Every signal sent through kill(), as [target, signal]; checks (signal 0) are not recorded. */
  readonly sent: [number, string][] = [];
  private readonly procs = new Map<number, FakeProcess>();

  constructor(private readonly childrenFiles = true) {}

  add(...procs: FakeProcess[]): this {
    for (const p of procs) this.procs.set(p.pid, p);
    this.write();
    return this;
  }

  remove(...pids: number[]): this {
    for (const pid of pids) this.procs.delete(pid);
    this.write();
    return this;
  }

  /** Stands in for process.kill: ESRCH for what does not exist, else records the signal. */
  readonly kill = (target: number, signal: string | 0): void => {
    const exists = target < 0 ? [...this.procs.values()].some((p) => p.pgid === -target) : this.procs.has(target);
    if (!exists) throw Object.assign(new Error('kill ESRCH'), { code: 'ESRCH' });
    if (signal !== 0) this.sent.push([target, signal]);
  };

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }

  private write(): void {
    rmSync(this.root, { recursive: true, force: true });
    mkdirSync(this.root, { recursive: true });
    for (const p of this.procs.values()) {
      const dir = join(this.root, String(p.pid));
      for (const tid of [p.pid, ...(p.threads ?? [])]) {
        mkdirSync(join(dir, 'task', String(tid)), { recursive: true });
        writeFileSync(join(dir, 'task', String(tid), 'stat'), statLine(p));
        if (this.childrenFiles) {
          const children = [...this.procs.values()].filter((c) => c.ppid === p.pid && (c.forkedBy ?? p.pid) === tid).map((c) => c.pid);
          writeFileSync(join(dir, 'task', String(tid), 'children'), children.map((c) => `${c} `).join(''));
        }
      }
      writeFileSync(join(dir, 'stat'), statLine(p));
    }
  }
}
