import type { AuditDraft, AuditRecord } from './chain.ts';

interface Pending {
  readonly drafts: readonly AuditDraft[];
  resolve(records: AuditRecord[]): void;
  reject(error: unknown): void;
}

/**
 * Group commit: appends that arrive in the same turn of the event loop are written in one
 * transaction (one fsync), and each caller resolves only after that transaction committed.
 * Durability and throughput then stop fighting: N concurrent decisions cost one commit.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;

  private readonly writeBatch: (drafts: readonly AuditDraft[]) => Promise<AuditRecord[]> | AuditRecord[];
  private readonly schedule: (fn: () => void) => void;
  private readonly maxBatch: number;

  /**
   * @param writeBatch writes all drafts in one durable transaction and returns them linked, in order
   * @param schedule runs `fn` after the current turn (setImmediate in Node)
   */
  constructor(
    writeBatch: (drafts: readonly AuditDraft[]) => Promise<AuditRecord[]> | AuditRecord[],
    schedule: (fn: () => void) => void,
    maxBatch = 512,
  ) {
    this.writeBatch = writeBatch;
    this.schedule = schedule;
    this.maxBatch = maxBatch;
  }

  append(drafts: readonly AuditDraft[]): Promise<AuditRecord[]> {
    if (drafts.length === 0) return Promise.resolve([]);
    return new Promise<AuditRecord[]>((resolve, reject) => {
      this.queue.push({ drafts, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        this.schedule(() => void this.flush());
      }
    });
  }

  /** number of appends waiting for the next commit */
  get pending(): number {
    return this.queue.length;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch: Pending[] = [];
      let size = 0;
      while (this.queue.length > 0 && size < this.maxBatch) {
        const p = this.queue.shift() as Pending;
        batch.push(p);
        size += p.drafts.length;
      }
      const all = batch.flatMap((p) => p.drafts);
      try {
        const records = await this.writeBatch(all);
        if (records.length !== all.length) throw new Error(`store linked ${records.length} of ${all.length} records`);
        let i = 0;
        for (const p of batch) {
          p.resolve(records.slice(i, i + p.drafts.length));
          i += p.drafts.length;
        }
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.scheduled = false;
  }
}
