import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CachedBudgets, CachedRevocations, type AuditDraft, type DecisionCommit } from '@mandate/core';
import { openSqliteStore, type SqliteStore } from '@mandate/store-sqlite';
import { sha256Hasher } from '../../src/node-ports.ts';

let dir: string;
let store: SqliteStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mandate-memstate-'));
  store = openSqliteStore({ path: join(dir, 'm.db'), hasher: sha256Hasher, durability: 'normal' });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('revocations from memory (one node)', () => {
  it('answers like the store before and after a revocation made through it', async () => {
    const r = new CachedRevocations(store.revocations);
    expect(await r.isTokenRevoked('jti-1', 1_000)).toBe(false);
    expect(await r.isTokenRevoked('jti-1', 1_000)).toBe(false);
    await r.revokeToken('jti-1', 'task-1', 10_000, 'test', 1_000);
    expect(await r.isTokenRevoked('jti-1', 1_000)).toBe(true);
    expect(await r.isTokenRevoked('jti-1')).toBe(true);
    expect(await store.revocations.isTokenRevoked('jti-1', 1_000)).toBe(true);
    expect(await r.isTokenRevoked('jti-2', 1_000)).toBe(false);
  });

  it('keeps a scheduled revocation (a renewal grace window) out of effect until its time, then in effect', async () => {
    const r = new CachedRevocations(store.revocations);
    await r.revokeToken('jti-1', 'task-1', 10_000, 'renewed', 5_000);
    expect(await r.isTokenRevoked('jti-1', 4_000)).toBe(false);
    expect(await r.isTokenRevoked('jti-1', 4_999)).toBe(false);
    expect(await r.isTokenRevoked('jti-1', 5_000)).toBe(true);
    // once in effect, in effect for good (a clock that steps back does not revive the token)
    expect(await r.isTokenRevoked('jti-1', 4_000)).toBe(true);
  });

  it('never keeps a "not revoked" read that raced a revocation', async () => {
    const r = new CachedRevocations(store.revocations);
    const racing = r.isTokenRevoked('jti-1', 1_000);
    const revoking = r.revokeToken('jti-1', 'task-1', 10_000, 'kill', 1_000);
    await Promise.all([racing, revoking]);
    expect(await r.isTokenRevoked('jti-1', 1_000)).toBe(true);
  });

  it('reads a key used once as revoked, even after it was read as not revoked', async () => {
    const r = new CachedRevocations(store.revocations);
    expect(await r.isTokenRevoked('wl:1', 1_000)).toBe(false);
    expect(await r.useOnce('wl:1', 'task-1', 10_000, 'used for a delegation', 1_000)).toBe(true);
    expect(await r.isTokenRevoked('wl:1', 1_000)).toBe(true);
    expect(await r.useOnce('wl:1', 'task-2', 10_000, 'used for a delegation', 1_000)).toBe(false);
  });

  it('forgets the jti when the store refuses a revocation, and reads the store again', async () => {
    // (end to end, a renewal revoking the old token is in http/tasks.test.ts and threats.test.ts)
    const failing = {
      revokeToken: () => Promise.reject(new Error('disk full')),
      isTokenRevoked: (jti: string, now?: number) => store.revocations.isTokenRevoked(jti, now),
      useOnce: () => Promise.reject(new Error('disk full')),
    };
    const r = new CachedRevocations(failing);
    expect(await r.isTokenRevoked('jti-1', 1_000)).toBe(false);
    await expect(r.revokeToken('jti-1', 'task-1', 10_000, 'kill', 1_000)).rejects.toThrow('disk full');
    await store.revocations.revokeToken('jti-1', 'task-1', 10_000, 'kill', 1_000);
    expect(await r.isTokenRevoked('jti-1', 1_000)).toBe(true);
  });
});

function draft(i: number, effect: string): AuditDraft {
  return { kind: 'decision', ts: 1_000 + i, taskId: 'task-1', callId: `call-${i}`, data: { i, effect } };
}

function allow(i: number, tool: string, limits: { calls?: number; toolCalls?: number }): DecisionCommit {
  return {
    drafts: [draft(i, 'allow')],
    budget: { taskId: 'task-1', tool, limits, exhausted: () => [draft(i, 'deny')] },
  };
}

describe('budget usage from memory (one node)', () => {
  it('follows every decision commit exactly, as the store counts it', async () => {
    const b = new CachedBudgets(store.budgets);
    const commit = b.committing(store.audit);
    expect(await b.usage('task-1', 'a')).toEqual({ calls: 0, toolCalls: 0 });
    await Promise.all(Array.from({ length: 30 }, (_, i) => commit.commitDecision(allow(i, i % 3 === 0 ? 'b' : 'a', { calls: 25, toolCalls: 12 }))));
    for (const tool of ['a', 'b', 'c']) expect(await b.usage('task-1', tool)).toEqual(await store.budgets.usage('task-1', tool));
    expect((await b.usage('task-1', 'a')).calls).toBe(22);
  });

  it('shows a carve and a direct consume, and is never ahead of the store', async () => {
    const b = new CachedBudgets(store.budgets);
    await b.usage('task-1', 'a');
    expect(await b.carve('task-1', 5, 100)).toBe(true);
    expect(await b.usage('task-1', 'a')).toEqual({ calls: 5, toolCalls: 0 });
    await b.consume('task-1', 'a', { calls: 100 });
    expect(await b.usage('task-1', 'a')).toEqual({ calls: 6, toolCalls: 1 });
    expect(await b.usage('task-1', 'a')).toEqual(await store.budgets.usage('task-1', 'a'));
  });
});
