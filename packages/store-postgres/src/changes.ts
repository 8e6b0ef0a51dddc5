/**
 * The change feed: how one node learns what another changed (a revoked token, a killed task, an
 * emergency stop) without a broker. Writers append to `changes` and NOTIFY in the transaction
 * that made the change (see `record_changes` in migrations.ts); each node LISTENs on a dedicated
 * connection and, on every (re)connect, re-reads the rows after the last one it saw, so a
 * notification lost while it was disconnected is still delivered.
 */
import { Client, escapeIdentifier, type ClientConfig, type Notification } from 'pg';
import { checkLimit, num, str, type Db, type Row } from './db.ts';

/** `kill`: a kill stored in the kill hooks' outbox (its id), so the node delivering a hook sends it at once */
export const CHANGE_KINDS = ['task', 'agent', 'revocation', 'control', 'approval', 'containment', 'kill'] as const;
export type StoreChangeKind = (typeof CHANGE_KINDS)[number];

/** One change another node may need to act on: drop a cache entry, reload a switch. */
export interface StoreChange {
  /** position in the feed: increasing, in commit order (gaps are possible) */
  readonly seq: number;
  readonly kind: StoreChangeKind;
  /** the id of what changed: task id, agent id, token jti, control key, approval id, kill id */
  readonly key: string;
}

export interface SubscribeOptions {
  /** deliver changes after this seq (default: only those committed after subscribe resolves) */
  readonly fromSeq?: number | undefined;
  /** connection losses and errors thrown by the callback (the feed itself carries on) */
  readonly onError?: ((error: unknown) => void) | undefined;
  /**
   * Changes after `afterSeq` up to `prunedUpto` were pruned before this subscriber could read
   * them (it was away longer than the feed is kept): drop everything cached from the store.
   */
  readonly onGap?: ((gap: { afterSeq: number; prunedUpto: number }) => void) | undefined;
  /**
   * The feed lost its connection after it was listening (the start of an outage, once per outage;
   * `onError` hears every failed attempt to come back as well).
   */
  readonly onLost?: ((error: unknown) => void) | undefined;
  /** listening and caught up again after a loss: how long it was away, how many attempts failed */
  readonly onReconnect?: ((outage: { downMs: number; failedAttempts: number }) => void) | undefined;
  /** re-reads the feed this often even without a notification, ms; default 30000 */
  readonly pollIntervalMs?: number | undefined;
}

export interface Subscription {
  /** the seq of the last change delivered */
  readonly lastSeq: number;
  /** true while listening and caught up; false while reconnecting */
  readonly connected: boolean;
  /** stops listening; idempotent */
  close(): Promise<void>;
}

export function changesChannel(schema: string): string {
  return `mandate_changes:${schema}`;
}

const KINDS: ReadonlySet<string> = new Set(CHANGE_KINDS);

function isKind(v: unknown): v is StoreChangeKind {
  return typeof v === 'string' && KINDS.has(v);
}

function toChange(r: Row): StoreChange | undefined {
  const kind = str(r, 'kind');
  return isKind(kind) ? { seq: num(r, 'seq'), kind, key: str(r, 'key') } : undefined;
}

const PAGE = 500;
const SELECT_AFTER = 'SELECT seq, kind, key FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2';

/** Changes after `seq`, oldest first; kinds this build does not know are skipped. */
export async function changesSince(db: Db, seq: number, limit: number): Promise<StoreChange[]> {
  const rows = await db.rows(SELECT_AFTER, [seq, checkLimit(limit)]);
  return rows.map(toChange).filter((c): c is StoreChange => c !== undefined);
}

/** the newest seq in the feed (or pruned from it), 0 when there never was one */
export async function headSeq(q: { query(text: string): Promise<{ rows: Row[] }> }): Promise<number> {
  const { rows } = await q.query('SELECT greatest((SELECT max(seq) FROM changes), (SELECT upto FROM changes_pruned), 0)::bigint AS seq');
  return rows[0] === undefined ? 0 : num(rows[0], 'seq');
}

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;

/**
 * One dedicated connection that LISTENs. All reading happens in one loop, so changes are
 * delivered once each and in order; a notification that is exactly the next seq is delivered
 * straight from its payload (no round trip), anything else makes the loop re-read the table.
 */
export class ChangeListener implements Subscription {
  private seq = 0;
  private live = false;
  private client: Client | undefined;
  private running = false;
  private dirty = false;
  private closed = false;
  private backoffMs = MIN_BACKOFF_MS;
  private outage: { since: number; failedAttempts: number } | undefined;
  private wakeSleep: (() => void) | undefined;
  private poll: ReturnType<typeof setInterval> | undefined;

  private readonly config: ClientConfig;
  private readonly channel: string;
  private readonly onChange: (c: StoreChange) => void;
  private readonly opts: SubscribeOptions;

  constructor(config: ClientConfig, channel: string, onChange: (c: StoreChange) => void, opts: SubscribeOptions) {
    this.config = config;
    this.channel = channel;
    this.onChange = onChange;
    this.opts = opts;
  }

  get lastSeq(): number {
    return this.seq;
  }

  get connected(): boolean {
    return this.live;
  }

  /** connects, listens and catches up once; rejects (and cleans up) when it cannot */
  async start(): Promise<void> {
    this.running = true;
    try {
      const client = await this.open();
      this.seq = this.opts.fromSeq ?? (await headSeq(client));
      // whatever was notified so far committed before this read, which therefore covers it
      this.dirty = false;
      await this.checkPruned(client);
      await this.catchUp(client);
      this.live = true;
    } catch (error) {
      this.running = false;
      await this.close();
      throw error;
    }
    this.running = false;
    const every = this.opts.pollIntervalMs ?? 30_000;
    if (every > 0) {
      this.poll = setInterval(() => this.wake(), every);
      this.poll.unref();
    }
    // a notification may have arrived during the first catch-up
    if (this.dirty) void this.loop();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.live = false;
    if (this.poll !== undefined) clearInterval(this.poll);
    this.poll = undefined;
    this.wakeSleep?.();
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) await client.end().catch(() => undefined);
  }

  private async open(): Promise<Client> {
    const client = new Client(this.config);
    // events from a connection this listener has already given up on are ignored
    client.on('notification', (n) => {
      if (client === this.client) this.notified(n);
    });
    client.on('error', (error) => {
      if (client === this.client) this.lost(error);
    });
    client.on('end', () => {
      if (client === this.client) this.lost(new Error('the change feed connection ended'));
    });
    // assigned before LISTEN so a notification during the catch-up marks the feed dirty
    this.client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${escapeIdentifier(this.channel)}`);
      if (this.closed) throw new Error('the subscription was closed');
      return client;
    } catch (error) {
      if (this.client === client) this.client = undefined;
      await client.end().catch(() => undefined);
      throw error;
    }
  }

  private notified(n: Notification): void {
    if (n.channel !== this.channel) return;
    let payload: unknown;
    try {
      payload = JSON.parse(n.payload ?? '');
    } catch {
      payload = undefined;
    }
    const p = typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>) : {};
    const seq = p['seq'];
    if (typeof seq === 'number' && seq <= this.seq) return;
    const kind = p['kind'];
    const key = p['key'];
    if (!this.running && this.live && seq === this.seq + 1 && isKind(kind) && typeof key === 'string') {
      this.deliver({ seq, kind, key });
      return;
    }
    this.wake();
  }

  private lost(error: unknown): void {
    const client = this.client;
    this.client = undefined;
    this.live = false;
    if (client !== undefined) void client.end().catch(() => undefined);
    if (this.closed) return;
    if (this.outage === undefined) {
      this.outage = { since: Date.now(), failedAttempts: 0 };
      this.call(() => this.opts.onLost?.(error));
    }
    this.report(error);
    this.wake();
  }

  /** listening and caught up: the end of an outage, if there was one */
  private back(): void {
    this.live = true;
    this.backoffMs = MIN_BACKOFF_MS;
    const outage = this.outage;
    if (outage === undefined) return;
    this.outage = undefined;
    this.call(() => this.opts.onReconnect?.({ downMs: Date.now() - outage.since, failedAttempts: outage.failedAttempts }));
  }

  private wake(): void {
    if (this.closed) return;
    this.dirty = true;
    if (!this.running) void this.loop();
  }

  /** the one reader: reconnects (with backoff) when needed, then reads until caught up */
  private async loop(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (!this.closed) {
        let client = this.client;
        let reconnected = false;
        if (client === undefined) {
          try {
            client = await this.open();
            this.dirty = true;
            reconnected = true;
          } catch (error) {
            if (this.outage !== undefined) this.outage.failedAttempts++;
            this.report(error);
            await this.backoff();
            continue;
          }
        }
        if (!this.dirty) break;
        this.dirty = false;
        try {
          // only a listener that was away can have missed pruned entries
          if (reconnected) await this.checkPruned(client);
          await this.catchUp(client);
          if (client === this.client) this.back();
        } catch (error) {
          if (client === this.client) this.lost(error);
          await this.backoff();
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async checkPruned(client: Client): Promise<void> {
    const { rows } = await client.query<Row>('SELECT upto FROM changes_pruned');
    const upto = rows[0] === undefined ? 0 : num(rows[0], 'upto');
    if (upto <= this.seq) return;
    const gap = { afterSeq: this.seq, prunedUpto: upto };
    this.seq = upto;
    try {
      this.opts.onGap?.(gap);
    } catch (error) {
      this.report(error);
    }
  }

  private async catchUp(client: Client): Promise<void> {
    for (;;) {
      const { rows } = await client.query<Row>(SELECT_AFTER, [this.seq, PAGE]);
      for (const r of rows) {
        const c = toChange(r);
        if (c === undefined) this.seq = num(r, 'seq');
        else this.deliver(c);
      }
      if (rows.length < PAGE || this.closed) return;
    }
  }

  private deliver(c: StoreChange): void {
    if (this.closed) return;
    this.seq = c.seq;
    try {
      this.onChange(c);
    } catch (error) {
      this.report(error);
    }
  }

  private report(error: unknown): void {
    this.call(() => this.opts.onError?.(error));
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch {
      // a failing handler must not stop the feed
    }
  }

  private backoff(): Promise<void> {
    const ms = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeSleep = undefined;
        resolve();
      }, ms);
      t.unref();
      this.wakeSleep = () => {
        clearTimeout(t);
        this.wakeSleep = undefined;
        resolve();
      };
    });
  }
}
