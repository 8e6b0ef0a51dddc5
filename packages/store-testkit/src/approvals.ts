import { describe, expect, it } from 'vitest';
import type { Store } from '@mandate/core';
import { approval, seedTask, T0, type GetStore } from './fixtures.ts';

const MIN = 60_000;

async function withTasks(s: Store): Promise<Store> {
  await seedTask(s, 'task-1');
  await seedTask(s, 'task-2');
  return s;
}

export function approvalSuite(store: GetStore): void {
  describe('approvals', () => {
    it('returns an approval exactly as it was created, and refuses its id twice with CONFLICT', async () => {
      const s = await withTasks(store());
      const a = approval('ap-1', { resource: 'mailbox:support', reason: 'looks fine' });
      await s.approvals.createApproval(a);
      expect(await s.approvals.getApproval('ap-1')).toEqual(a);
      expect(await s.approvals.getApproval('ap-none')).toBeUndefined();
      await expect(s.approvals.createApproval({ ...a, tool: 'other' })).rejects.toMatchObject({ code: 'CONFLICT' });
      await expect(s.approvals.createApproval(approval('ap-2', { taskId: 'no-such-task' }))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('finds the newest unexpired approval for the exact call, in any state', async () => {
      const s = await withTasks(store());
      await s.approvals.createApproval(approval('ap-old', { createdAt: T0, state: 'used' }));
      await s.approvals.createApproval(approval('ap-new', { createdAt: T0 + 1, state: 'denied' }));
      await s.approvals.createApproval(approval('ap-expired', { createdAt: T0 + 2, expiresAt: T0 + 5 }));
      await s.approvals.createApproval(approval('ap-other-args', { createdAt: T0 + 3, argsHash: 'c'.repeat(64) }));
      expect((await s.approvals.findApproval('task-1', 'mail.send', 'b'.repeat(64), T0 + 10))?.id).toBe('ap-new');
      expect((await s.approvals.findApproval('task-1', 'mail.send', 'b'.repeat(64), T0 + 1))?.id).toBe('ap-expired');
      expect(await s.approvals.findApproval('task-2', 'mail.send', 'b'.repeat(64), T0)).toBeUndefined();
    });

    it('lists by creation, filtered by state and task, paged with the after cursor, and counts pending', async () => {
      const s = await withTasks(store());
      await s.approvals.createApproval(approval('b', { createdAt: T0, state: 'pending' }));
      await s.approvals.createApproval(approval('a', { createdAt: T0, state: 'pending' }));
      await s.approvals.createApproval(approval('c', { createdAt: T0 + 1, taskId: 'task-2', state: 'pending' }));
      await s.approvals.createApproval(approval('d', { createdAt: T0 + 2 }));
      await s.approvals.createApproval(approval('e', { createdAt: T0 + 3, state: 'pending', expiresAt: T0 + 10 }));
      const ids = async (o: Parameters<Store['approvals']['listApprovals']>[0]) => (await s.approvals.listApprovals(o)).map((x) => x.id);
      expect(await ids({ limit: 10 })).toEqual(['a', 'b', 'c', 'd', 'e']);
      expect(await ids({ limit: 2, after: 'b' })).toEqual(['c', 'd']);
      expect(await ids({ limit: 10, state: 'pending', taskId: 'task-1' })).toEqual(['a', 'b', 'e']);
      expect(await ids({ limit: 10, after: 'no-such-id' })).toEqual([]);
      expect(await s.approvals.countPending('task-1', T0 + 5)).toBe(3);
      expect(await s.approvals.countPending('task-1', T0 + 10)).toBe(2);
    });

    it('records who decided and which call used an approval, moving only from the expected states', async () => {
      const s = await withTasks(store());
      const a = approval('ap-1', { state: 'pending', decidedAt: undefined, decidedBy: undefined });
      await s.approvals.createApproval(a);
      const approved = await s.approvals.transitionApproval('ap-1', ['pending'], 'approved', { at: T0 + 5, by: 'op-1', reason: 'ok' });
      expect(approved).toEqual({ changed: true, approval: { ...a, state: 'approved', decidedAt: T0 + 5, decidedBy: 'op-1', reason: 'ok' } });
      expect(await s.approvals.transitionApproval('ap-1', ['pending'], 'denied', { at: T0 + 6, by: 'op-2' })).toEqual({ changed: false, approval: approved.approval });
      const used = await s.approvals.transitionApproval('ap-1', ['approved'], 'used', { at: T0 + 7, callId: 'call-9' });
      expect(used.approval).toEqual({ ...approved.approval, state: 'used', usedAt: T0 + 7, usedCallId: 'call-9' });
      expect(await s.approvals.getApproval('ap-1')).toEqual(used.approval);
      expect(await s.approvals.transitionApproval('ap-none', ['pending'], 'denied', { at: T0 })).toEqual({ changed: false, approval: undefined });
    });

    it("cancels the live approvals of the given tasks only, and returns what it cancelled", async () => {
      const s = await withTasks(store());
      await s.approvals.createApproval(approval('p', { state: 'pending', decidedAt: undefined, decidedBy: undefined }));
      await s.approvals.createApproval(approval('a', { createdAt: T0 + 1 }));
      await s.approvals.createApproval(approval('u', { state: 'used' }));
      await s.approvals.createApproval(approval('other', { taskId: 'task-2', state: 'pending' }));
      const cancelled = await s.approvals.cancelForTasks(['task-1'], T0 + MIN, 'task killed');
      expect(cancelled.map((x) => [x.id, x.state, x.reason])).toEqual([['p', 'cancelled', 'task killed'], ['a', 'cancelled', 'task killed']]);
      for (const x of cancelled) expect(await s.approvals.getApproval(x.id)).toEqual(x);
      expect((await s.approvals.getApproval('u'))?.state).toBe('used');
      expect((await s.approvals.getApproval('other'))?.state).toBe('pending');
      expect(await s.approvals.cancelForTasks(['task-1'], T0 + MIN, 'again')).toEqual([]);
      expect(await s.approvals.cancelForTasks([], T0, 'nothing')).toEqual([]);
    });

    it('expires live approvals past their time, once', async () => {
      const s = await withTasks(store());
      await s.approvals.createApproval(approval('due', { state: 'pending', expiresAt: T0 + MIN }));
      await s.approvals.createApproval(approval('approved-due', { expiresAt: T0 + MIN }));
      await s.approvals.createApproval(approval('later', { expiresAt: T0 + 10 * MIN }));
      await s.approvals.createApproval(approval('denied', { state: 'denied', expiresAt: T0 }));
      const expired = await s.approvals.expireApprovals(T0 + MIN);
      expect(expired.map((x) => [x.id, x.state])).toEqual([['approved-due', 'expired'], ['due', 'expired']].sort());
      expect(await s.approvals.expireApprovals(T0 + MIN)).toEqual([]);
      expect((await s.approvals.getApproval('later'))?.state).toBe('approved');
    });
  });
}

export function controlSuite(store: GetStore): void {
  describe('controls', () => {
    it('sets, replaces and clears a control', async () => {
      const s = store();
      expect(await s.controls.getControl('emergency_stop')).toBeUndefined();
      await s.controls.setControl('emergency_stop', { reason: 'drill', at: T0 }, T0);
      expect(await s.controls.getControl('emergency_stop')).toEqual({ reason: 'drill', at: T0 });
      await s.controls.setControl('emergency_stop', { reason: 'real' }, T0 + 1);
      expect(await s.controls.getControl('emergency_stop')).toEqual({ reason: 'real' });
      await s.controls.setControl('emergency_stop', undefined, T0 + 2);
      expect(await s.controls.getControl('emergency_stop')).toBeUndefined();
    });
  });
}
