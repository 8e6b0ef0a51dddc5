/**
 * TaskEnds.watch on a task that has already ended: a watch registered after the end (the kill
 * landed between a call's authorization and the watch, or a stream opened after the kill) hears
 * that end at once, with its reason code, instead of never; a task that is only suspended, or
 * still active, is not told as ended. First on TaskEnds alone, then on a real runtime (SQLite):
 * the multi-node path (PostgreSQL's change feed) calls the same `changed` and the same `watch`.
 */
import type { Task, TaskState } from '@mandate/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskEnds, type TaskEnd } from '../../src/task-ends.ts';
import { startHarness, type Harness } from '../support.ts';

function task(id: string, state: TaskState, endReason?: string): Task {
  return { id, agentId: `spiffe://test.local/${id}`, state, ...(endReason !== undefined ? { endReason } : {}) } as unknown as Task;
}

/** A TaskEnds over a store that holds `tasks`; records what it reads and every error. */
function ends(tasks: Map<string, Task>) {
  const reads: string[] = [];
  const errors: unknown[] = [];
  const te = new TaskEnds(
    (id) => {
      reads.push(id);
      return Promise.resolve(tasks.get(id));
    },
    (e) => errors.push(e),
  );
  return { te, reads, errors };
}

/** Resolves after pending store reads and microtasks have run. */
const settled = () => new Promise<void>((r) => setImmediate(r));

describe('the task ends a node remembers', () => {
  it('keeps its bound of ends, the oldest forgotten first: a watch of a forgotten end reads the store and still hears it', async () => {
    const store = new Map(['t1', 't2', 't3'].map((id) => [id, task(id, 'killed', 'runaway job')] as const));
    const reads: string[] = [];
    const te = new TaskEnds(
      (id) => {
        reads.push(id);
        return Promise.resolve(store.get(id));
      },
      () => undefined,
      2,
    );
    for (const id of ['t1', 't2', 't3']) te.ended(task(id, 'killed'), 'runaway job');
    const heard: string[] = [];
    te.watch('t3', (e) => heard.push(`${e.taskId} ${e.code}`));
    te.watch('t1', (e) => heard.push(`${e.taskId} ${e.code}`));
    await settled();
    expect(reads).toEqual(['t1']);
    expect(heard.sort()).toEqual(['t1 TASK_KILLED', 't3 TASK_KILLED']);
  });
});

describe('TaskEnds.watch of a task that has already ended', () => {
  it('tells an end that happened on this node before the watch on the next tick, without reading the store', async () => {
    const store = new Map([['t1', task('t1', 'killed', 'runaway job')]]);
    const { te, reads } = ends(store);
    te.ended(task('t1', 'killed'), 'runaway job');
    const heard: TaskEnd[] = [];
    te.watch('t1', (e) => heard.push(e));
    await Promise.resolve();
    expect(heard).toEqual([{ taskId: 't1', agentId: 'spiffe://test.local/t1', code: 'TASK_KILLED', state: 'killed', detail: 'runaway job' }]);
    expect(reads).toEqual([]);
    expect(te.watched).toBe(0);
  });

  it('tells an end it never heard (another node, an earlier run) once the store has been read', async () => {
    const store = new Map([['t2', task('t2', 'revoked', 'no longer needed')]]);
    const { te, reads } = ends(store);
    const heard: TaskEnd[] = [];
    te.watch('t2', (e) => heard.push(e));
    await settled();
    expect(reads).toEqual(['t2']);
    expect(heard).toMatchObject([{ taskId: 't2', code: 'TASK_REVOKED', state: 'revoked', detail: 'no longer needed' }]);
    expect(te.watched).toBe(0);
  });

  it('tells each watcher once, even when the end is heard again', async () => {
    const store = new Map([['t3', task('t3', 'completed')]]);
    const { te } = ends(store);
    te.ended(task('t3', 'completed'), '');
    let n = 0;
    te.watch('t3', () => (n += 1));
    te.ended(task('t3', 'completed'), '');
    te.changed('t3');
    await settled();
    expect(n).toBe(1);
  });

  it('does not tell an active task, nor a suspended one (a suspension can be lifted), as ended', async () => {
    const store = new Map([
      ['a', task('a', 'active')],
      ['s', task('s', 'suspended', 'heartbeat lapsed')],
    ]);
    const { te } = ends(store);
    const heard: string[] = [];
    te.watch('a', (e) => heard.push(e.taskId));
    te.watch('s', (e) => heard.push(e.taskId));
    await settled();
    expect(heard).toEqual([]);
    expect(te.watched).toBe(2);
    // and the end that comes later is still heard
    te.ended(task('s', 'killed'), 'stop');
    expect(heard).toEqual(['s']);
  });

  it('tells nothing to a watch taken back before the store answered', async () => {
    const store = new Map([['t4', task('t4', 'killed')]]);
    const { te } = ends(store);
    let n = 0;
    const unwatch = te.watch('t4', () => (n += 1));
    unwatch();
    await settled();
    expect(n).toBe(0);
  });

  it('reports a store that cannot be read, and keeps the watch for what it hears later', async () => {
    const errors: unknown[] = [];
    const te = new TaskEnds(() => Promise.reject(new Error('store down')), (e) => errors.push(e));
    const heard: string[] = [];
    te.watch('t5', (e) => heard.push(e.code));
    await settled();
    expect(errors).toHaveLength(1);
    te.ended(task('t5', 'killed'), '');
    expect(heard).toEqual(['TASK_KILLED']);
  });
});

describe('TaskEnds.watch on a running server (SQLite)', () => {
  let h: Harness;
  let agent: string;
  beforeAll(async () => {
    h = await startHarness();
    agent = await h.registerAgent('watched-late');
  });
  afterAll(async () => h?.close());

  it('fires with TASK_KILLED for a watch registered after the kill', async () => {
    const t = await h.startTask(agent);
    expect((await h.op('POST', '/v1/kill', { task: t.id, reason: 'killed before the watch' })).statusCode).toBe(200);
    const heard = await new Promise<TaskEnd>((resolve, reject) => {
      h.runtime.taskEnds.watch(t.id, resolve);
      setTimeout(() => reject(new Error('the watch of a killed task never fired')), 5_000).unref();
    });
    expect(heard).toMatchObject({ taskId: t.id, code: 'TASK_KILLED', state: 'killed', detail: 'killed before the watch' });
  });

  it('fires with TASK_COMPLETED for a watch registered after the task completed', async () => {
    const t = await h.startTask(agent);
    const res = await h.inject({ method: 'POST', url: `/v1/tasks/${t.id}/complete`, headers: { authorization: `Bearer ${t.token}` }, payload: {} });
    expect(res.statusCode, res.body).toBe(200);
    const heard = await new Promise<TaskEnd>((resolve, reject) => {
      h.runtime.taskEnds.watch(t.id, resolve);
      setTimeout(() => reject(new Error('the watch of a completed task never fired')), 5_000).unref();
    });
    expect(heard).toMatchObject({ taskId: t.id, code: 'TASK_COMPLETED' });
  });
});
