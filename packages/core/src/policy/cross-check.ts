/**
 * Live cross-checking of the compiled policy evaluator (issue 10): a sampled fraction of
 * decisions is evaluated again by cedar-wasm, later and off the decision's path, and any
 * divergence is counted and reported. The core stays pure: the sampler and the scheduler are
 * injected (the server passes Math.random and setImmediate).
 */

export interface CrossCheckResult {
  readonly decision: string;
  readonly reason: string;
  readonly policyIds: readonly string[];
  readonly errors: readonly { readonly policyId: string; readonly message: string }[];
}

export interface Divergence {
  readonly policyVersion: string;
  readonly action: string;
  readonly principal: string;
  readonly resource: string;
  readonly compiled: CrossCheckResult;
  readonly cedar: CrossCheckResult;
}

export interface CrossCheckStats {
  readonly fraction: number;
  /** decisions re-evaluated by cedar-wasm */
  readonly checked: number;
  /** of those, how many answered differently */
  readonly divergences: number;
  /** sampled but not checked because the queue was full */
  readonly dropped: number;
  /** sampled but not checked because the per-second ceiling was reached */
  readonly rateLimited: number;
  readonly pending: number;
}

export interface CrossCheckerOptions {
  /** 0 ..= 1: the share of compiled decisions to re-check */
  readonly fraction: number;
  /** uniform in [0, 1) */
  readonly random: () => number;
  /** runs the callback later, outside the caller's turn (setImmediate) */
  readonly defer: (run: () => void) => void;
  readonly onDivergence?: ((d: Divergence) => void) | undefined;
  /** bound on decisions waiting for their check; beyond it samples are dropped (counted) */
  readonly maxQueue?: number | undefined;
  /** at most this many checks per deferred batch, so a batch never holds the loop for long */
  readonly batch?: number | undefined;
  /**
   * A ceiling on checks per second (a token bucket holding one second's worth): a cedar-wasm
   * evaluation costs hundreds of microseconds, so under heavy load the fraction alone would make
   * the checker the largest consumer of the decision thread. Absent: no ceiling.
   */
  readonly maxPerSecond?: number | undefined;
  /** milliseconds, for the ceiling (the server passes its clock) */
  readonly now?: (() => number) | undefined;
}

interface Job {
  readonly compiled: CrossCheckResult;
  readonly oracle: () => CrossCheckResult;
  readonly describe: () => Omit<Divergence, 'compiled' | 'cedar'>;
}

export function sameResult(a: CrossCheckResult, b: CrossCheckResult): boolean {
  if (a.decision !== b.decision || a.reason !== b.reason) return false;
  if (a.policyIds.length !== b.policyIds.length || a.errors.length !== b.errors.length) return false;
  for (let i = 0; i < a.policyIds.length; i++) if (a.policyIds[i] !== b.policyIds[i]) return false;
  for (let i = 0; i < a.errors.length; i++) {
    const x = a.errors[i] as CrossCheckResult['errors'][number];
    const y = b.errors[i] as CrossCheckResult['errors'][number];
    if (x.policyId !== y.policyId || x.message !== y.message) return false;
  }
  return true;
}

export class CrossChecker {
  readonly fraction: number;
  private readonly o: CrossCheckerOptions;
  private readonly queue: Job[] = [];
  private scheduled = false;
  private checked = 0;
  private divergences = 0;
  private dropped = 0;
  private rateLimited = 0;
  private tokens: number;
  private refilledAt: number | undefined;

  constructor(o: CrossCheckerOptions) {
    if (!(o.fraction >= 0 && o.fraction <= 1)) throw new RangeError('cross-check fraction must be within 0..1');
    if (o.maxPerSecond !== undefined && !(o.maxPerSecond > 0 && o.now)) throw new RangeError('a cross-check ceiling must be positive and needs a clock');
    this.fraction = o.fraction;
    this.o = o;
    this.tokens = o.maxPerSecond ?? 0;
  }

  /** Whether this decision is to be re-checked (cheap: a comparison when the fraction is 0). */
  sample(): boolean {
    if (!(this.fraction > 0 && (this.fraction >= 1 || this.o.random() < this.fraction))) return false;
    const max = this.o.maxPerSecond;
    if (max === undefined || !this.o.now) return true;
    const now = this.o.now();
    if (this.refilledAt !== undefined) this.tokens = Math.min(max, this.tokens + ((now - this.refilledAt) / 1000) * max);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.rateLimited += 1;
    return false;
  }

  offer(job: Job): void {
    if (this.queue.length >= (this.o.maxQueue ?? 1024)) {
      this.dropped += 1;
      return;
    }
    this.queue.push(job);
    if (!this.scheduled) {
      this.scheduled = true;
      this.o.defer(() => this.drain());
    }
  }

  private drain(): void {
    this.scheduled = false;
    const n = Math.min(this.queue.length, this.o.batch ?? 64);
    for (const job of this.queue.splice(0, n)) {
      let cedar: CrossCheckResult;
      try {
        cedar = job.oracle();
      } catch (e) {
        cedar = { decision: 'deny', reason: 'POLICY_EVALUATION_ERROR', policyIds: [], errors: [{ policyId: '*', message: (e as Error).message }] };
      }
      this.checked += 1;
      if (!sameResult(job.compiled, cedar)) {
        this.divergences += 1;
        this.o.onDivergence?.({ ...job.describe(), compiled: job.compiled, cedar });
      }
    }
    if (this.queue.length > 0 && !this.scheduled) {
      this.scheduled = true;
      this.o.defer(() => this.drain());
    }
  }

  stats(): CrossCheckStats {
    return { fraction: this.fraction, checked: this.checked, divergences: this.divergences, dropped: this.dropped, rateLimited: this.rateLimited, pending: this.queue.length };
  }
}
