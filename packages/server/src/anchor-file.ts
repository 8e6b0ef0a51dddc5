/**
 * Audit anchors' configuration and the anchor file's format: one signed checkpoint per JSON
 * line, appended outside the data folder (anchors.ts writes it; `audit verify --anchors` and
 * /v1/audit/verify read it).
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { MandateError, describeError, durationSchema, isJsonObject, type Checkpoint } from '@mandate/core';

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

/** A checkpoint as it is anchored: the same fields the store keeps, one JSON object per line. */
export function anchorLine(cp: Checkpoint): string {
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
export function lastAnchoredSeq(path: string): number {
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

