import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CachedBudgets, CachedRevocations, CachedTasks, type AuditDraft, type DecisionCommit, type RevocationStore, type Task, type TaskReader, type TaskWriter } from '@mandate/core';
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

/** the store's revocations, noting each jti read from it */
function countingReads(reads: string[]): RevocationStore {
  return {
    revokeToken: store.revocations.revokeToken.bind(store.revocations),
    useOnce: store.revocations.useOnce.bind(store.revocations),
    isTokenRevoked: (jti: string, now?: number) => {
      reads.push(jti);
      return store.revocations.isTokenRevoked(jti, now);
    },
  };
}

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

  it('still refuses a revoked token once a full cache has forgotten it: a jti not held is read from the store', async () => {
    const reads: string[] = [];
    const r = new CachedRevocations(countingReads(reads), 100);
    await r.revokeToken('jti-revoked', 'task-1', 10_000, 'kill', 1_000);
    expect(await r.isTokenRevoked('jti-revoked', 1_000)).toBe(true);
    reads.length = 0;
    expect(await r.isTokenRevoked('jti-revoked', 1_000)).toBe(true);
    expect(reads).toEqual([]); // held: answered from memory
    // an attacker floods the cache with fresh token ids until it is emptied
    for (let i = 0; i < 150; i++) expect(await r.isTokenRevoked(`jti-flood-${i}`, 1_000)).toBe(false);
    reads.length = 0;
    expect(await r.isTokenRevoked('jti-revoked', 1_000)).toBe(true);
    expect(reads).toContain('jti-revoked'); // forgotten, so read from the store again
    expect(await r.isTokenRevoked('jti-revoked', 2_000)).toBe(true);
  });

  it('holds at most its bound of token ids: past it, ids read before are read from the store again', async () => {
    const reads: string[] = [];
    const r = new CachedRevocations(countingReads(reads), 100);
    for (let i = 0; i < 100; i++) await r.isTokenRevoked(`jti-${i}`, 1_000);
    reads.length = 0;
    for (let i = 0; i < 100; i++) await r.isTokenRevoked(`jti-${i}`, 1_000);
    expect(reads).toEqual([]);
    await r.isTokenRevoked('jti-100', 1_000); // the 101st empties it
    reads.length = 0;
    await r.isTokenRevoked('jti-0', 1_000);
    expect(reads).toContain('jti-0');
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

  it('holds at most its bound of counters, and answers as the store counts once it has forgotten them', async () => {
    let reads = 0;
    const counting = {
      consume: store.budgets.consume.bind(store.budgets),
      carve: store.budgets.carve.bind(store.budgets),
      usage: (taskId: string, tool: string) => {
        reads += 1;
        return store.budgets.usage(taskId, tool);
      },
    };
    const b = new CachedBudgets(counting, 100);
    await b.consume('task-0', 'a', { calls: 100 });
    await b.consume('task-0', 'a', { calls: 100 });
    reads = 0;
    expect(await b.usage('task-0', 'a')).toEqual({ calls: 2, toolCalls: 2 });
    expect(reads).toBe(0);
    for (let i = 1; i <= 150; i++) await b.usage(`task-${i}`, 'a');
    reads = 0;
    expect(await b.usage('task-0', 'a')).toEqual({ calls: 2, toolCalls: 2 });
    expect(reads).toBe(1);
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

function task(id: string): Task {
  return {
    id,
    agentId: 'spiffe://acme.test/agents/a',
    mandate: { purpose: 'Triage tickets.', environment: 'prod', tools: [{ name: 'kb.search' }], data_classes: [] },
    mandateHash: 'h',
    state: 'active',
    txn: 'txn',
    parentId: undefined,
    depth: 0,
    createdAt: 1_000,
    expiresAt: 100_000,
    maxExpiresAt: 100_000,
    endedAt: undefined,
    endReason: undefined,
  };
}

/** the store's tasks, noting each id read from it */
function countingTasks(reads: string[]): TaskReader & TaskWriter {
  const t = store.tasks;
  return {
    getTask: (id: string) => {
      reads.push(id);
      return t.getTask(id);
    },
    listTasks: t.listTasks.bind(t),
    listChildren: t.listChildren.bind(t),
    createTask: t.createTask.bind(t),
    transitionTask: t.transitionTask.bind(t),
    extendTask: t.extendTask.bind(t),
  };
}

describe('tasks from memory', () => {
  beforeEach(async () => {
    await store.agents.createAgent({ id: 'spiffe://acme.test/agents/a', owner: 'team', type: 'support', status: 'active', ceiling: {}, createdAt: 1_000, updatedAt: 1_000 });
  });

  it('holds at most its bound: past it, a task is read from the store again', async () => {
    const reads: string[] = [];
    const tasks = new CachedTasks(countingTasks(reads), 100);
    for (let i = 0; i < 100; i++) await tasks.createTask(task(`task-${i}`));
    for (let i = 0; i < 100; i++) expect((await tasks.getTask(`task-${i}`))?.id).toBe(`task-${i}`);
    expect(reads).toEqual([]);
    await tasks.createTask(task('task-100'));
    expect((await tasks.getTask('task-0'))?.id).toBe('task-0');
    expect(reads).toEqual(['task-0']);
  });

  it('reads a task again once its copy is older than the staleness bound (several nodes)', async () => {
    const reads: string[] = [];
    let now = 1_000;
    const tasks = new CachedTasks(countingTasks(reads), 100, { clock: { now: () => now }, maxAgeMs: 5_000 });
    await tasks.createTask(task('task-1'));
    now += 5_000;
    await tasks.getTask('task-1');
    expect(reads).toEqual([]);
    now += 1;
    await tasks.getTask('task-1');
    expect(reads).toEqual(['task-1']);
    await tasks.getTask('task-1');
    expect(reads).toEqual(['task-1']);
  });
});
