/**
 * Admission by memory. A new child is started only when its command's expected cost fits
 * in what is left of the budget: the budget, less the reserve, less what is in use now (the
 * gateway's resident memory, every child tree's, and starts under way at their expected
 * cost). When it does not fit, the releasers are asked in order (warm spares first, then
 * idle sessions, src/capacity/evictor.ts), each awaited until its children are gone, and
 * only when none can free anything is the start refused (`503 limit_reached`, naming the
 * budget). Admissions run one at a time, so two starts never count the same free memory.
 *
 * The expected cost of a command is the high-water mark of its child trees (the most one
 * tree of it used so far), capped by its memory limit; 150 MB before any was sampled. The
 * high-water mark rather than the mean: a child admitted now grows to what its
 * predecessors grew to, and a burst of new children planned at the mean would overshoot.
 */
import type { CommandSpec } from '../commands/types.js';
import { MemoryBudgetError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { MiB, type MemoryBudget } from './budget.js';
import type { MemorySampler } from './sampler.js';

/** Frees memory towards `shortfall` bytes; resolves true once something was freed (its stop awaited). */
export type Releaser = (shortfallBytes: number) => Promise<boolean>;

/** What the process manager asks of admission by memory. */
export interface MemoryGate {
  /** Frees room if needed and reserves a start of `spec`; resolves with the reservation's release. */
  admit(spec: CommandSpec): Promise<() => void>;
  /** True when a child of `spec` fits without freeing anything. */
  fits(spec: CommandSpec): boolean;
  addReleaser(releaser: Releaser): void;
}

export interface CapacityOptions {
  readonly budget: MemoryBudget;
  readonly sampler: MemorySampler;
  readonly logger: Logger;
  /** Planning figure of a command none of whose children was sampled yet, bytes. @default 150 MiB */
  readonly unknownCostBytes?: number;
  /** Retry-After of a refusal, s. @default 5 */
  readonly retryAfterSeconds?: number;
  /** Readings older than this are taken again before a decision, ms. @default 1000 */
  readonly freshMs?: number;
}

export interface CapacityStatus {
  readonly budgetMb: number;
  readonly source: string;
  readonly reserveMb: number;
  readonly gatewayMb: number;
  readonly childrenMb: number;
  readonly startingMb: number;
  readonly availableMb: number;
}

const DEFAULT_UNKNOWN_COST = 150 * MiB;
const mb = (bytes: number): number => Math.round(bytes / MiB);

export class Capacity implements MemoryGate {
  private readonly releasers: Releaser[] = [];
  private reservedBytes = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: CapacityOptions) {}

  get budget(): MemoryBudget {
    return this.options.budget;
  }

  /** Adds a way to free memory; releasers are asked in the order they were added. */
  addReleaser(releaser: Releaser): void {
    this.releasers.push(releaser);
  }

  /** What a new child of `spec` is planned at, bytes. */
  expectedCost(spec: CommandSpec): number {
    const { sampler } = this.options;
    const highWater = sampler.highWater(spec.key);
    const figure = highWater > 0 ? highWater : (this.options.unknownCostBytes ?? DEFAULT_UNKNOWN_COST);
    const limit = sampler.limitOf({ spec }).bytes;
    return limit > 0 ? Math.min(figure, limit) : figure;
  }

  /** Every child tree as counted now (starting ones at least at their expected cost), bytes. */
  childrenBytes(): number {
    let total = 0;
    for (const child of this.options.sampler.children()) total += this.options.sampler.cost(child, this.expectedCost(child.spec));
    return total;
  }

  /** The gateway, its children and the starts under way, bytes. */
  usedBytes(): number {
    return this.options.sampler.gatewayBytes + this.childrenBytes() + this.reservedBytes;
  }

  /** What may still be planned for children, bytes (negative when over). */
  availableBytes(): number {
    const { bytes, reserveBytes } = this.options.budget;
    return bytes - reserveBytes - this.usedBytes();
  }

  /** True when a child of `spec` fits now, without freeing anything (warm spares ask this). */
  fits(spec: CommandSpec): boolean {
    return this.expectedCost(spec) <= this.availableBytes();
  }

  /**
   * Waits its turn, frees memory if needed, and reserves `spec`'s expected cost for a start.
   * Resolves with the release of that reservation (call it once the child is tracked or the
   * start failed; idempotent). Rejects with MemoryBudgetError when nothing more can be freed.
   */
  admit(spec: CommandSpec): Promise<() => void> {
    const turn = this.queue.then(() => this.admitNow(spec));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  status(): CapacityStatus {
    const { budget, sampler } = this.options;
    return {
      budgetMb: mb(budget.bytes),
      source: budget.source,
      reserveMb: mb(budget.reserveBytes),
      gatewayMb: mb(sampler.gatewayBytes),
      childrenMb: mb(this.childrenBytes()),
      startingMb: mb(this.reservedBytes),
      availableMb: mb(this.availableBytes()),
    };
  }

  private async admitNow(spec: CommandSpec): Promise<() => void> {
    const { sampler } = this.options;
    sampler.refresh(this.options.freshMs ?? 1000);
    const need = this.expectedCost(spec);
    for (;;) {
      const available = this.availableBytes();
      if (need <= available) return this.reserve(need);
      if (!(await this.release(need - available))) break;
      sampler.sample();
    }
    const { budget } = this.options;
    this.options.logger.warn('new child refused: memory budget', {
      command: spec.key,
      budgetMb: mb(budget.bytes),
      usedMb: mb(this.usedBytes()),
      neededMb: mb(need),
    });
    throw new MemoryBudgetError(mb(budget.bytes), mb(this.usedBytes()), mb(need), budget.source, this.options.retryAfterSeconds ?? 5);
  }

  /** Asks the releasers in order until one freed something. */
  private async release(shortfall: number): Promise<boolean> {
    for (const releaser of this.releasers) {
      try {
        if (await releaser(shortfall)) return true;
      } catch (error) {
        this.options.logger.warn('could not free memory', { error: String(error) });
      }
    }
    return false;
  }

  private reserve(bytes: number): () => void {
    this.reservedBytes += bytes;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.reservedBytes -= bytes;
    };
  }
}
