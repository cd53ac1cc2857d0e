/**
 * Reads what every child tree costs in memory: one unref'd timer for all children, every
 * `--memory-sample-ms`, walking each tree in /proc (src/process/memory.ts). Keeps, per
 * command, the mean of all samples and the high-water mark (the most any one tree of it
 * used), and stops a tree that is over its limit (`maxMemoryMb` of its entry, else
 * `--max-child-memory-mb`) with a `memory_exceeded` error for its session. The gateway's own
 * resident memory is read at the same time.
 */
import { MemoryExceededError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { ChildTransport } from '../process/childTransport.js';
import { treeRss, type TreeMemory } from '../process/memory.js';
import { hasProc } from '../process/procfs.js';
import { MiB } from './budget.js';

export interface SamplerOptions {
  /** How often every tree is read, ms. @default 5000 */
  readonly intervalMs: number;
  readonly logger: Logger;
  /** Most one tree may use unless its entry says, bytes; 0: no limit. @default 0 */
  readonly maxChildBytes: number;
  /** Reads one tree. @default treeRss on Linux; nothing elsewhere */
  readonly readTree?: (pid: number) => TreeMemory;
  /** The gateway's own resident memory, bytes. @default process.memoryUsage.rss() */
  readonly gatewayRss?: () => number;
  /** Told of every tree stopped for its memory. */
  readonly onOverLimit?: (child: ChildTransport) => void;
}

interface Tree {
  readonly child: ChildTransport;
  /** The last reading, bytes; undefined until the first. */
  latest: number | undefined;
  samples: number;
  stopped: boolean;
}

/** Per command, over every tree of it ever sampled. */
interface Figures {
  samples: number;
  sum: number;
  highWater: number;
}

export interface CommandMemory {
  /** Child trees of the command now. */
  readonly trees: number;
  /** What they use now (unsampled ones not counted), bytes. */
  readonly liveBytes: number;
  /** Mean of every sample of its trees, bytes; 0 before the first. */
  readonly meanBytes: number;
  /** The most one tree of it used, bytes; 0 before the first sample. */
  readonly highWaterBytes: number;
  readonly samples: number;
}

const NO_PROC = (): TreeMemory => ({ bytes: 0, processes: 0 });

export class MemorySampler {
  private readonly trees = new Map<ChildTransport, Tree>();
  private readonly figures = new Map<string, Figures>();
  private readonly readTree: (pid: number) => TreeMemory;
  private readonly gatewayRss: () => number;
  private timer: NodeJS.Timeout | undefined;
  /** The gateway's resident memory at the last sample, bytes. */
  gatewayBytes: number;
  /** When the last sample was taken (epoch ms). */
  lastSampleAt = 0;

  constructor(private readonly options: SamplerOptions) {
    this.readTree = options.readTree ?? (hasProc() ? (pid) => treeRss(pid) : NO_PROC);
    this.gatewayRss = options.gatewayRss ?? (() => process.memoryUsage.rss());
    this.gatewayBytes = this.gatewayRss();
  }

  /** Follows `child` from its spawn until it has exited. */
  track(child: ChildTransport): void {
    if (this.trees.has(child)) return;
    this.trees.set(child, { child, latest: undefined, samples: 0, stopped: false });
    void child.exited.then(() => this.trees.delete(child));
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sample(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Samples now if the last sample is older than `ms`. */
  refresh(ms: number): void {
    if (Date.now() - this.lastSampleAt >= ms) this.sample();
  }

  /** Reads every tree (and the gateway) once; stops trees over their limit. */
  sample(): void {
    this.lastSampleAt = Date.now();
    this.gatewayBytes = this.gatewayRss();
    for (const tree of this.trees.values()) {
      if (tree.child.closed) continue;
      const { bytes, processes } = this.readTree(tree.child.pid);
      if (processes === 0) continue;
      tree.latest = bytes;
      tree.samples += 1;
      const figures = this.figuresOf(tree.child.spec.key);
      figures.samples += 1;
      figures.sum += bytes;
      if (bytes > figures.highWater) figures.highWater = bytes;
      this.enforce(tree, bytes);
    }
  }

  /**
   * What `child` counts for now: its last reading; while it is starting (fewer than two
   * readings) at least `expected`, since a server grows as it loads.
   */
  cost(child: ChildTransport, expected: number): number {
    const tree = this.trees.get(child);
    if (!tree) return 0;
    const latest = tree.latest ?? 0;
    return tree.samples < 2 ? Math.max(latest, expected) : latest;
  }

  /** Every child tracked now. */
  children(): IterableIterator<ChildTransport> {
    return this.trees.keys();
  }

  /** The limit of `child`'s tree, bytes, and what sets it; 0: none. */
  limitOf(child: { readonly spec: { readonly maxMemoryMb?: number } }): { bytes: number; setting: string } {
    if (child.spec.maxMemoryMb !== undefined) return { bytes: child.spec.maxMemoryMb * MiB, setting: 'maxMemoryMb of this whitelist entry' };
    return { bytes: this.options.maxChildBytes, setting: '--max-child-memory-mb' };
  }

  /** The most one tree of `key` used so far, bytes; 0 before the first sample. */
  highWater(key: string): number {
    return this.figures.get(key)?.highWater ?? 0;
  }

  /** The figures of one command. */
  command(key: string): CommandMemory {
    let trees = 0;
    let liveBytes = 0;
    for (const tree of this.trees.values()) {
      if (tree.child.spec.key !== key) continue;
      trees += 1;
      liveBytes += tree.latest ?? 0;
    }
    const f = this.figures.get(key);
    return { trees, liveBytes, meanBytes: f && f.samples > 0 ? f.sum / f.samples : 0, highWaterBytes: f?.highWater ?? 0, samples: f?.samples ?? 0 };
  }

  private enforce(tree: Tree, bytes: number): void {
    const limit = this.limitOf(tree.child);
    if (limit.bytes <= 0 || bytes <= limit.bytes || tree.stopped) return;
    tree.stopped = true;
    const usedMb = Math.round(bytes / MiB);
    const limitMb = Math.round(limit.bytes / MiB);
    this.options.logger.warn('child over its memory limit, stopping it', { command: tree.child.spec.key, pid: tree.child.pid, usedMb, limitMb });
    this.options.onOverLimit?.(tree.child);
    tree.child.terminate(new MemoryExceededError(usedMb, limitMb, limit.setting));
  }

  private figuresOf(key: string): Figures {
    let f = this.figures.get(key);
    if (!f) {
      f = { samples: 0, sum: 0, highWater: 0 };
      this.figures.set(key, f);
    }
    return f;
  }
}
