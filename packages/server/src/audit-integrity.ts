import { GENESIS_HASH, describeError, recordHash, verifyCheckpointSignature, type AuditReader, type Checkpoint, type Hasher, type JsonObject } from '@mandate/core';

export interface AuditIntegrityLog {
  error(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface AuditIntegrityOptions {
  readonly reader: Pick<AuditReader, 'head' | 'readRange'>;
  /** every signed checkpoint known: the store's, the data folder's copy, the anchor file's */
  readonly checkpoints: () => Promise<readonly Checkpoint[]>;
  readonly publicKeys: () => ReadonlyMap<string, JsonObject>;
  readonly hasher: Hasher;
  /** how often the check runs in the background (readiness reads its last result, never runs it) */
  readonly intervalMs: number;
  /** records after the newest checkpoint walked at most (the tail is bounded by checkpoint_every anyway) */
  readonly maxTail: number;
}

export interface AuditIntegrityState {
  readonly ok: boolean;
  /** the newest signed checkpoint checked against the log (0: none yet) */
  readonly anchoredSeq: number;
  /** records after it whose links were checked */
  readonly tailChecked: number;
  readonly problem: { readonly code: string; readonly seq: number; readonly message: string } | undefined;
}

/**
 * Whether the audit log this node appends to still holds what was signed, for readiness: the
 * newest signed checkpoint (the store's, the data folder's copy or an anchor file's) verifies,
 * the log still reaches it and holds that very record there, and the records after it link up
 * to the head. A log cut back below a checkpoint (a restored old backup, a truncated table) or a
 * rewritten record under one makes the node not ready instead of serving on a chain that
 * `audit verify` calls broken. Runs at start and every `intervalMs` in the background (reading
 * the checkpoints, one signature check, a walk of the unanchored tail), never on a request:
 * readiness is public. The full walk from record 1 stays with `audit verify`.
 */
export class AuditIntegrity {
  private last: { state: AuditIntegrityState } | undefined;
  private running: Promise<AuditIntegrityState> | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly o: AuditIntegrityOptions;
  private readonly log: AuditIntegrityLog;

  constructor(o: AuditIntegrityOptions, log: AuditIntegrityLog) {
    this.o = o;
    this.log = log;
  }

  /** the first check now, then one every intervalMs */
  start(): void {
    void this.recheck();
    this.timer ??= setInterval(() => void this.recheck(), this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** the last result (waiting for the first check, when it has not finished yet) */
  async state(): Promise<AuditIntegrityState> {
    return this.last?.state ?? (await this.recheck());
  }

  /** checks now (one check at a time: a caller during one gets its result) */
  recheck(): Promise<AuditIntegrityState> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(): Promise<AuditIntegrityState> {
    let state: AuditIntegrityState;
    try {
      state = await this.inspect();
    } catch (e) {
      // a store that does not answer is the store check's finding, not a broken chain
      state = this.last?.state ?? { ok: true, anchoredSeq: 0, tailChecked: 0, problem: undefined };
      this.log.error({ err: describeError(e) }, 'audit integrity check could not read the log');
    }
    const was = this.last?.state;
    if (!state.ok && (was === undefined || was.ok || was.problem?.code !== state.problem?.code)) {
      this.log.error({ event: 'audit.integrity_failed', problem: state.problem }, 'the audit log does not match its signed checkpoints: not ready (run mandate audit verify)');
    } else if (state.ok && was !== undefined && !was.ok) {
      this.log.info({ event: 'audit.integrity_restored', anchoredSeq: state.anchoredSeq }, 'the audit log matches its signed checkpoints again');
    }
    this.last = { state };
    return state;
  }

  private async inspect(): Promise<AuditIntegrityState> {
    // checkpoints first, then the head: a checkpoint signed meanwhile covers a head already committed
    const checkpoints = await this.o.checkpoints();
    const head = await this.o.reader.head();
    const records = head?.seq ?? 0;
    const broken = (anchoredSeq: number, code: string, seq: number, message: string): AuditIntegrityState => ({ ok: false, anchoredSeq, tailChecked: 0, problem: { code, seq, message } });
    let newest: Checkpoint | undefined;
    for (const cp of checkpoints) if (newest === undefined || cp.seq > newest.seq) newest = cp;
    let prevHash = GENESIS_HASH;
    let from = 1;
    if (newest !== undefined) {
      if (!(await verifyCheckpointSignature(newest, this.o.publicKeys()))) {
        return broken(0, 'CHECKPOINT_SIGNATURE_INVALID', newest.seq, `the newest checkpoint (record ${newest.seq}) has an invalid signature`);
      }
      if (newest.seq > records) {
        return broken(0, 'TRUNCATED', records + 1, `a signed checkpoint covers ${newest.seq} records but the log ends at ${records}: the log was cut back (or an older copy restored)`);
      }
      const [at] = await this.o.reader.readRange(newest.seq, 1);
      if (at === undefined || at.seq !== newest.seq || at.hash !== newest.headHash || recordHash(at, this.o.hasher) !== at.hash) {
        return broken(0, 'CHECKPOINT_MISMATCH', newest.seq, `record ${newest.seq} differs from the signed checkpoint`);
      }
      prevHash = at.hash;
      from = newest.seq + 1;
    }
    const anchoredSeq = newest?.seq ?? 0;
    let checked = 0;
    const last = Math.min(records, from - 1 + this.o.maxTail);
    while (from <= last) {
      const page = await this.o.reader.readRange(from, Math.min(1000, last - from + 1));
      if (page.length === 0) return broken(anchoredSeq, 'SEQ_GAP', from, `record ${from} is missing below the head (${records})`);
      for (const r of page) {
        if (r.seq !== from) return broken(anchoredSeq, 'SEQ_GAP', from, `expected record ${from}, found ${r.seq}: a record was deleted or reordered`);
        if (r.prevHash !== prevHash) return broken(anchoredSeq, 'PREV_HASH_MISMATCH', r.seq, `record ${r.seq} does not link to record ${r.seq - 1}`);
        if (recordHash(r, this.o.hasher) !== r.hash) return broken(anchoredSeq, 'HASH_MISMATCH', r.seq, `record ${r.seq} was modified: its content does not match its hash`);
        prevHash = r.hash;
        from += 1;
        checked += 1;
        if (from > last) break;
      }
    }
    return { ok: true, anchoredSeq, tailChecked: checked, problem: undefined };
  }
}
