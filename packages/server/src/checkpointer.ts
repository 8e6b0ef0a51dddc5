import {
  MandateError,
  describeError,
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

/** told the outcome of every audit commit (readiness: write-health.ts) */
export interface CommitObserver {
  committed(): void;
  failed(error: unknown): void;
}

export interface CheckpointerStatus {
  /** the newest seq this process knows a checkpoint covers (0: none yet) */
  readonly checkpointedSeq: number;
  /** when this process last signed one (ms since the epoch), if it has */
  readonly lastSignedAt: number | undefined;
  /** why the last attempt failed, while it has not succeeded since */
  readonly lastError: string | undefined;
}

/**
 * Wraps the audit appender and keeps the records no signed checkpoint covers (the unanchored
 * tail) bounded: it signs the head (Ed25519) into the checkpoint store after every `every`
 * records this process appends, and every `intervalMs` whenever the head has moved past the
 * newest checkpoint, whoever appended (another node, a run of this one that crashed). So a
 * record waits at most `intervalMs` (plus the signing) to be covered, idle or not, as long as
 * one node runs. At close it lets the appends under way finish, refuses later ones, and signs
 * the final head, so a clean shutdown leaves no unanchored tail. Signing happens beside the
 * hot path, never inside it.
 */
export class CheckpointingAudit implements AuditAppender, DecisionCommitter {
  private sinceLast = 0;
  /** the newest checkpoint's seq as last read or signed here (listing them all is O(log size)) */
  private lastSeq: number | undefined;
  private lastSignedAt: number | undefined;
  private lastError: string | undefined;
  private signing: Promise<void> | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private closing = false;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly inner: AuditAppender & AuditReader & DecisionCommitter;
  private readonly checkpoints: CheckpointStore;
  private readonly ring: KeyRing;
  private readonly clock: Clock;
  private readonly every: number;
  private readonly log: CheckpointerLog;
  private readonly observer: CommitObserver | undefined;

  constructor(
    inner: AuditAppender & AuditReader & DecisionCommitter,
    checkpoints: CheckpointStore,
    ring: KeyRing,
    clock: Clock,
    every: number,
    intervalMs: number,
    log: CheckpointerLog,
    observer?: CommitObserver,
  ) {
    this.observer = observer;
    this.inner = inner;
    this.checkpoints = checkpoints;
    this.ring = ring;
    this.clock = clock;
    this.every = every;
    this.log = log;
    // not only when this process appended: the head may have moved without it (checkNow reads it)
    this.timer = setInterval(() => this.trigger(), intervalMs);
    this.timer.unref();
  }

  append(drafts: readonly AuditDraft[]): Promise<AuditRecord[]> {
    return this.tracked(async () => this.counted(await this.inner.append(drafts)));
  }

  commitDecision(entry: DecisionCommit): Promise<DecisionCommitResult> {
    return this.tracked(async () => {
      const result = await this.inner.commitDecision(entry);
      this.counted(result.records);
      return result;
    });
  }

  private tracked<T>(fn: () => Promise<T>): Promise<T> {
    // a record committed after the final checkpoint would be left outside it
    if (this.closing) return Promise.reject(new MandateError('AUDIT_UNAVAILABLE', 'the audit log is closing'));
    const p = fn();
    this.inFlight.add(p);
    void p.then(
      () => {
        this.inFlight.delete(p);
        this.observer?.committed();
      },
      (e: unknown) => {
        this.inFlight.delete(p);
        this.observer?.failed(e);
      },
    );
    return p;
  }

  private counted(records: AuditRecord[]): AuditRecord[] {
    this.sinceLast += records.length;
    if (this.sinceLast >= this.every) this.trigger();
    return records;
  }

  /** Signs a checkpoint of the current head now, if no checkpoint covers it yet. */
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
    this.lastSignedAt = this.clock.now();
    this.lastError = undefined;
  }

  status(): CheckpointerStatus {
    return { checkpointedSeq: this.lastSeq ?? 0, lastSignedAt: this.lastSignedAt, lastError: this.lastError };
  }

  /** Starts a checkpoint in the background unless one is under way (also used at start-up). */
  trigger(): void {
    if (this.signing) return;
    this.signing = this.checkpointNow()
      .catch((e: unknown) => {
        this.lastError = describeError(e);
        this.log.error({ err: e }, 'audit checkpoint failed');
      })
      .finally(() => {
        this.signing = undefined;
      });
  }

  /** Stops the timer without a final checkpoint (a start-up that failed). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async close(): Promise<void> {
    this.stop();
    this.closing = true;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await this.checkpointNow();
  }
}
