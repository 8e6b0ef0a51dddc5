import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sealJson, type AuditDraft, type DecisionCommit } from '@mandate/core';
import { draft, seedTask, testHasher } from '../../store-testkit/src/index.ts';
import { openSqliteStore, type SqliteStore } from '../src/index.ts';

/**
 * The audit chain is byte-identical for the same input, whichever way it is committed: a fixed
 * sequence of decisions (sealed and unsealed data, keys out of order, non-ASCII text, absent
 * optional fields, a budget that runs out) gives the pinned digest of every stored row (seq,
 * data text, previous hash, hash), on the event loop and on the commit thread alike. A change
 * to how records travel or are linked must not move it.
 */
const GOLDEN = '451c4f706d52e7d5e453b0396f568cb7b2dab2d7a63e981fce6adda9e5b5365d';

let dir: string;
const opened: SqliteStore[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-sqlite-golden-'));
});

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  await rm(dir, { recursive: true, force: true });
});

/** one decision as the engine commits it: decision (sealed), a signal (not sealed), action (sealed) */
function decision(i: number, calls: number): DecisionCommit {
  const base = draft(i);
  const drafts: AuditDraft[] = [
    { ...base, data: sealJson({ tool: 'helpdesk.draft_reply', resource: i % 3 === 0 ? null : `ticket:T-${i}`, args: { z: 'última', a: [1, 2.5, { y: true, b: null }] }, effect: 'allow', reasons: [], policy_ids: ['helpdesk.permit'] }) },
    { ...base, kind: 'signal', data: { severity: 'low', detector: 'drift', evidence: { score: i / 7, note: 'naïve “quotes”\n' } } },
    { ...base, kind: 'action', ...(i % 2 === 0 ? { txn: undefined } : {}), data: sealJson({ final: 'allowed', effect: 'allow' }) },
  ];
  const exhausted = (which: 'calls' | 'tool'): readonly AuditDraft[] => [{ ...base, data: sealJson({ effect: 'deny', reasons: [which === 'tool' ? 'TOOL_BUDGET_EXHAUSTED' : 'BUDGET_EXHAUSTED'] }) }];
  return { drafts, budget: { taskId: 'task-1', tool: 'helpdesk.draft_reply', limits: { calls }, exhausted } };
}

async function digest(commitThread: boolean): Promise<string> {
  const s = openSqliteStore({ path: join(dir, `${String(commitThread)}.db`), hasher: testHasher, commitThread, durability: 'normal' });
  opened.push(s);
  await s.started();
  await seedTask(s, 'task-1');
  // one batch of concurrent decisions (the last ones find the budget used up), then one alone
  await Promise.all(Array.from({ length: 8 }, (_, i) => s.audit.commitDecision(decision(i, 6))));
  await s.audit.commitDecision(decision(8, 100));
  await s.audit.append([draft(9, { kind: 'outcome', callId: undefined })]);
  const rows = await s.audit.readStored(1, 1000);
  // 6 allowed (3 records each), 2 exhausted (1 each), the lone decision (3), the outcome (1)
  expect(rows).toHaveLength(24);
  const h = createHash('sha256');
  for (const r of rows) h.update(`${r.seq}\n${r.kind}\n${r.dataText}\n${r.prevHash}\n${r.hash}\n`);
  return h.digest('hex');
}

describe('sqlite store: the audit chain for a fixed sequence of decisions', () => {
  it('is byte-identical on the event loop and on the commit thread, and matches the pinned digest', async () => {
    const loop = await digest(false);
    const thread = await digest(true);
    expect(thread).toBe(loop);
    expect(loop).toBe(GOLDEN);
  });
});
