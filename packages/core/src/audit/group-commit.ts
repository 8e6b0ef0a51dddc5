interface Pending<E, R> {
  readonly entry: E;
  readonly lazy: boolean;
  resolve(result: R): void;
  reject(error: unknown): void;
}

export interface GroupCommitOptions {
  /** most entries in one transaction (default 256) */
  readonly maxBatch?: number;
  /**
   * How long a lazy entry may wait for company before it is committed on its own (default 5 ms).
   * Lazy entries need `later`; without it they are committed like any other.
   */
  readonly lazyDelayMs?: number;
  /** runs `fn` after `ms` (setTimeout in Node) and returns what cancels it; the core has no timers */
  readonly later?: (fn: () => void, ms: number) => () => void;
}

export interface SubmitOptions {
  /**
   * Nobody waits on this entry to answer a call (an outcome record): it joins the next commit
   * instead of forcing one of its own, and is committed at the latest `lazyDelayMs` later. It
   * still resolves only once durably committed.
   */
  readonly lazy?: boolean;
}

/**
 * Group commit: entries submitted in the same turn of the event loop are written in one
 * transaction (one fsync), and each caller resolves only after that transaction committed.
 * Durability and throughput then stop fighting: N concurrent decisions cost one commit.
 *
 * Lazy entries wait (boundedly) for the next urgent one, so a call's outcome record shares the
 * next decision's fsync instead of holding the event loop with a commit of its own. One queue
 * keeps every entry in submission order whatever its urgency.
 */
export class GroupCommit<E, R> {
  private queue: Pending<E, R>[] = [];
  /** urgent entries in `queue`: while there are some, the queue is committed now */
  private urgent = 0;
  /** every queued entry, lazy ones included, is due now (the delay passed, or a drain asked) */
  private due = false;
  private running = false;
  private cancelTimer: (() => void) | undefined;
  private readonly writeBatch: (entries: readonly E[]) => Promise<R[]> | R[];
  private readonly schedule: (fn: () => void) => void;
  private readonly maxBatch: number;
  private readonly lazyDelayMs: number;
  private readonly later: ((fn: () => void, ms: number) => () => void) | undefined;

  /**
   * @param writeBatch writes every entry in one durable transaction and returns one result per
   *   entry, in order; throwing fails every entry of the batch (nothing was committed)
   * @param schedule runs `fn` after the current turn (setImmediate in Node)
   */
  constructor(writeBatch: (entries: readonly E[]) => Promise<R[]> | R[], schedule: (fn: () => void) => void, options: GroupCommitOptions = {}) {
    this.writeBatch = writeBatch;
    this.schedule = schedule;
    this.maxBatch = options.maxBatch ?? 256;
    this.lazyDelayMs = options.lazyDelayMs ?? 5;
    this.later = options.later;
    if (!Number.isSafeInteger(this.maxBatch) || this.maxBatch < 1) throw new TypeError(`maxBatch must be a positive integer, got ${String(this.maxBatch)}`);
    if (!Number.isFinite(this.lazyDelayMs) || this.lazyDelayMs < 0) throw new TypeError(`lazyDelayMs must be a non-negative number, got ${String(this.lazyDelayMs)}`);
  }

  submit(entry: E, options: SubmitOptions = {}): Promise<R> {
    const lazy = options.lazy === true && this.later !== undefined;
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ entry, lazy, resolve, reject });
      if (lazy) {
        this.armTimer();
        // a commit under way takes it anyway if more work is due
      } else {
        this.urgent++;
        this.kick();
      }
    });
  }

  /** Commits every waiting entry (lazy ones included) without waiting for their delay: at drain. */
  commitPending(): void {
    if (this.queue.length === 0) return;
    this.due = true;
    this.kick();
  }

  /** number of entries waiting for the next commit */
  get pending(): number {
    return this.queue.length;
  }

  private armTimer(): void {
    if (this.cancelTimer !== undefined || this.later === undefined) return;
    this.cancelTimer = this.later(() => {
      this.cancelTimer = undefined;
      this.commitPending();
    }, this.lazyDelayMs);
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(() => void this.flush());
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0 && (this.urgent > 0 || this.due)) {
      const batch = this.queue.splice(0, this.maxBatch);
      for (const p of batch) if (!p.lazy) this.urgent--;
      if (this.queue.length === 0) {
        // every lazy entry rides along: nothing is left for the timer
        this.due = false;
        this.cancelTimer?.();
        this.cancelTimer = undefined;
      }
      try {
        const results = await this.writeBatch(batch.map((p) => p.entry));
        if (results.length !== batch.length) throw new Error(`store committed ${results.length} of ${batch.length} entries`);
        batch.forEach((p, i) => p.resolve(results[i] as R));
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.running = false;
    // lazy entries that arrived during the last commit wait for company, at most the delay
    if (this.queue.length > 0) this.armTimer();
  }
}
