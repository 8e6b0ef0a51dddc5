import { describe, expect, it } from 'vitest';
import type { GetStore } from './fixtures.ts';

export function budgetSuite(store: GetStore): void {
  describe('budgets', () => {
    it('reports zero usage for a task and tool never seen', async () => {
      expect(await store().budgets.usage('task-1', 'fs.read_file')).toEqual({ calls: 0, toolCalls: 0 });
    });

    it('counts a call against both the task total and the tool', async () => {
      const r = await store().budgets.consume('task-1', 'fs.read_file', { calls: 5, toolCalls: 5 });
      expect(r).toEqual({ ok: true, usage: { calls: 1, toolCalls: 1 } });
      expect(await store().budgets.usage('task-1', 'fs.read_file')).toEqual({ calls: 1, toolCalls: 1 });
    });

    it('counts each tool apart and the total across tools', async () => {
      await store().budgets.consume('task-1', 'a', {});
      await store().budgets.consume('task-1', 'a', {});
      const r = await store().budgets.consume('task-1', 'b', {});
      expect(r).toEqual({ ok: true, usage: { calls: 3, toolCalls: 1 } });
      expect(await store().budgets.usage('task-1', 'a')).toEqual({ calls: 3, toolCalls: 2 });
      expect(await store().budgets.usage('task-1', 'c')).toEqual({ calls: 3, toolCalls: 0 });
    });

    it('keeps the budgets of different tasks apart', async () => {
      await store().budgets.consume('task-1', 'a', {});
      await store().budgets.consume('task-1', 'a', {});
      expect(await store().budgets.consume('task-2', 'a', { calls: 1 })).toEqual({ ok: true, usage: { calls: 1, toolCalls: 1 } });
      expect(await store().budgets.usage('task-2', 'a')).toEqual({ calls: 1, toolCalls: 1 });
    });

    it('refuses a call once the task total is reached, and counts nothing', async () => {
      await store().budgets.consume('task-1', 'a', { calls: 2 });
      await store().budgets.consume('task-1', 'b', { calls: 2 });
      const r = await store().budgets.consume('task-1', 'c', { calls: 2 });
      expect(r).toEqual({ ok: false, usage: { calls: 2, toolCalls: 0 }, exhausted: 'calls' });
      expect(await store().budgets.usage('task-1', 'c')).toEqual({ calls: 2, toolCalls: 0 });
    });

    it('refuses a budget call once the per-tool limit is reached, and counts nothing', async () => {
      await store().budgets.consume('task-1', 'helpdesk.draft_reply', { calls: 10, toolCalls: 2 });
      await store().budgets.consume('task-1', 'helpdesk.draft_reply', { calls: 10, toolCalls: 2 });
      const r = await store().budgets.consume('task-1', 'helpdesk.draft_reply', { calls: 10, toolCalls: 2 });
      expect(r).toEqual({ ok: false, usage: { calls: 2, toolCalls: 2 }, exhausted: 'tool' });
      expect(await store().budgets.usage('task-1', 'helpdesk.draft_reply')).toEqual({ calls: 2, toolCalls: 2 });
    });

    it('still allows other tools when one tool is exhausted', async () => {
      await store().budgets.consume('task-1', 'a', { toolCalls: 1 });
      expect((await store().budgets.consume('task-1', 'a', { toolCalls: 1 })).ok).toBe(false);
      expect(await store().budgets.consume('task-1', 'b', { toolCalls: 1 })).toEqual({ ok: true, usage: { calls: 2, toolCalls: 1 } });
    });

    it('names the task total when both limits are reached', async () => {
      await store().budgets.consume('task-1', 'a', { calls: 1, toolCalls: 1 });
      expect(await store().budgets.consume('task-1', 'a', { calls: 1, toolCalls: 1 })).toMatchObject({ ok: false, exhausted: 'calls' });
    });

    it('refuses every call when a limit is zero', async () => {
      expect(await store().budgets.consume('task-1', 'a', { calls: 0 })).toEqual({ ok: false, usage: { calls: 0, toolCalls: 0 }, exhausted: 'calls' });
      expect(await store().budgets.consume('task-1', 'a', { toolCalls: 0 })).toEqual({ ok: false, usage: { calls: 0, toolCalls: 0 }, exhausted: 'tool' });
    });

    it('treats absent limits as unlimited', async () => {
      for (let i = 0; i < 25; i++) expect((await store().budgets.consume('task-1', 'a', { calls: undefined, toolCalls: undefined })).ok).toBe(true);
      expect(await store().budgets.usage('task-1', 'a')).toEqual({ calls: 25, toolCalls: 25 });
    });

    it('allows exactly the limit under 50 concurrent calls', async () => {
      const results = await Promise.all(Array.from({ length: 50 }, () => store().budgets.consume('task-1', 'a', { calls: 10 })));
      const ok = results.filter((r) => r.ok);
      expect(ok).toHaveLength(10);
      // each successful call saw its own increment: no two read the same count
      expect(ok.map((r) => r.usage.calls).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      for (const r of results.filter((x) => !x.ok)) expect(r).toEqual({ ok: false, usage: { calls: 10, toolCalls: 10 }, exhausted: 'calls' });
      expect(await store().budgets.usage('task-1', 'a')).toEqual({ calls: 10, toolCalls: 10 });
    });

    it('holds the per-tool limit under concurrent calls across tools', async () => {
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => store().budgets.consume('task-1', i % 2 === 0 ? 'a' : 'b', { calls: 100, toolCalls: 5 })),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(10);
      expect(results.filter((r) => !r.ok).every((r) => r.exhausted === 'tool')).toBe(true);
      expect(await store().budgets.usage('task-1', 'a')).toEqual({ calls: 10, toolCalls: 5 });
      expect(await store().budgets.usage('task-1', 'b')).toEqual({ calls: 10, toolCalls: 5 });
    });

    it('carves a share out of a task budget only while it fits', async () => {
      await store().budgets.consume('task-1', 'a', { calls: 10 });
      expect(await store().budgets.carve('task-1', 6, 10)).toBe(true);
      expect(await store().budgets.carve('task-1', 4, 10)).toBe(false);
      expect(await store().budgets.usage('task-1', 'a')).toEqual({ calls: 7, toolCalls: 1 });
      expect(await store().budgets.carve('task-1', 3, 10)).toBe(true);
      expect((await store().budgets.consume('task-1', 'a', { calls: 10 })).ok).toBe(false);
    });

    it('never over-carves under concurrency', async () => {
      const results = await Promise.all(Array.from({ length: 20 }, () => store().budgets.carve('task-1', 3, 30)));
      expect(results.filter(Boolean).length).toBe(10);
      expect((await store().budgets.usage('task-1', 'x')).calls).toBe(30);
    });
  });
}
