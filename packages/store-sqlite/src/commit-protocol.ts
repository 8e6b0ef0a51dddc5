/** The messages between the event loop (commit-thread.ts) and the commit thread (commit-worker.ts). */
import type { AuditDraft, BudgetLimits, BudgetUsage } from '@mandate/core';

export interface CommitThreadSettings {
  readonly path: string;
  readonly busyTimeoutMs: number;
  /** 'full': the WAL is synced (fdatasync) after each commit, before its callers are answered */
  readonly durability: 'full' | 'normal';
  /** the process's module compile cache (node:module), which a thread does not inherit: its start-up reuses it */
  readonly compileCacheDir?: string | undefined;
}

/** One entry as it crosses the thread boundary: the budget's exhausted records as data, once known. */
export interface WireEntry {
  readonly drafts: readonly AuditDraft[];
  readonly budget?: {
    readonly taskId: string;
    readonly tool: string;
    readonly limits: BudgetLimits;
    readonly variants: { calls?: readonly AuditDraft[]; tool?: readonly AuditDraft[] };
  };
}

export interface BatchRequest {
  readonly id: number;
  readonly entries: readonly WireEntry[];
}

/** What one entry became: the records' numbers and hashes (the event loop holds their data). */
export interface WireResult {
  readonly seq: number;
  readonly prevHash: string;
  readonly hashes: readonly string[];
  readonly budget?: { ok: boolean; usage: BudgetUsage; exhausted?: 'calls' | 'tool' };
}

/** the thread's first message: its connection is open and set up */
export interface ThreadReady {
  readonly kind: 'ready';
}

export type BatchReply =
  | { readonly id: number; readonly kind: 'committed'; readonly results: readonly WireResult[] }
  /** these entries found their budget used up: send their exhausted records; nothing was committed */
  | { readonly id: number; readonly kind: 'need'; readonly need: readonly (readonly [number, 'calls' | 'tool'])[] }
  /** nothing committed; `poisoned`: the WAL could not be synced, every later commit is refused */
  | { readonly id: number; readonly kind: 'failed'; readonly message: string; readonly poisoned: boolean };
