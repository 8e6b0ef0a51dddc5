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
import { existsSync, openSync, readFileSync, readSync, closeSync, fstatSync, realpathSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, isAbsolute } from 'node:path';
import { z } from 'zod';
import { MandateError, describeError, durationSchema, isJsonObject, type Checkpoint, type CheckpointStore } from '@mandate/core';
import { webhookSignature } from './webhook.ts';
import { writePrivate } from './audit-files.ts';

const duration = (dflt: string) => durationSchema.prefault(dflt);

const anchorWebhookSchema = z.strictObject({
  url: z.url().describe('receiver of every signed checkpoint: POST {"type": "audit.checkpoint", "checkpoint": {...}}'),
  secret: z.string().min(16).max(1024).describe('HMAC-SHA256 key: x-mandate-signature: sha256=<hex of HMAC(x-mandate-timestamp + "." + body)>'),
  timeout: duration('5s').describe('how long one delivery attempt may take'),
});

export const anchorsConfigSchema = z
  .strictObject({
    file: z
      .string()
      .min(1)
      .optional()
      .describe('append every signed checkpoint (JSON Lines) to this file; it must lie outside data_dir (another volume or host: whoever can write the database must not be able to write it)'),
    webhooks: z.array(anchorWebhookSchema).max(10).default([]).describe('POST every signed checkpoint to these receivers, retried from the node\'s checkpoint record until each answers 2xx'),
    backoff: duration('1s').describe('first retry delay of a failed anchor delivery; doubled after each failure up to max_backoff'),
    max_backoff: duration('5m').describe('longest delay between two attempts of an anchor delivery'),
    max_pending: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(10_000)
      .describe('checkpoints waiting per sink; past it the oldest waiting ones are skipped (a newer checkpoint covers every record an older one does)'),
  })
  .prefault({})
  .describe('external anchoring of signed audit checkpoints, so that cutting the log back to an older checkpoint is detected');

export type AnchorsConfig = z.output<typeof anchorsConfigSchema>;

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

/** A checkpoint as it is anchored: the same fields the store keeps, one JSON object per line. */
function anchorLine(cp: Checkpoint): string {
  return JSON.stringify({ seq: cp.seq, headHash: cp.headHash, ts: cp.ts, kid: cp.kid, signature: cp.signature }) + '\n';
}

function asCheckpoint(v: unknown): Checkpoint | undefined {
  if (!isJsonObject(v)) return undefined;
  const { seq, headHash, ts, kid, signature } = v;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return undefined;
  if (typeof headHash !== 'string' || typeof ts !== 'number' || typeof kid !== 'string' || typeof signature !== 'string') return undefined;
  return { seq, headHash, ts, kid, signature };
}

/**
 * Reads an anchor file strictly: every line must be a checkpoint, except a torn last line (a
 * crash while appending), which is ignored. Throws MandateError INVALID_ARGUMENT naming the line.
 */
export function readAnchorFile(path: string): Checkpoint[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new MandateError('INVALID_ARGUMENT', `cannot read the anchor file ${path}: ${describeError(e)}`);
  }
  const lines = text.split('\n');
  const out: Checkpoint[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === '') continue;
    let cp: Checkpoint | undefined;
    try {
      cp = asCheckpoint(JSON.parse(line));
    } catch {
      cp = undefined;
    }
    if (cp === undefined) {
      // only the last line may be torn: it has no newline after it
      if (i === lines.length - 1) continue;
      throw new MandateError('INVALID_ARGUMENT', `line ${i + 1} of the anchor file ${path} is not a signed checkpoint`);
    }
    out.push(cp);
  }
  return out;
}

/** The seq of the last complete checkpoint line of a file (its tail only is read). */
function lastAnchoredSeq(path: string): number {
  if (!existsSync(path)) return 0;
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString('utf8').split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      try {
        const cp = asCheckpoint(JSON.parse(lines[i] as string));
        if (cp) return cp.seq;
      } catch {
        // a torn or partial line: look at the one before
      }
    }
    return 0;
  } finally {
    closeSync(fd);
  }
}

/**
 * Refuses an anchor file inside the data folder (or at an unusable place): an anchor next to
 * the database is no anchor at all. Symbolic links are resolved on both sides.
 */
export function checkAnchorFile(file: string, dataDir: string): string {
  const path = resolve(file);
  const dir = dirname(path);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new MandateError('CONFIG_INVALID', `audit.anchors.file: the folder ${dir} does not exist`);
  const realDir = realpathSync(dir);
  const realData = realpathSync(resolve(dataDir));
  const rel = relative(realData, join(realDir, basename(path)));
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
    throw new MandateError('CONFIG_INVALID', `audit.anchors.file (${path}) lies inside data_dir (${realData}): an anchor must be out of reach of whoever can write the database`);
  }
  return path;
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
