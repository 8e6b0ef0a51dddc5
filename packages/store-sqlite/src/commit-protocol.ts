/** The messages between the event loop (commit-thread.ts) and the commit thread (commit-worker.ts). */
import type { BudgetLimits } from '@mandate/core';
import type { BudgetOutcome, TextDraft } from './audit-batch.ts';

export interface CommitThreadSettings {
  readonly path: string;
  readonly busyTimeoutMs: number;
  /** 'full': the WAL is synced (fdatasync) after each commit, before its callers are answered */
  readonly durability: 'full' | 'normal';
  /** the process's module compile cache (node:module), which a thread does not inherit: its start-up reuses it */
  readonly compileCacheDir?: string | undefined;
}

/**
 * One entry as it crosses the thread boundary: its drafts with their data as canonical text
 * (a structured clone of the values would drop a sealed value's cached text, so the thread wrote
 * it again, and cloning the objects cost the event loop more than the text), and the budget's
 * exhausted records the same way, once known.
 */
export interface WireEntry {
  readonly drafts: readonly TextDraft[];
  readonly budget?: {
    readonly taskId: string;
    readonly tool: string;
    readonly limits: BudgetLimits;
    readonly variants: { calls?: readonly TextDraft[]; tool?: readonly TextDraft[] };
  };
}

export interface BatchRequest {
  readonly id: number;
  readonly entries: readonly WireEntry[];
}

/**
 * What the batch became, in one flat answer (the event loop holds the records' data): the
 * first record's number and previous hash, every record's hash in order (64 hex characters
 * each, joined), and per entry its budget's outcome (null: no budget). Each entry's record count
 * follows from its drafts and its budget's outcome.
 */
export interface WireCommitted {
  readonly seq: number;
  readonly prevHash: string;
  readonly hashes: string;
  readonly budgets: readonly (BudgetOutcome | null)[];
}

/** the thread's first message: its connection is open and set up */
export interface ThreadReady {
  readonly kind: 'ready';
}

export type BatchReply =
  | ({ readonly id: number; readonly kind: 'committed' } & WireCommitted)
  /** these entries found their budget used up: send their exhausted records; nothing was committed */
  | { readonly id: number; readonly kind: 'need'; readonly need: readonly (readonly [number, 'calls' | 'tool'])[] }
  /** nothing committed; `poisoned`: the WAL could not be synced, every later commit is refused */
  | { readonly id: number; readonly kind: 'failed'; readonly message: string; readonly poisoned: boolean };
