/**
 * The commit thread (see commit-thread.ts): its own connection to the store's file, where each
 * audit group commit runs (head read, budgets, linking, insert, COMMIT) and the WAL is synced,
 * so the event loop answers other calls meanwhile. A batch is answered only once it is on the
 * disk. Batches arrive one at a time (the group commit waits for each), in submission order.
 */
import { hash } from 'node:crypto';
import { fdatasyncSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import type { Hasher } from '@mandate/core';
import { describeError, isMandateError } from '@mandate/core/errors';
import { writeTextBatch, type TextCommit, type TextDraft } from './audit-batch.ts';
import { INSERT_CHECKPOINT } from './checkpoints.ts';
import { decodeEntries, encodeBudgets, type BatchReply, type BatchRequest, type CheckpointRequest, type CommitThreadSettings, type ThreadRequest, type WireEntry } from './commit-protocol.ts';
import { Sql } from './sql.ts';
import { WalSync } from './wal-sync.ts';
import { WriteTurns } from './write-turns.ts';

const settings = workerData as CommitThreadSettings;
const port = parentPort;
if (!port) throw new Error('commit-worker.ts runs as a worker thread');

const sql = new Sql(new DatabaseSync(settings.path));
// the event loop's connection writes too: a write that meets its lock is tried again when that
// one ends (write-turns.ts), not by SQLite's busy handler
sql.db.exec('PRAGMA busy_timeout = 0');
sql.turns = new WriteTurns(settings.writeTurns, 'thread', { timeoutMs: settings.busyTimeoutMs });
// COMMIT writes the WAL without syncing: the sync below follows it, after the write lock is released
sql.db.exec('PRAGMA synchronous = NORMAL');
sql.db.exec('PRAGMA foreign_keys = ON');
// the automatic checkpoint is per connection: left at SQLite's default here, a batch that took the
// WAL past 1,000 pages copied them into the database and synced it inside its own COMMIT, its
// callers waiting, however often the checkpointer thread ran
if (settings.autocheckpointPages !== undefined) sql.db.exec(`PRAGMA wal_autocheckpoint = ${Math.max(0, Math.floor(settings.autocheckpointPages))}`);
// the chain's hash (the event loop checked at start that its hasher computes the same)
const hasher: Hasher = { sha256Hex: (s) => hash('sha256', s, 'hex') };
// synchronous here: this thread has nothing else to do while the disk works
const walSync = settings.durability === 'full'
  ? new WalSync(settings.path, (fd, done) => {
      let err: Error | null = null;
      try {
        fdatasyncSync(fd);
      } catch (e) {
        err = e instanceof Error ? e : new Error(String(e));
      }
      done(err);
    })
  : undefined;

class NeedVariants extends Error {}

async function commit(req: BatchRequest): Promise<BatchReply> {
  const failed = walSync?.failed();
  if (failed) return { id: req.id, kind: 'failed', message: failed.message, poisoned: true };
  const need: [number, 'calls' | 'tool'][] = [];
  let wire: WireEntry[];
  try {
    wire = decodeEntries(req.entries);
  } catch (e) {
    return { id: req.id, kind: 'failed', message: describeError(e), poisoned: false };
  }
  const entries = wire.map((e: WireEntry, i): TextCommit => {
    const b = e.budget;
    if (!b) return { drafts: e.drafts };
    const exhausted = (which: 'calls' | 'tool'): readonly TextDraft[] => {
      const v = b.variants[which];
      if (v) return v;
      need.push([i, which]);
      return e.drafts; // a placeholder: the transaction is rolled back below
    };
    return { drafts: e.drafts, budget: { taskId: b.taskId, tool: b.tool, limits: b.limits, exhausted } };
  });
  let results;
  try {
    results = writeTextBatch(sql, hasher, entries, () => {
      if (need.length > 0) throw new NeedVariants();
    });
  } catch (e) {
    if (e instanceof NeedVariants) return { id: req.id, kind: 'need', need };
    return { id: req.id, kind: 'failed', message: isMandateError(e) ? e.message : describeError(e), poisoned: false };
  }
  const unsynced = await durable(req.id);
  if (unsynced) return unsynced;
  const first = results[0];
  return {
    id: req.id,
    kind: 'committed',
    seq: first?.seq ?? 0,
    prevHash: first?.prevHash ?? '',
    hashes: results.map((r) => r.hashes.join('')).join(''),
    budgets: encodeBudgets(results.map((r) => r.budget)),
  };
}

/** after a commit: undefined once it is on the disk, else the failure to answer with */
async function durable(id: number): Promise<BatchReply | undefined> {
  if (!walSync) return undefined;
  walSync.wrote();
  try {
    await walSync.durable();
    return undefined;
  } catch (e) {
    return { id, kind: 'failed', message: describeError(e), poisoned: true };
  }
}

async function addCheckpoint(req: CheckpointRequest): Promise<BatchReply> {
  const failed = walSync?.failed();
  if (failed) return { id: req.id, kind: 'failed', message: failed.message, poisoned: true };
  try {
    sql.run(INSERT_CHECKPOINT, ...req.checkpoint);
  } catch (e) {
    return { id: req.id, kind: 'failed', message: describeError(e), poisoned: false };
  }
  return (await durable(req.id)) ?? { id: req.id, kind: 'written' };
}

port.postMessage({ kind: 'ready' });

let queue = Promise.resolve();
port.on('message', (m: ThreadRequest | 'stop') => {
  queue = queue.then(async () => {
    if (m === 'stop') {
      sql.close();
      walSync?.close();
      port.close();
      return;
    }
    port.postMessage('checkpoint' in m ? await addCheckpoint(m) : await commit(m));
  });
});
