import {
  signCheckpoint,
  type AuditAppender,
  type AuditDraft,
  type AuditReader,
  type AuditRecord,
  type CheckpointStore,
  type Clock,
  type DecisionCommit,
  type DecisionCommitResult,
  type DecisionCommitter,
  type KeyRing,
} from '@mandate/core';

export interface CheckpointerLog {
  error(obj: object, msg: string): void;
}

/**
 * Wraps the audit appender: after every `every` records, or `intervalMs` after the last signed
 * checkpoint if anything was appended since, signs the head (Ed25519) into the checkpoint store.
 * Signing happens beside the hot path, never inside it.
 */
export class CheckpointingAudit implements AuditAppender, DecisionCommitter {
  private sinceLast = 0;
  /** the newest checkpoint's seq as last read or signed here (listing them all is O(log size)) */
  private lastSeq: number | undefined;
  private signing: Promise<void> | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly inner: AuditAppender & AuditReader & DecisionCommitter;
  private readonly checkpoints: CheckpointStore;
  private readonly ring: KeyRing;
  private readonly clock: Clock;
  private readonly every: number;
  private readonly log: CheckpointerLog;

  constructor(inner: AuditAppender & AuditReader & DecisionCommitter, checkpoints: CheckpointStore, ring: KeyRing, clock: Clock, every: number, intervalMs: number, log: CheckpointerLog) {
    this.inner = inner;
    this.checkpoints = checkpoints;
    this.ring = ring;
    this.clock = clock;
    this.every = every;
    this.log = log;
    this.timer = setInterval(() => {
      if (this.sinceLast > 0) this.trigger();
    }, intervalMs);
    this.timer.unref();
  }

  async append(drafts: readonly AuditDraft[]): Promise<AuditRecord[]> {
    return this.counted(await this.inner.append(drafts));
  }

  async commitDecision(entry: DecisionCommit): Promise<DecisionCommitResult> {
    const result = await this.inner.commitDecision(entry);
    this.counted(result.records);
    return result;
  }

  private counted(records: AuditRecord[]): AuditRecord[] {
    this.sinceLast += records.length;
    if (this.sinceLast >= this.every) this.trigger();
    return records;
  }

  /** Signs a checkpoint of the current head now (also used at shutdown). */
  async checkpointNow(): Promise<void> {
    if (this.signing) await this.signing;
    const head = await this.inner.head();
    if (!head) return;
    // read once; afterwards this process knows what it signed (another node's checkpoint of the
    // same head at worst makes this one redundant, never wrong)
    this.lastSeq ??= (await this.checkpoints.listCheckpoints()).at(-1)?.seq ?? 0;
    if (this.lastSeq >= head.seq) return;
    this.sinceLast = 0;
    const key = this.ring.active();
    await this.checkpoints.addCheckpoint(await signCheckpoint({ seq: head.seq, hash: head.hash }, this.clock.now(), key));
    this.lastSeq = head.seq;
  }

  private trigger(): void {
    if (this.signing) return;
    this.signing = this.checkpointNow()
      .catch((e: unknown) => this.log.error({ err: e }, 'audit checkpoint failed'))
      .finally(() => {
        this.signing = undefined;
      });
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.checkpointNow();
  }
}
