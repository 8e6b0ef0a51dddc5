/**
 * The audit's group commits on a thread of their own (commit-worker.ts), with its own connection
 * to the store's file: the transaction and the WAL's sync no longer hold the event loop, which
 * decides and forwards other calls meanwhile. Nothing changes for a caller: a commit resolves
 * only once its records are durably on the disk (audit before act), batches commit one at a
 * time in submission order (the group commit waits for each), and the head of the chain and the
 * budgets are read inside the commit thread's write transaction, as before.
 *
 * Fail closed: if the thread dies (an error, an exit), every waiting and every later commit is
 * refused with AUDIT_UNAVAILABLE until restart, so every allow becomes a deny and readiness fails.
 */
import { hash } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { MandateError, describeError, type AuditDraft, type DecisionCommit, type DecisionCommitResult, type Hasher } from '@mandate/core';
import { auditRecords, textDraft, type TextDraft } from './audit-batch.ts';
import { startThread, storeModule } from './thread.ts';
import { decodeBudgets, encodeEntries, type BatchReply, type CommitThreadSettings, type ThreadReady, type ThreadRequest, type WireCommitted, type WireEntry } from './commit-protocol.ts';
import type { CheckpointRow } from './checkpoints.ts';

/** how long `stop` waits for the thread to close its connection before ending it */
const STOP_TIMEOUT_MS = 5000;

interface Waiter {
  resolve(reply: BatchReply): void;
  reject(error: MandateError): void;
}

export class CommitThread {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, Waiter>();
  private readonly exited: Promise<void>;
  private readonly up: Promise<void>;
  private markUp: () => void = () => undefined;
  private nextId = 1;
  private failure: MandateError | undefined;
  private stopping = false;

  /** `hasher` must compute SHA-256, as the thread does: checked here, once */
  constructor(settings: CommitThreadSettings, hasher: Hasher) {
    const probe = 'mandate commit thread';
    if (hasher.sha256Hex(probe) !== hash('sha256', probe, 'hex')) throw new TypeError('the commit thread links the audit chain with SHA-256: the store\'s hasher must be SHA-256');
    this.worker = startThread(storeModule('commit-worker'), settings);
    // idle, it never keeps the process alive; while a commit is awaited it does (see `send`)
    this.worker.unref();
    this.up = new Promise<void>((resolve) => (this.markUp = resolve));
    this.worker.on('message', (reply: BatchReply | ThreadReady) => {
      if (reply.kind === 'ready') {
        this.markUp();
        return;
      }
      const w = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) this.worker.unref();
      w?.resolve(reply);
    });
    this.worker.on('error', (e) => this.fail(`the commit thread failed (${describeError(e)})`));
    this.exited = new Promise<void>((resolve) => {
      this.worker.once('exit', (code) => {
        if (!this.stopping) this.fail(`the commit thread exited (code ${code})`);
        resolve();
      });
    });
  }

  /**
   * Resolves once the thread has opened its connection (a start should not report ready before:
   * the first commits would wait for it); rejects if it failed instead.
   */
  started(): Promise<void> {
    return Promise.race([
      this.up,
      this.exited.then(() => {
        throw this.failure ?? new MandateError('AUDIT_UNAVAILABLE', 'the commit thread ended before it started');
      }),
    ]);
  }

  /** why every commit is refused, once the thread died or the WAL could not be synced (until restart) */
  failed(): MandateError | undefined {
    return this.failure;
  }

  /**
   * Commits the batch on the thread and resolves once it is durable. An entry whose budget the
   * thread finds used up has its exhausted records built here (the thunk lives on this side)
   * and the batch is sent again; nothing was committed in between.
   */
  async write(entries: readonly DecisionCommit[]): Promise<DecisionCommitResult[]> {
    const variants = entries.map((): { calls?: readonly AuditDraft[]; tool?: readonly AuditDraft[] } => ({}));
    const wireVariants = entries.map((): { calls?: readonly TextDraft[]; tool?: readonly TextDraft[] } => ({}));
    let drafts: TextDraft[][];
    try {
      // each draft's data as canonical text, once (a sealed value's is cached)
      drafts = entries.map((e) => e.drafts.map(textDraft));
    } catch (e) {
      throw new MandateError('AUDIT_UNAVAILABLE', `audit records were not committed: ${describeError(e)}`);
    }
    // each round adds at least one variant: at most two per entry
    for (let round = 0; round <= 2 * entries.length; round++) {
      const wire = entries.map((e, i): WireEntry => (e.budget ? { drafts: drafts[i] as TextDraft[], budget: { taskId: e.budget.taskId, tool: e.budget.tool, limits: e.budget.limits, variants: wireVariants[i] ?? {} } } : { drafts: drafts[i] as TextDraft[] }));
      const reply = await this.send((id) => ({ id, entries: encodeEntries(wire) }));
      if (reply.kind === 'committed') return rebuild(entries, variants, reply);
      if (reply.kind === 'written') throw new MandateError('AUDIT_UNAVAILABLE', 'audit records were not committed: the commit thread answered a batch as a checkpoint');
      if (reply.kind === 'failed') {
        if (reply.poisoned) throw (this.failure ??= new MandateError('AUDIT_UNAVAILABLE', reply.message));
        throw new MandateError('AUDIT_UNAVAILABLE', `audit records were not committed: ${reply.message}`);
      }
      try {
        for (const [i, which] of reply.need) {
          const ds = (entries[i] as DecisionCommit).budget?.exhausted(which) ?? [];
          (variants[i] as { calls?: readonly AuditDraft[]; tool?: readonly AuditDraft[] })[which] = ds;
          (wireVariants[i] as { calls?: readonly TextDraft[]; tool?: readonly TextDraft[] })[which] = ds.map(textDraft);
        }
      } catch (e) {
        throw new MandateError('AUDIT_UNAVAILABLE', `audit records were not committed: ${describeError(e)}`);
      }
    }
    throw new MandateError('AUDIT_UNAVAILABLE', 'audit records were not committed: the budgets kept changing under the batch');
  }

  /**
   * Inserts a signed checkpoint's row on the thread, after the batches sent before it, and
   * resolves once it is durable. STORE_UNAVAILABLE if the row was not written.
   */
  async writeCheckpoint(row: CheckpointRow): Promise<void> {
    // rejects with AUDIT_UNAVAILABLE once the thread failed or the store is closing
    const reply = await this.send((id) => ({ id, checkpoint: row }));
    if (reply.kind === 'written') return;
    if (reply.kind === 'failed' && reply.poisoned) this.failure ??= new MandateError('AUDIT_UNAVAILABLE', reply.message);
    throw new MandateError('STORE_UNAVAILABLE', `the checkpoint was not written: ${reply.kind === 'failed' ? reply.message : `the commit thread answered '${reply.kind}'`}`);
  }

  /** TEST ONLY: the thread, for tests that end it on purpose */
  unsafeWorker(): Worker {
    return this.worker;
  }

  /** after every accepted commit has settled: the thread closes its connection and ends */
  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.worker.postMessage('stop');
    }
    const timeout = setTimeout(() => void this.worker.terminate(), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timeout);
  }

  private send(request: (id: number) => ThreadRequest): Promise<BatchReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.stopping) return Promise.reject(new MandateError('AUDIT_UNAVAILABLE', 'the store is closed'));
    const id = this.nextId++;
    return new Promise<BatchReply>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.ref();
      try {
        this.worker.postMessage(request(id));
      } catch (e) {
        // a value that cannot be cloned: this batch only
        this.waiting.delete(id);
        if (this.waiting.size === 0) this.worker.unref();
        reject(new MandateError('AUDIT_UNAVAILABLE', `audit records were not committed: ${describeError(e)}`));
      }
    });
  }

  private fail(why: string): void {
    this.failure ??= new MandateError('AUDIT_UNAVAILABLE', `${why}; refusing every commit until restart`);
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiting) w.reject(this.failure);
  }
}

/** The records as the thread linked them: this side's drafts, the thread's numbers and hashes. */
function rebuild(entries: readonly DecisionCommit[], variants: readonly { calls?: readonly AuditDraft[]; tool?: readonly AuditDraft[] }[], r: WireCommitted): DecisionCommitResult[] {
  let seq = r.seq;
  let prevHash = r.prevHash;
  let at = 0;
  const budgets = decodeBudgets(r.budgets, entries.length);
  return entries.map((e, i): DecisionCommitResult => {
    const budget = budgets[i];
    const drafts = budget && !budget.ok ? (variants[i]?.[budget.exhausted === 'tool' ? 'tool' : 'calls'] ?? []) : e.drafts;
    const hashes: string[] = [];
    for (let k = 0; k < drafts.length; k++, at += HASH_LENGTH) hashes.push(r.hashes.slice(at, at + HASH_LENGTH));
    const records = auditRecords(drafts, { seq, prevHash, hashes });
    seq += drafts.length;
    prevHash = hashes.at(-1) ?? prevHash;
    return budget ? { records, budget } : { records };
  });
}

/** a SHA-256 hash in hex (the constructor checked the hasher computes it) */
const HASH_LENGTH = 64;
