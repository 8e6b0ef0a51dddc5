interface Pending<E, R> {
  readonly entry: E;
  resolve(result: R): void;
  reject(error: unknown): void;
}

/**
 * Group commit: entries submitted in the same turn of the event loop are written in one
 * transaction (one fsync), and each caller resolves only after that transaction committed.
 * Durability and throughput then stop fighting: N concurrent decisions cost one commit.
 */
export class GroupCommit<E, R> {
  private queue: Pending<E, R>[] = [];
  private scheduled = false;
  private readonly writeBatch: (entries: readonly E[]) => Promise<R[]> | R[];
  private readonly schedule: (fn: () => void) => void;
  private readonly maxBatch: number;

  /**
   * @param writeBatch writes every entry in one durable transaction and returns one result per
   *   entry, in order; throwing fails every entry of the batch (nothing was committed)
   * @param schedule runs `fn` after the current turn (setImmediate in Node)
   */
  constructor(writeBatch: (entries: readonly E[]) => Promise<R[]> | R[], schedule: (fn: () => void) => void, maxBatch = 256) {
    this.writeBatch = writeBatch;
    this.schedule = schedule;
    this.maxBatch = maxBatch;
  }

  submit(entry: E): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ entry, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        this.schedule(() => void this.flush());
      }
    });
  }

  /** number of entries waiting for the next commit */
  get pending(): number {
    return this.queue.length;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const results = await this.writeBatch(batch.map((p) => p.entry));
        if (results.length !== batch.length) throw new Error(`store committed ${results.length} of ${batch.length} entries`);
        batch.forEach((p, i) => p.resolve(results[i] as R));
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.scheduled = false;
  }
}
