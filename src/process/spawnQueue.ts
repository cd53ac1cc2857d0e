/**
 * The queue that bounds how many children start at once (p-queue underneath), shared by
 * session starts and warm-pool refills. p-queue's clear() drops waiting tasks without
 * settling their promises; close() here settles every task that has not begun with
 * DrainingError instead, so nothing waits forever for a start that will never run: not a
 * lease, not closeAll(), which waits for the starts it knows of. Tasks already running
 * finish as usual (their callers stop what they produce during a drain).
 */
import PQueue from 'p-queue';
import { DrainingError } from '../errors.js';

export class SpawnQueue {
  private readonly queue: PQueue;
  /** Rejecters of tasks still waiting for a slot. */
  private readonly waiting = new Set<(error: Error) => void>();
  private closed = false;

  /** @param concurrency starts running at once */
  constructor(concurrency: number) {
    this.queue = new PQueue({ concurrency });
  }

  /** Runs `task` once a slot is free; a higher `priority` goes first. */
  add<T>(task: () => Promise<T>, priority: number): Promise<T> {
    if (this.closed) return Promise.reject(new DrainingError());
    return new Promise<T>((resolve, reject) => {
      this.waiting.add(reject);
      this.queue
        .add(
          async () => {
            // Settled by close() while queued: the slot is not used.
            if (!this.waiting.delete(reject)) return;
            await task().then(resolve, reject);
          },
          { priority },
        )
        .catch(reject);
    });
  }

  /** Refuses new tasks and settles every waiting one with DrainingError. Idempotent. */
  close(): void {
    this.closed = true;
    this.queue.clear();
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const reject of waiting) reject(new DrainingError());
  }
}
