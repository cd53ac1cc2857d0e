// Spawned processes: start in their own process group, find the whole tree through
// /proc, sample its memory, and stop it in bounded stages (SIGTERM, then SIGKILL to
// every pid and process group ever seen in the tree). A registry lets SIGINT and the
// end of the run kill whatever is still alive.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { sleep } from './util.mjs';

const live = new Set();

/** Kills every registered tree at once with SIGKILL (SIGINT path, last resort). */
export function killAllNow() {
  for (const proc of live) proc.killNow();
}

/** Number of registered trees still alive; the run checks it is 0 at the end. */
export const liveCount = () => live.size;

/** Start time of a pid (field 22 of /proc/<pid>/stat), or undefined when gone. */
function startTime(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { start: rest[19], pgid: Number(rest[2]) };
  } catch {
    return undefined;
  }
}

function childrenOf(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text ? text.split(' ').map(Number) : [];
  } catch {
    return [];
  }
}

/** The pid and all its descendants (walks /proc/<pid>/task/<pid>/children). */
export function treeOf(root) {
  const out = [];
  const stack = [root];
  while (stack.length > 0 && out.length < 100_000) {
    const pid = stack.pop();
    out.push(pid);
    for (const c of childrenOf(pid)) stack.push(c);
  }
  return out;
}

/** VmRSS of one process in bytes (from /proc/<pid>/status), or 0 when gone. */
export function vmRss(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

const PAGE = 4096;
/** Resident size from /proc/<pid>/statm (same figure as VmRSS, cheaper to read). */
function statmRss(pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE;
  } catch {
    return 0;
  }
}

/**
 * A process we started, in its own process group. `stop()` is idempotent.
 * `seen` keeps every descendant observed (pid -> start time), so that a grandchild
 * re-parented to init after its parent died is still found and killed.
 */
export class Service {
  constructor(name, command, args, options = {}) {
    this.name = name;
    this.stderrTail = [];
    this.seen = new Map();
    this.exited = false;
    this.child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      shell: false,
    });
    this.pid = this.child.pid;
    this.exit = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exited = true;
        this.exitCode = code;
        this.exitSignal = signal;
        resolve({ code, signal });
      });
      this.child.once('error', (error) => {
        this.exited = true;
        this.spawnError = error;
        resolve({ code: null, signal: null, error });
      });
    });
    this.child.stdin.on('error', () => {});
    const keep = (chunk) => {
      const lines = chunk.toString('utf8').split('\n').filter(Boolean);
      for (const line of lines) {
        this.stderrTail.push(line);
        if (this.stderrTail.length > 200) this.stderrTail.shift();
        for (const fn of this.lineListeners) fn(line);
      }
    };
    this.lineListeners = new Set();
    this.child.stderr.on('data', keep);
    if (options.stdoutToTail) this.child.stdout.on('data', keep);
    else if (!options.keepStdout) this.child.stdout.resume();
    this.remember();
    live.add(this);
    this.exit.then(() => {
      if (this.seen.size <= 1) live.delete(this);
    });
  }

  /** Resolves with the first stderr/stdout line that `match` maps to a non-undefined value. */
  waitLine(match, ms, label) {
    return new Promise((resolve, reject) => {
      const done = (fn, v) => {
        clearTimeout(timer);
        this.lineListeners.delete(listener);
        fn(v);
      };
      const listener = (line) => {
        const v = match(line);
        if (v !== undefined) done(resolve, v);
      };
      const timer = setTimeout(
        () => done(reject, new Error(`${this.name}: no ${label} within ${ms} ms; stderr tail:\n${this.stderrTail.slice(-15).join('\n')}`)),
        ms,
      );
      for (const line of this.stderrTail) {
        const v = match(line);
        if (v !== undefined) return done(resolve, v);
      }
      this.lineListeners.add(listener);
      this.exit.then(({ code, signal, error }) =>
        done(
          reject,
          new Error(
            `${this.name} exited (code ${code}, signal ${signal}${error ? `, ${error.message}` : ''}) before ${label}; stderr tail:\n${this.stderrTail.slice(-15).join('\n')}`,
          ),
        ),
      );
    });
  }

  /** Records the current tree in `seen`; returns its pids. */
  remember() {
    const pids = this.exited ? [...this.seen.keys()].filter((p) => p !== this.pid) : treeOf(this.pid);
    for (const pid of pids) {
      if (!this.seen.has(pid)) {
        const st = startTime(pid);
        if (st) this.seen.set(pid, st);
      }
    }
    return pids;
  }

  /** RSS of the root and of the whole tree (bytes), and the tree's process count. */
  sampleRss() {
    const pids = this.remember();
    const own = this.exited ? 0 : vmRss(this.pid);
    let tree = own;
    for (const pid of pids) if (pid !== this.pid) tree += statmRss(pid);
    return { own, tree, procs: pids.length };
  }

  /** Pids seen in the tree that are still the same processes. */
  aliveSeen() {
    const out = [];
    for (const [pid, st] of this.seen) {
      const now = startTime(pid);
      if (now && now.start === st.start) out.push({ pid, pgid: now.pgid });
    }
    return out;
  }

  killNow() {
    for (const { pid, pgid } of this.aliveSeen()) {
      for (const target of [pid, -pgid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          /* gone already */
        }
      }
    }
    live.delete(this);
  }

  /**
   * SIGTERM to the root (the gateway stops its own children), wait up to `graceMs`,
   * then SIGKILL whatever of the tree remains. Idempotent.
   */
  stop(graceMs = 8000) {
    this.stopping ??= (async () => {
      this.remember();
      if (!this.exited) {
        try {
          process.kill(this.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
      const deadline = Date.now() + graceMs;
      while (Date.now() < deadline && this.aliveSeen().length > 0) await sleep(50);
      const leftovers = this.aliveSeen().length;
      this.killNow();
      await Promise.race([this.exit, sleep(1000)]);
      return { leftovers };
    })();
    return this.stopping;
  }
}

/**
 * Samples RSS of a set of services every `intervalMs` and keeps the peaks (own process
 * and whole tree). One timer for all; `stop()` returns the peaks.
 */
export class RssSampler {
  constructor(intervalMs) {
    this.intervalMs = intervalMs;
    this.services = new Map();
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  watch(service) {
    const peaks = { own: 0, tree: 0, procs: 0 };
    this.services.set(service, peaks);
    this.sampleOne(service, peaks);
    return peaks;
  }

  unwatch(service) {
    const peaks = this.services.get(service);
    this.services.delete(service);
    return peaks;
  }

  sampleOne(service, peaks) {
    const s = service.sampleRss();
    if (s.own > peaks.own) peaks.own = s.own;
    if (s.tree > peaks.tree) peaks.tree = s.tree;
    if (s.procs > peaks.procs) peaks.procs = s.procs;
    peaks.last = s;
  }

  tick() {
    for (const [service, peaks] of this.services) this.sampleOne(service, peaks);
  }

  close() {
    clearInterval(this.timer);
  }
}

/**
 * Processes that are not one tree (the direct target: each session's server is its own
 * child of the bench). Same `sampleRss()` shape as a Service: `own` is 0 (no gateway),
 * `tree` sums every tracked server's tree.
 */
export class ProcessGroup {
  constructor() {
    this.pids = new Set();
  }

  add(pid) {
    if (pid) this.pids.add(pid);
  }

  delete(pid) {
    this.pids.delete(pid);
  }

  sampleRss() {
    let tree = 0;
    let procs = 0;
    for (const root of this.pids) {
      for (const pid of treeOf(root)) {
        const rss = statmRss(pid);
        if (rss > 0) procs += 1;
        tree += rss;
      }
    }
    return { own: 0, tree, procs };
  }
}
