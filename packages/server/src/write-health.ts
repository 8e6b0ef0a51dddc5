import { MandateError, describeError } from '@mandate/core';

export interface WriteHealthLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface WriteHealthOptions {
  /** a successful commit younger than this answers readiness without a probe */
  readonly freshMs: number;
  /** at most one probe this often, whoever asks (readiness is public) */
  readonly minProbeGapMs: number;
  /** milliseconds on a monotonic clock (not the domain clock, which tests freeze) */
  readonly now: () => number;
}

export interface WriteHealthState {
  readonly ok: boolean;
  /** why the last write failed, when it did */
  readonly reason: string | undefined;
}

/**
 * Whether this node can commit, for readiness: the outcome of the latest audit commit, or of
 * a write probe (the store's `probeWrite`: a small committed write outside the audit chain)
 * when no commit says so recently. A full disk then makes the node not ready as soon as a
 * decision fails to commit (or a probe does, when idle), and ready again once a probe commits.
 */
export class WriteHealth {
  private last: { ok: boolean; at: number; reason: string | undefined } | undefined;
  private probing: Promise<void> | undefined;
  private readonly probe: () => Promise<void>;
  private readonly o: WriteHealthOptions;
  private readonly log: WriteHealthLog;

  constructor(probe: () => Promise<void>, o: WriteHealthOptions, log: WriteHealthLog) {
    this.probe = probe;
    this.o = o;
    this.log = log;
  }

  /** an audit commit succeeded */
  committed(): void {
    this.record(true, undefined);
  }

  /** an audit commit failed: only failures of the store count (not a refused draft) */
  failed(error: unknown): void {
    if (error instanceof MandateError && error.code !== 'AUDIT_UNAVAILABLE' && error.code !== 'STORE_UNAVAILABLE') return;
    this.record(false, describeError(error));
  }

  async check(): Promise<WriteHealthState> {
    const now = this.o.now();
    const l = this.last;
    const fresh = l !== undefined && now - l.at < (l.ok ? this.o.freshMs : this.o.minProbeGapMs);
    if (!fresh) {
      this.probing ??= this.runProbe().finally(() => {
        this.probing = undefined;
      });
      await this.probing;
    }
    const r = this.last;
    return r === undefined ? { ok: false, reason: 'no write attempted' } : { ok: r.ok, reason: r.reason };
  }

  private async runProbe(): Promise<void> {
    try {
      await this.probe();
      this.record(true, undefined);
    } catch (e) {
      this.record(false, describeError(e));
    }
  }

  private record(ok: boolean, reason: string | undefined): void {
    const was = this.last?.ok;
    this.last = { ok, at: this.o.now(), reason };
    // a change, not every outcome: a full disk fails every decision
    if (was !== false && !ok) this.log.warn({ event: 'store.unavailable', reason }, 'the store cannot commit: not ready');
    else if (was === false && ok) this.log.info({ event: 'store.recovered' }, 'the store commits again: ready');
  }
}
