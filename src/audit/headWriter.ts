/**
 * Keeps a trail's head file (./head.ts) in step with the lines written, cheaply: one
 * update in flight at a time; updates that arrive meanwhile are folded into the next one,
 * so a burst of records costs one head write, not one per record.
 *
 * Each update first syncs the trail's data to disk, then replaces the head: the head never
 * vouches for a line a power cut could still take away (which would look like removal).
 * A crash can leave the head behind the file (lines written, head not yet updated); the
 * open-time check and `audit verify` accept lines after the head's line for that reason.
 */
import { syncData, writeHead, type ChainHead } from './head.js';

export class HeadWriter {
  #latest: ChainHead | undefined;
  #persisted: ChainHead | undefined;
  #running: Promise<void> | undefined;
  /** The last attempt failed: wait for the next update (or flush) before trying again. */
  #failed = false;

  constructor(
    private readonly file: string,
    private readonly hmacKey: string | undefined,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** The trail now ends with the line `head` describes (its bytes are written). */
  update(head: ChainHead): void {
    this.#latest = head;
    this.#failed = false;
    this.#kick();
  }

  /** Resolves once the head file holds the latest update (or the attempt failed). */
  async flush(): Promise<void> {
    this.#failed = false;
    this.#kick();
    while (this.#running !== undefined) await this.#running;
  }

  #kick(): void {
    if (this.#running !== undefined || this.#failed || this.#latest === this.#persisted) return;
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
      this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#latest !== undefined && this.#latest !== this.#persisted) {
      const head = this.#latest;
      try {
        await syncData(this.file);
        await writeHead(this.file, head, this.hmacKey);
        this.#persisted = head;
      } catch (error) {
        this.#failed = true;
        this.onError(error);
        return;
      }
    }
  }
}
