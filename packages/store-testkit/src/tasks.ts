import { describe, expect, it } from 'vitest';
import type { TaskState } from '@mandate/core';
import { MINUTE, seedTask, T0, task, withCode, type GetStore } from './fixtures.ts';

const A1 = 'spiffe://acme.test/agents/one';
const A2 = 'spiffe://acme.test/agents/two';

export function taskSuite(store: GetStore): void {
  describe('tasks', () => {
    it('returns a task exactly as it was created, mandate included', async () => {
      const t = await seedTask(store(), 'task-1');
      expect(await store().tasks.getTask('task-1')).toEqual(t);
    });

    it('keeps the parent and depth of a delegated task', async () => {
      await seedTask(store(), 'parent');
      const child = await seedTask(store(), 'child', { parentId: 'parent', depth: 1 });
      expect(await store().tasks.getTask('child')).toEqual(child);
    });

    it('returns undefined for an unknown task', async () => {
      expect(await store().tasks.getTask('no-such-task')).toBeUndefined();
    });

    it('refuses to create a task whose id exists, with CONFLICT', async () => {
      const t = await seedTask(store(), 'task-1');
      await expect(store().tasks.createTask({ ...t, txn: 'other' })).rejects.toMatchObject(withCode('CONFLICT'));
      expect(await store().tasks.getTask('task-1')).toEqual(t);
    });

    it('moves a task when its state is one of the expected states', async () => {
      const t = await seedTask(store(), 'task-1');
      const r = await store().tasks.transitionTask('task-1', ['active'], 'suspended', T0 + 1, 'signal: exfiltration');
      expect(r).toEqual({ changed: true, task: { ...t, state: 'suspended' } });
      expect(await store().tasks.getTask('task-1')).toEqual(r.task);
      const back = await store().tasks.transitionTask('task-1', ['suspended'], 'active', T0 + 2, 'operator resumed');
      expect(back).toEqual({ changed: true, task: t });
    });

    it('leaves a task alone when its state is not one of the expected states', async () => {
      const t = await seedTask(store(), 'task-1');
      const r = await store().tasks.transitionTask('task-1', ['suspended', 'completed'], 'killed', T0 + 1, 'kill');
      expect(r).toEqual({ changed: false, task: t });
      expect(await store().tasks.transitionTask('task-1', [], 'killed', T0 + 1, 'kill')).toEqual({ changed: false, task: t });
    });

    it('reports no change and no task when transitioning an unknown task', async () => {
      expect(await store().tasks.transitionTask('no-such-task', ['active'], 'killed', T0, 'kill')).toEqual({ changed: false, task: undefined });
    });

    for (const to of ['completed', 'expired', 'revoked', 'killed'] as const) {
      it(`records when and why a task ended when it becomes ${to}`, async () => {
        const t = await seedTask(store(), 'task-1');
        const r = await store().tasks.transitionTask('task-1', ['active', 'suspended'], to, T0 + 7 * MINUTE, `reason for ${to}`);
        expect(r.changed).toBe(true);
        expect(r.task).toEqual({ ...t, state: to, endedAt: T0 + 7 * MINUTE, endReason: `reason for ${to}` });
        expect(await store().tasks.getTask('task-1')).toEqual(r.task);
      });
    }

    it('does not mark a suspended task as ended', async () => {
      await seedTask(store(), 'task-1');
      const r = await store().tasks.transitionTask('task-1', ['active'], 'suspended', T0 + 1, 'suspended');
      expect(r.task?.endedAt).toBeUndefined();
      expect(r.task?.endReason).toBeUndefined();
    });

    it('lets exactly one of two concurrent transitions from active win', async () => {
      await seedTask(store(), 'task-1');
      const [a, b] = await Promise.all([
        store().tasks.transitionTask('task-1', ['active'], 'completed', T0 + 1, 'agent completed'),
        store().tasks.transitionTask('task-1', ['active'], 'killed', T0 + 2, 'operator kill'),
      ]);
      expect([a.changed, b.changed].filter(Boolean)).toHaveLength(1);
      const winner = a.changed ? a : b;
      const stored = await store().tasks.getTask('task-1');
      expect(stored).toEqual(winner.task);
      expect(a.task?.state).toBe(stored?.state);
      expect(b.task?.state).toBe(stored?.state);
    });

    it('lets exactly one of many concurrent terminal transitions win', async () => {
      await seedTask(store(), 'task-1');
      const targets: TaskState[] = ['completed', 'expired', 'revoked', 'killed'];
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store().tasks.transitionTask('task-1', ['active'], targets[i % 4] as TaskState, T0 + i, `r${i}`)),
      );
      const winners = results.filter((r) => r.changed);
      expect(winners).toHaveLength(1);
      expect(await store().tasks.getTask('task-1')).toEqual(winners[0]?.task);
    });

    it('extends an active task forward', async () => {
      await seedTask(store(), 'task-1');
      const t = await store().tasks.extendTask('task-1', T0 + 30 * MINUTE);
      expect(t?.expiresAt).toBe(T0 + 30 * MINUTE);
      expect((await store().tasks.getTask('task-1'))?.expiresAt).toBe(T0 + 30 * MINUTE);
    });

    it('never moves expiry backward', async () => {
      await seedTask(store(), 'task-1');
      await store().tasks.extendTask('task-1', T0 + 30 * MINUTE);
      const t = await store().tasks.extendTask('task-1', T0 + 20 * MINUTE);
      expect(t?.expiresAt).toBe(T0 + 30 * MINUTE);
      expect((await store().tasks.getTask('task-1'))?.expiresAt).toBe(T0 + 30 * MINUTE);
    });

    it('never extends past maxExpiresAt', async () => {
      await seedTask(store(), 'task-1');
      const t = await store().tasks.extendTask('task-1', T0 + 5 * 60 * MINUTE);
      expect(t?.expiresAt).toBe(T0 + 60 * MINUTE);
      expect((await store().tasks.getTask('task-1'))?.expiresAt).toBe(T0 + 60 * MINUTE);
    });

    it('does not extend a task that is not active', async () => {
      await seedTask(store(), 'task-1');
      await seedTask(store(), 'task-2');
      await store().tasks.transitionTask('task-1', ['active'], 'completed', T0 + 1, 'done');
      await store().tasks.transitionTask('task-2', ['active'], 'suspended', T0 + 1, 'signal');
      expect((await store().tasks.extendTask('task-1', T0 + 30 * MINUTE))?.expiresAt).toBe(T0 + 15 * MINUTE);
      expect((await store().tasks.extendTask('task-2', T0 + 30 * MINUTE))?.expiresAt).toBe(T0 + 15 * MINUTE);
      expect((await store().tasks.getTask('task-1'))?.expiresAt).toBe(T0 + 15 * MINUTE);
    });

    it('returns undefined when extending an unknown task', async () => {
      expect(await store().tasks.extendTask('no-such-task', T0 + 30 * MINUTE)).toBeUndefined();
    });

    it('lists tasks ordered by creation time, then id, and pages with the after cursor', async () => {
      await seedTask(store(), 'task-b', { createdAt: T0 });
      await seedTask(store(), 'task-a', { createdAt: T0 });
      await seedTask(store(), 'task-z', { createdAt: T0 - MINUTE });
      await seedTask(store(), 'task-c', { createdAt: T0 + MINUTE });
      const ids = async (opts: { limit: number; after?: string }) => (await store().tasks.listTasks(opts)).map((t) => t.id);
      expect(await ids({ limit: 10 })).toEqual(['task-z', 'task-a', 'task-b', 'task-c']);
      expect(await ids({ limit: 2 })).toEqual(['task-z', 'task-a']);
      expect(await ids({ limit: 2, after: 'task-a' })).toEqual(['task-b', 'task-c']);
      expect(await ids({ limit: 2, after: 'task-c' })).toEqual([]);
    });

    it('filters listed tasks by agent and by state', async () => {
      await seedTask(store(), 't1', { agentId: A1, createdAt: T0 + 1 });
      await seedTask(store(), 't2', { agentId: A2, createdAt: T0 + 2 });
      await seedTask(store(), 't3', { agentId: A1, createdAt: T0 + 3 });
      await seedTask(store(), 't4', { agentId: A1, createdAt: T0 + 4 });
      await store().tasks.transitionTask('t3', ['active'], 'killed', T0 + 10, 'kill');
      const ids = async (opts: Parameters<ReturnType<GetStore>['tasks']['listTasks']>[0]) =>
        (await store().tasks.listTasks(opts)).map((t) => t.id);
      expect(await ids({ limit: 10, agentId: A1 })).toEqual(['t1', 't3', 't4']);
      expect(await ids({ limit: 10, state: 'active' })).toEqual(['t1', 't2', 't4']);
      expect(await ids({ limit: 10, agentId: A1, state: 'active' })).toEqual(['t1', 't4']);
      expect(await ids({ limit: 1, agentId: A1, state: 'active', after: 't1' })).toEqual(['t4']);
      expect(await ids({ limit: 10, agentId: A2, state: 'killed' })).toEqual([]);
      const [t1] = await store().tasks.listTasks({ limit: 1, agentId: A1 });
      expect(t1).toEqual(task('t1', A1, { createdAt: T0 + 1 }));
    });
  });
}
