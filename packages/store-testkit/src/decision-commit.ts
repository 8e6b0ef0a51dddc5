import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, recordHash, type AuditDraft, type DecisionCommit } from '@mandate/core';
import { draft, sha256, type GetStore } from './fixtures.ts';

/** An allow with its budget claim, and the deny variants the store writes instead when spent. */
function allowEntry(i: number, limits: { calls?: number; toolCalls?: number }, tool = 'kb.search', taskId = 'task-1'): DecisionCommit {
  const variant = (reason: string): AuditDraft[] => [draft(i, { data: { i, effect: 'deny', reasons: [reason] } }), draft(i, { kind: 'action', data: { final: 'blocked' } })];
  return {
    drafts: [draft(i, { data: { i, effect: 'allow', reasons: [] } }), draft(i, { kind: 'action', data: { final: 'allowed' } })],
    budget: { taskId, tool, limits, exhausted: (which) => variant(which === 'tool' ? 'TOOL_BUDGET_EXHAUSTED' : 'BUDGET_EXHAUSTED') },
  };
}

export function decisionCommitSuite(store: GetStore): void {
  describe('decision commits (budget and audit in one transaction)', () => {
    it('commits a decision without a budget like an append', async () => {
      const r = await store().audit.commitDecision({ drafts: [draft(1), draft(2)] });
      expect(r.records.map((x) => x.seq)).toEqual([1, 2]);
      expect(r.budget).toBeUndefined();
    });

    it('counts an allow against its budget and writes the allow records', async () => {
      const r = await store().audit.commitDecision(allowEntry(1, { calls: 5, toolCalls: 5 }));
      expect(r.budget).toEqual({ ok: true, usage: { calls: 1, toolCalls: 1 } });
      expect(r.records.map((x) => x.data['effect'] ?? x.data['final'])).toEqual(['allow', 'allowed']);
      expect(await store().budgets.usage('task-1', 'kb.search')).toEqual({ calls: 1, toolCalls: 1 });
    });

    it('writes the exhausted variant, and counts nothing, once the total is spent', async () => {
      await store().audit.commitDecision(allowEntry(1, { calls: 1 }));
      const r = await store().audit.commitDecision(allowEntry(2, { calls: 1 }));
      expect(r.budget).toEqual({ ok: false, usage: { calls: 1, toolCalls: 1 }, exhausted: 'calls' });
      expect(r.records.map((x) => x.data['reasons'] ?? x.data['final'])).toEqual([['BUDGET_EXHAUSTED'], 'blocked']);
      expect(await store().budgets.usage('task-1', 'kb.search')).toEqual({ calls: 1, toolCalls: 1 });
    });

    it('writes the per-tool variant when the tool budget is spent', async () => {
      await store().audit.commitDecision(allowEntry(1, { toolCalls: 1 }));
      const r = await store().audit.commitDecision(allowEntry(2, { toolCalls: 1 }));
      expect(r.budget?.exhausted).toBe('tool');
      expect(r.records[0]?.data['reasons']).toEqual(['TOOL_BUDGET_EXHAUSTED']);
    });

    it('allows exactly the budget under 50 concurrent decisions, in one unbroken chain', async () => {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store().audit.commitDecision(allowEntry(i, { calls: 10 }))));
      expect(results.filter((r) => r.budget?.ok).length).toBe(10);
      expect(await store().budgets.usage('task-1', 'kb.search')).toEqual({ calls: 10, toolCalls: 10 });
      const all = await store().audit.readRange(1, 1000);
      expect(all.length).toBe(100);
      expect(all.filter((r) => r.data['effect'] === 'allow').length).toBe(10);
      let prev = GENESIS_HASH;
      all.forEach((r, i) => {
        expect(r.seq).toBe(i + 1);
        expect(r.prevHash).toBe(prev);
        expect(recordHash(r, sha256)).toBe(r.hash);
        prev = r.hash;
      });
    });

    it('keeps each task total and tool budget apart when one commit carries many tasks and tools', async () => {
      // submitted in one turn: one group commit holds them all, in this order
      const plan = Array.from({ length: 60 }, (_, i) => ({ task: `task-${i % 3}`, tool: i % 2 === 0 ? 'kb.search' : 'kb.get' }));
      const results = await Promise.all(plan.map((p, i) => store().audit.commitDecision(allowEntry(i, { calls: 12, toolCalls: 5 }, p.tool, p.task))));
      // the same answers as spending one call at a time in submission order
      const used = new Map<string, number>();
      plan.forEach((p, i) => {
        const total = used.get(p.task) ?? 0;
        const perTool = used.get(`${p.task}/${p.tool}`) ?? 0;
        const r = results[i];
        if (total >= 12) expect(r?.budget).toMatchObject({ ok: false, exhausted: 'calls' });
        else if (perTool >= 5) expect(r?.budget).toMatchObject({ ok: false, exhausted: 'tool' });
        else {
          expect(r?.budget).toEqual({ ok: true, usage: { calls: total + 1, toolCalls: perTool + 1 } });
          used.set(p.task, total + 1);
          used.set(`${p.task}/${p.tool}`, perTool + 1);
        }
      });
      for (const task of ['task-0', 'task-1', 'task-2']) {
        for (const tool of ['kb.search', 'kb.get']) {
          expect(await store().budgets.usage(task, tool)).toEqual({ calls: used.get(task) ?? 0, toolCalls: used.get(`${task}/${tool}`) ?? 0 });
        }
      }
    });

    it('fails the whole commit closed when a used-up budget\'s records cannot be built, and writes nothing', async () => {
      await store().audit.commitDecision(allowEntry(1, { calls: 1 }));
      const broken: DecisionCommit = {
        ...allowEntry(2, { calls: 1 }),
        budget: { taskId: 'task-1', tool: 'kb.search', limits: { calls: 1 }, exhausted: () => { throw new Error('cannot build'); } },
      };
      const results = await Promise.allSettled([store().audit.commitDecision({ drafts: [draft(3)] }), store().audit.commitDecision(broken)]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      expect(results[1]).toMatchObject({ reason: { code: 'AUDIT_UNAVAILABLE' } });
      expect((await store().audit.readRange(1, 100)).length).toBe(2);
      expect(await store().budgets.usage('task-1', 'kb.search')).toEqual({ calls: 1, toolCalls: 1 });
    });

    it('commits a lone lazy entry (an outcome record) on its own, soon, with its place in the chain', async () => {
      const start = Date.now();
      const r = await store().audit.commitDecision({ drafts: [draft(1)], lazy: true });
      expect(Date.now() - start).toBeLessThan(1000);
      expect(r.records.map((x) => x.seq)).toEqual([1]);
      expect((await store().audit.head())?.seq).toBe(1);
    });

    it('links a lazy entry before the urgent one submitted after it, in one commit order', async () => {
      const lazy = store().audit.commitDecision({ drafts: [draft(1)], lazy: true });
      await new Promise<void>((resolve) => setImmediate(resolve));
      const urgent = store().audit.commitDecision(allowEntry(2, { calls: 5 }));
      const [a, b] = await Promise.all([lazy, urgent]);
      expect(a.records.map((x) => x.seq)).toEqual([1]);
      expect(b.records.map((x) => x.seq)).toEqual([2, 3]);
      expect(b.records[0]?.prevHash).toBe(a.records[0]?.hash);
      expect(b.budget).toEqual({ ok: true, usage: { calls: 1, toolCalls: 1 } });
    });

    it('refuses an entry whose records cannot be stored without harming the entries beside it', async () => {
      const bad = { ...allowEntry(1, { calls: 5 }), drafts: [draft(1, { data: { n: Number.NaN } })] };
      const [good, broken] = await Promise.allSettled([store().audit.commitDecision(allowEntry(2, { calls: 5 })), store().audit.commitDecision(bad)]);
      expect(good.status).toBe('fulfilled');
      expect(broken.status).toBe('rejected');
      expect(await store().budgets.usage('task-1', 'kb.search')).toEqual({ calls: 1, toolCalls: 1 });
    });
  });
}
