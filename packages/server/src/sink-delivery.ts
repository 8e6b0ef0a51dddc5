/**
 * Durable delivery of a stored feed (alerts, kills) to one webhook (a sink): driven by the store,
 * not by a queue in memory. The sink keeps a cursor in the store (the last entry delivered,
 * passed over or dropped); a node holding the sink's lease reads the entries after it, in store
 * order, and posts them one at a time, each until it lands. So a receiver that is down, or a node
 * that restarts, loses nothing: every entry is delivered after recovery, in order, at least once
 * (each carries an id a receiver dedupes on). What is dropped — an entry older than `retentionMs`
 * still undelivered, or one the receiver keeps rejecting (a 4xx) — is logged with its id and
 * counted in the store. On several nodes the lease makes one node deliver each sink.
 *
 * Nothing here is on a decision's path: the loop runs beside the server and only reads and
 * advances the store.
 */
import type { AlertSinkState, AlertSinkStore, Clock } from '@mandate/core';
import type { WebhookLog } from './webhook.ts';

export interface SinkDeliveryOptions {
  /** the sink's name: its cursor and counters are kept under it */
  readonly sink: string;
  readonly url: string;
  /** attempts for an entry the receiver rejects (a 4xx other than 408, 425, 429); then it is dropped */
  readonly maxAttempts: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  readonly timeoutMs: number;
  /** an undelivered entry older than this is dropped (logged and counted) */
  readonly retentionMs: number;
  /** how often an idle node looks for entries other nodes stored, or for a free lease */
  readonly pollMs: number;
}

/** What a sink delivers: a stored feed, read in order, and how one entry is posted. */
export interface SinkFeed<E> {
  /** what the logs call an entry ('alert', 'kill') */
  readonly what: string;
  /** registers the sink (its cursor at the feed's head, the first time) */
  open(sink: string, now: number): Promise<AlertSinkState>;
  after(seq: number, limit: number): Promise<readonly E[]>;
  /** the entry's place in the feed, its id (logs) and its time (retention) */
  place(e: E): { readonly seq: number; readonly id: string; readonly ts: number };
  /** whether this sink is owed the entry; one it is not is passed over (default: every entry) */
  owed?(e: E): boolean;
  /** the body and the headers of one attempt, signed at `now` */
  request(e: E, attempt: number, now: number): { readonly body: string; readonly headers: Readonly<Record<string, string>> };
}

export interface SinkDeliveryDeps<E> {
  readonly store: Pick<AlertSinkStore, 'claimSink' | 'advanceSink' | 'releaseSink'>;
  readonly feed: SinkFeed<E>;
  readonly clock: Clock;
  /** this node's name in the lease */
  readonly owner: string;
  readonly log: WebhookLog;
}

/** What this node did for the sink since it started (the durable counters are in the store). */
export interface SinkDeliveryStats {
  attempts: number;
  failures: number;
  delivered: number;
  dropped: number;
  /** whether this node holds the sink's lease now */
  delivering: boolean;
}

type Outcome = 'delivered' | 'dropped' | 'lost' | 'closed';

const BATCH = 100;
/** entry ids per log line when entries are dropped */
const IDS_PER_LINE = 100;

export class SinkDelivery<E> {
  private readonly o: SinkDeliveryOptions;
  private readonly d: SinkDeliveryDeps<E>;
  /** a lease outlives the longest wait between two renewals: a backoff and a request */
  readonly leaseMs: number;
  readonly stats: SinkDeliveryStats = { attempts: 0, failures: 0, delivered: 0, dropped: 0, delivering: false };
  private closed = false;
  /** cuts the request in flight short when the loop closes */
  private readonly abort = new AbortController();
  /** while this node holds the lease: until when, and the sink's cursor (only this node moves it) */
  private heldUntil = 0;
  private cursor = 0;
  private loop: Promise<void> | undefined;
  private wakeIdle: (() => void) | undefined;
  private wakeAny: (() => void) | undefined;
  /** a wake that came while the loop was reading: the next idle wait does not wait */
  private woken = false;

  constructor(opts: SinkDeliveryOptions, deps: SinkDeliveryDeps<E>) {
    this.o = opts;
    this.d = deps;
    this.leaseMs = Math.max(30_000, opts.maxBackoffMs + opts.timeoutMs + 15_000);
  }

  get sink(): string {
    return this.o.sink;
  }

  /** the receiver's address without its query (which may carry a token), for status and logs */
  get target(): string {
    const u = new URL(this.o.url);
    return `${u.origin}${u.pathname}`;
  }

  /** registers the sink (its cursor at the head, the first time) and starts delivering */
  async start(): Promise<void> {
    await this.d.feed.open(this.o.sink, this.d.clock.now());
    this.loop = this.run();
  }

  /** a new entry was stored on this node: an idle loop looks now instead of at its next poll */
  wake(): void {
    if (this.wakeIdle) this.wakeIdle();
    else this.woken = true;
  }

  /** stops after the request in flight and gives the lease up (another node need not wait for it) */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.wakeAny?.();
    await this.loop;
    if (this.stats.delivering) await this.d.store.releaseSink(this.o.sink, this.d.owner).catch(() => undefined);
    this.stats.delivering = false;
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      try {
        if (!(await this.holdLease())) {
          await this.idle();
          continue;
        }
        // a wake from here on is for an entry this read may not see
        this.woken = false;
        const batch = await this.d.feed.after(this.cursor, BATCH);
        if (batch.length === 0) {
          await this.idle();
          continue;
        }
        await this.deliverBatch(batch);
      } catch (e) {
        // the store did not answer: nothing moved; try again after a pause
        this.d.log.warn({ err: e, sink: this.o.sink }, `${this.d.feed.what} delivery: the store failed; retrying`);
        await this.idle();
      }
    }
  }

  /**
   * Whether this node holds the sink's lease, taking or renewing it when it could run out before
   * the longest wait ahead (a backoff and a request): so an idle node writes to the store only
   * every few seconds, and never posts without a lease that outlasts the post.
   */
  private async holdLease(): Promise<boolean> {
    const now = this.d.clock.now();
    if (this.stats.delivering && this.heldUntil - now > this.o.maxBackoffMs + this.o.timeoutMs + 5_000) return true;
    const state = await this.d.store.claimSink(this.o.sink, this.d.owner, now, now + this.leaseMs);
    this.stats.delivering = state !== undefined;
    if (state === undefined) return false;
    this.heldUntil = state.leaseUntil;
    this.cursor = state.cursor;
    return true;
  }

  /** moves the sink's cursor (only the lease holder can); a refusal means the lease is gone */
  private async advance(to: number, counts: { delivered: number; dropped: number }, lastError: string | undefined): Promise<boolean> {
    const moved = await this.d.store.advanceSink(this.o.sink, this.d.owner, to, counts, lastError, this.d.clock.now());
    if (moved) this.cursor = Math.max(this.cursor, to);
    else this.stats.delivering = false;
    return moved;
  }

  private tooOld(e: E): boolean {
    return this.d.clock.now() - this.d.feed.place(e).ts > this.o.retentionMs;
  }

  private owed(e: E): boolean {
    return this.d.feed.owed?.(e) ?? true;
  }

  private async deliverBatch(batch: readonly E[]): Promise<void> {
    // entries this sink is not owed, or owes no longer: the cursor moves past them together
    let passed: E[] = [];
    for (const e of batch) {
      if (this.closed) return;
      if (!this.owed(e) || this.tooOld(e)) {
        passed.push(e);
        continue;
      }
      if (passed.length > 0 && !(await this.pass(passed))) return;
      passed = [];
      const outcome = await this.deliverOne(e);
      if (outcome === 'lost' || outcome === 'closed') return;
    }
    if (passed.length > 0) await this.pass(passed);
  }

  /** moves past entries not owed (silently) and too old ones (dropped: logged and counted) */
  private async pass(entries: readonly E[]): Promise<boolean> {
    const to = this.d.feed.place(entries.at(-1) as E).seq;
    const old = entries.filter((e) => this.owed(e));
    if (old.length === 0) return this.advance(to, { delivered: 0, dropped: 0 }, undefined);
    return this.drop(old, to, 'older than the retention period', undefined);
  }

  /** posts one entry until it lands, is dropped, the lease is lost or the loop closes */
  private async deliverOne(e: E): Promise<Outcome> {
    const { seq, id } = this.d.feed.place(e);
    let delay = this.o.backoffMs;
    let rejections = 0;
    for (let attempt = 1; ; attempt++) {
      if (this.closed) return 'closed';
      if (this.tooOld(e)) return (await this.drop([e], seq, 'older than the retention period', undefined)) ? 'dropped' : 'lost';
      // a node without a lease that outlasts this attempt stops before posting
      if (!(await this.holdLease())) return 'lost';
      this.stats.attempts += 1;
      const r = await this.post(e, attempt);
      if (r.ok) {
        this.stats.delivered += 1;
        return (await this.advance(seq, { delivered: 1, dropped: 0 }, undefined)) ? 'delivered' : 'lost';
      }
      this.stats.failures += 1;
      this.d.log.warn({ sink: this.o.sink, url: this.target, [this.d.feed.what]: id, attempt, error: r.error }, `${this.d.feed.what} webhook failed`);
      if (r.rejected && ++rejections >= this.o.maxAttempts) return (await this.drop([e], seq, `rejected by the receiver ${rejections} time(s)`, r.error)) ? 'dropped' : 'lost';
      // the last error, for the status endpoint (the cursor does not move)
      if (!(await this.advance(seq - 1, { delivered: 0, dropped: 0 }, r.error))) return 'lost';
      await this.backoff(delay);
      delay = Math.min(delay * 2, this.o.maxBackoffMs);
    }
  }

  /** moves the cursor to `to`, past entries that will not be delivered: logged with their ids, counted */
  private async drop(entries: readonly E[], to: number, why: string, lastError: string | undefined): Promise<boolean> {
    if (!(await this.advance(to, { delivered: 0, dropped: entries.length }, lastError ?? `dropped ${entries.length}: ${why}`))) return false;
    this.stats.dropped += entries.length;
    for (let i = 0; i < entries.length; i += IDS_PER_LINE) {
      const ids = entries.slice(i, i + IDS_PER_LINE).map((x) => this.d.feed.place(x).id);
      this.d.log.warn({ sink: this.o.sink, url: this.target, count: entries.length, [`${this.d.feed.what}s`]: ids, reason: why }, `${this.d.feed.what} webhook: ${this.d.feed.what}s dropped undelivered`);
    }
    return true;
  }

  private async post(e: E, attempt: number): Promise<{ ok: true } | { ok: false; rejected: boolean; error: string }> {
    const { body, headers } = this.d.feed.request(e, attempt, this.d.clock.now());
    try {
      const res = await fetch(this.o.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
        signal: AbortSignal.any([AbortSignal.timeout(this.o.timeoutMs), this.abort.signal]),
      });
      await res.body?.cancel().catch(() => undefined);
      if (res.ok) return { ok: true };
      // a receiver that is down or overloaded is waited for; one that refuses this entry is not, forever
      const transient = res.status >= 500 || res.status === 408 || res.status === 425 || res.status === 429;
      return { ok: false, rejected: !transient, error: `HTTP ${res.status}` };
    } catch (err) {
      return { ok: false, rejected: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
    }
  }

  /** waits `pollMs`, or less when an entry is stored here or the loop closes */
  private idle(): Promise<void> {
    return this.wait(this.o.pollMs, true);
  }

  /** waits `ms`; only closing cuts it short */
  private backoff(ms: number): Promise<void> {
    return this.wait(ms, false);
  }

  private wait(ms: number, wakeable: boolean): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (wakeable && this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wakeAny = undefined;
        this.wakeIdle = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      t.unref();
      this.wakeAny = done;
      if (wakeable) this.wakeIdle = done;
    });
  }
}
