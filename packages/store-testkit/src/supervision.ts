import { describe, expect, it } from 'vitest';
import type { AuditDraft } from '@mandate/core';
import { MINUTE, seedTask, T0, type GetStore } from './fixtures.ts';

/** an action record exactly as the decision engine writes it */
function action(taskId: string, callId: string, effect: 'allow' | 'deny', i: number): AuditDraft {
  return { kind: 'action', ts: T0 + i, callId, taskId, agentId: 'spiffe://acme.test/agents/triage', txn: `txn-${taskId}`, data: { final: effect === 'allow' ? 'allowed' : 'blocked', effect } };
}

export function supervisionSuite(store: GetStore): void {
  describe('supervision', () => {
    it('keeps a task key binding and first sign of supervision; a second init changes nothing', async () => {
      await seedTask(store(), 'task-1');
      await store().supervision.initSupervision('task-1', 'j'.repeat(43), T0);
      await store().supervision.initSupervision('task-1', undefined, T0 + MINUTE);
      expect(await store().supervision.getSupervision('task-1')).toEqual({ taskId: 'task-1', jkt: 'j'.repeat(43), supervisedAt: T0 });
      expect(await store().supervision.getSupervision('task-2')).toBeUndefined();
    });

    it('moves the last sign of supervision forward only, and reports a task without a row', async () => {
      await seedTask(store(), 'task-1');
      await store().supervision.initSupervision('task-1', undefined, T0);
      expect(await store().supervision.recordSupervision('task-1', T0 + 2 * MINUTE)).toBe(true);
      expect(await store().supervision.recordSupervision('task-1', T0 + MINUTE)).toBe(true);
      expect((await store().supervision.getSupervision('task-1'))?.supervisedAt).toBe(T0 + 2 * MINUTE);
      expect(await store().supervision.recordSupervision('nope', T0)).toBe(false);
    });

    it('lists active tasks last supervised before a time, oldest first, never ended ones', async () => {
      for (const [id, at] of [['t-a', T0 + 3], ['t-b', T0 + 1], ['t-c', T0 + 2], ['t-d', T0 + 10]] as const) {
        await seedTask(store(), id);
        await store().supervision.initSupervision(id, undefined, at);
      }
      await store().tasks.transitionTask('t-c', ['active'], 'completed', T0 + 5, 'done');
      expect(await store().supervision.listUnsupervised(T0 + 5, 10)).toEqual(['t-b', 't-a']);
      expect(await store().supervision.listUnsupervised(T0 + 5, 1)).toEqual(['t-b']);
    });

    it("counts a task's allowed calls in the audit log and names the last one", async () => {
      await seedTask(store(), 'task-1');
      await seedTask(store(), 'task-2');
      expect(await store().supervision.taskProgress('task-1')).toEqual({ allowedCalls: 0, lastCallId: null });
      await store().audit.append([action('task-1', 'c1', 'allow', 1), action('task-1', 'c2', 'deny', 2), action('task-2', 'x1', 'allow', 3)]);
      await store().audit.append([action('task-1', 'c3', 'allow', 4), action('task-1', 'c4', 'deny', 5)]);
      expect(await store().supervision.taskProgress('task-1')).toEqual({ allowedCalls: 2, lastCallId: 'c3' });
      expect(await store().supervision.taskProgress('task-2')).toEqual({ allowedCalls: 1, lastCallId: 'x1' });
    });

    it('schedules a revocation: not yet in force before its time when asked with now, always in force without', async () => {
      await store().revocations.revokeToken('jti-g', 'task-1', T0 + 10 * MINUTE, 'renewed', T0 + 10_000);
      expect(await store().revocations.isTokenRevoked('jti-g', T0)).toBe(false);
      expect(await store().revocations.isTokenRevoked('jti-g', T0 + 10_000)).toBe(true);
      expect(await store().revocations.isTokenRevoked('jti-g')).toBe(true);
      // revoking again at once brings the revocation forward
      await store().revocations.revokeToken('jti-g', 'task-1', T0 + 10 * MINUTE, 'task killed', T0 + 1);
      expect(await store().revocations.isTokenRevoked('jti-g', T0 + 1)).toBe(true);
    });
  });
}
