/**
 * External anchoring of audit checkpoints. A signed checkpoint in the database (or in the data
 * folder beside it) proves the log up to that record, but whoever can write there can also
 * delete the newest checkpoint together with the records after it: the log then ends at an
 * older checkpoint and verifies. A copy of every checkpoint kept where that writer cannot reach
 * (a file on another volume or host, a receiver that keeps what it is sent) turns that cut into
 * a detectable one: `audit verify --anchors <file>` (and /v1/audit/verify when a file is
 * configured) checks the chain against those copies too.
 *
 * Anchoring runs beside the checkpointer, never in a decision's way: each sink has its own
 * queue, retried with backoff until delivered. What a sink has not taken yet is not lost on a
 * restart: the checkpoints this node signed are in `<data_dir>/audit-checkpoints.jsonl`, and a
 * sink's own record (the anchor file's last line, a webhook's delivery cursor) says where to
 * resume.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, type Checkpoint, type CheckpointStore } from '@mandate/core';
import { webhookSignature } from './webhook.ts';
import { readCheckpointFile, writePrivate } from './audit-files.ts';
import { anchorLine, checkAnchorFile, lastAnchoredSeq, type AnchorsConfig } from './anchor-file.ts';

export interface AnchorLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** One place checkpoints are anchored. */
export interface AnchorTarget {
  /** for logs and status: `file:<path>` or `webhook:<origin>` */
  readonly name: string;
  /** the newest checkpoint seq already anchored there (0: none), read once at start */
  anchored(): Promise<number>;
  /** anchors one checkpoint durably, or throws */
  deliver(cp: Checkpoint): Promise<void>;
}

/** Appends each checkpoint as one JSON line and syncs it; the file itself records how far it got. */
export class FileAnchor implements AnchorTarget {
  readonly name: string;
  private readonly path: string;

  constructor(path: string) {
    this.path = path;
    this.name = `file:${path}`;
  }

  async anchored(): Promise<number> {
    return lastAnchoredSeq(this.path);
  }

  async deliver(cp: Checkpoint): Promise<void> {
    const fh = await open(this.path, 'a', 0o600);
    try {
      await fh.appendFile(anchorLine(cp));
      await fh.datasync();
    } finally {
      await fh.close();
    }
  }
}

export interface WebhookAnchorOptions {
  readonly url: string;
  readonly secret: string;
  readonly timeoutMs: number;
  /** where the delivery cursor is kept (the data folder) */
  readonly stateDir: string;
  /** seconds since the epoch, for the signature's timestamp */
  readonly now: () => number;
}

/**
 * POSTs each checkpoint, HMAC-signed like alert webhooks, and keeps the seq of the last one a
 * receiver acknowledged (2xx) in `<data_dir>/audit-anchor-<hash of url>.json`. Delivery is at
 * least once: a receiver keys what it keeps by `seq` and `signature`.
 */
export class WebhookAnchor implements AnchorTarget {
  readonly name: string;
  private readonly o: WebhookAnchorOptions;
  private readonly cursorPath: string;

  constructor(o: WebhookAnchorOptions) {
    this.o = o;
    this.name = `webhook:${new URL(o.url).origin}`;
    this.cursorPath = join(o.stateDir, `audit-anchor-${createHash('sha256').update(o.url).digest('hex').slice(0, 16)}.json`);
  }

  async anchored(): Promise<number> {
    if (!existsSync(this.cursorPath)) return 0;
    try {
      const doc = JSON.parse(readFileSync(this.cursorPath, 'utf8')) as { seq?: unknown };
      return typeof doc.seq === 'number' && Number.isSafeInteger(doc.seq) ? doc.seq : 0;
    } catch {
      return 0; // a damaged cursor: deliver again (at least once)
    }
  }

  async deliver(cp: Checkpoint): Promise<void> {
    const body = JSON.stringify({ type: 'audit.checkpoint', checkpoint: { seq: cp.seq, headHash: cp.headHash, ts: cp.ts, kid: cp.kid, signature: cp.signature } });
    const ts = Math.floor(this.o.now());
    const res = await fetch(this.o.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-mandate-timestamp': String(ts), 'x-mandate-signature': webhookSignature(this.o.secret, ts, body) },
      body,
      signal: AbortSignal.timeout(this.o.timeoutMs),
    });
    await res.body?.cancel().catch(() => undefined);
    if (!res.ok) throw new Error(`the receiver answered ${res.status}`);
    writePrivate(this.cursorPath, JSON.stringify({ seq: cp.seq }) + '\n');
  }
}

export interface AnchorSinkStatus {
  readonly name: string;
  /** the newest checkpoint known anchored there */
  readonly anchoredSeq: number;
  readonly pending: number;
  readonly delivered: number;
  readonly skipped: number;
  readonly lastError: string | undefined;
}

export interface PumpOptions {
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  readonly maxPending: number;
}

/** One sink's queue: in order, one delivery at a time, retried with backoff until it succeeds. */
class AnchorPump {
  private readonly target: AnchorTarget;
  private readonly o: PumpOptions;
  private readonly log: AnchorLog;
  private readonly pending: Checkpoint[] = [];
  private anchoredSeq = 0;
  private delivered = 0;
  private skipped = 0;
  private lastError: string | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private wake: (() => void) | undefined;

  constructor(target: AnchorTarget, o: PumpOptions, log: AnchorLog) {
    this.target = target;
    this.o = o;
    this.log = log;
  }

  async start(backlog: readonly Checkpoint[]): Promise<void> {
    try {
      this.anchoredSeq = await this.target.anchored();
    } catch (e) {
      this.lastError = describeError(e);
      this.log.warn({ sink: this.target.name, err: e }, 'cannot read how far the audit anchor got; anchoring the whole backlog');
    }
    for (const cp of backlog) this.push(cp);
  }

  push(cp: Checkpoint): void {
    // the queue is in seq order: a checkpoint no newer than the last one queued adds nothing
    const last = this.pending.at(-1);
    if (this.closed || cp.seq <= this.anchoredSeq || (last !== undefined && last.seq >= cp.seq)) return;
    this.pending.push(cp);
    while (this.pending.length > this.o.maxPending) {
      this.pending.shift();
      this.skipped += 1;
    }
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
  }

  status(): AnchorSinkStatus {
    return { name: this.target.name, anchoredSeq: this.anchoredSeq, pending: this.pending.length, delivered: this.delivered, skipped: this.skipped, lastError: this.lastError };
  }

  /**
   * Lets the attempt under way finish (bounded by the sink's own timeout), then gives what is
   * still waiting one attempt each if the sink was answering, and stops. What is left is
   * delivered at the next start, from the node's checkpoint record.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.running;
    if (this.lastError !== undefined) return;
    for (const cp of this.pending.splice(0)) {
      try {
        await this.target.deliver(cp);
        this.anchoredSeq = cp.seq;
        this.delivered += 1;
      } catch (e) {
        this.lastError = describeError(e);
        this.log.warn({ sink: this.target.name, seq: cp.seq, err: e }, 'audit checkpoint not anchored before shutdown; it will be at the next start');
        return;
      }
    }
  }

  private async run(): Promise<void> {
    let delay = this.o.backoffMs;
    while (!this.closed) {
      const cp = this.pending[0];
      if (cp === undefined) return;
      try {
        await this.target.deliver(cp);
        if (this.pending[0] === cp) this.pending.shift();
        this.anchoredSeq = Math.max(this.anchoredSeq, cp.seq);
        this.delivered += 1;
        this.lastError = undefined;
        delay = this.o.backoffMs;
      } catch (e) {
        this.lastError = describeError(e);
        this.log.warn({ sink: this.target.name, seq: cp.seq, err: e, retryInMs: delay }, 'audit checkpoint could not be anchored; retrying');
        await this.sleep(delay);
        delay = Math.min(delay * 2, this.o.maxBackoffMs);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      t.unref();
      const self = this;
      function done() {
        clearTimeout(t);
        self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }
}

/**
 * The checkpoint store the checkpointer writes to, wrapped: once a checkpoint is stored it is
 * handed to every sink (without waiting for them).
 */
export class AnchoredCheckpoints implements CheckpointStore {
  private readonly inner: CheckpointStore;
  private readonly pumps: AnchorPump[];

  constructor(inner: CheckpointStore, targets: readonly AnchorTarget[], o: PumpOptions, log: AnchorLog) {
    this.inner = inner;
    this.pumps = targets.map((t) => new AnchorPump(t, o, log));
  }

  /** Reads how far each sink got and queues what it misses of `backlog` (this node's signed checkpoints). */
  async start(backlog: readonly Checkpoint[]): Promise<void> {
    const sorted = [...backlog].sort((a, b) => a.seq - b.seq);
    await Promise.all(this.pumps.map((p) => p.start(sorted)));
  }

  async addCheckpoint(cp: Checkpoint): Promise<void> {
    await this.inner.addCheckpoint(cp);
    for (const p of this.pumps) p.push(cp);
  }

  listCheckpoints(): Promise<Checkpoint[]> {
    return this.inner.listCheckpoints();
  }

  status(): AnchorSinkStatus[] {
    return this.pumps.map((p) => p.status());
  }

  async close(): Promise<void> {
    await Promise.all(this.pumps.map((p) => p.close()));
  }
}

/**
 * The configured sinks around `checkpoints`, started: each reads how far it got and queues what
 * it missed of this node's signed checkpoints (`<data_dir>/audit-checkpoints.jsonl`).
 */
export async function openAnchors(
  checkpoints: CheckpointStore,
  config: AnchorsConfig,
  dataDir: string,
  nowSeconds: () => number,
  log: AnchorLog,
): Promise<{ anchors: AnchoredCheckpoints; anchorFile: string | undefined }> {
  const anchorFile = config.file === undefined ? undefined : checkAnchorFile(config.file, dataDir);
  const targets: AnchorTarget[] = [
    ...(anchorFile === undefined ? [] : [new FileAnchor(anchorFile)]),
    ...config.webhooks.map((w) => new WebhookAnchor({ url: w.url, secret: w.secret, timeoutMs: w.timeout, stateDir: dataDir, now: nowSeconds })),
  ];
  const anchors = new AnchoredCheckpoints(checkpoints, targets, { backoffMs: config.backoff, maxBackoffMs: config.max_backoff, maxPending: config.max_pending }, log);
  if (targets.length > 0) await anchors.start(readCheckpointFile(dataDir));
  return { anchors, anchorFile };
}
