import { describe, expect, it } from 'vitest';
import { CachedTasks, canonicalJson, mandateHash, parseMandate, type Mandate, type Task, type TaskReader, type TaskWriter, type TaskState } from '../src/index.ts';
import { sharedMandate, sharedTask } from '../src/state/shared-values.ts';
import { hasher } from './helpers.ts';

const mandateOf = (purpose: string): Mandate =>
  parseMandate({ purpose, environment: 'prod', tools: [{ name: 'helpdesk.search_tickets' }, { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } }], data_classes: ['internal'], budgets: { calls: 10 } });

function task(id: string, mandate: Mandate, hash = mandateHash(mandate, hasher)): Task {
  return { id, agentId: 'spiffe://t.local/agents/a', mandate, mandateHash: hash, state: 'active', txn: `txn_${id}`, parentId: undefined, depth: 0, createdAt: 0, expiresAt: 60_000, maxExpiresAt: 120_000, endedAt: undefined, endReason: undefined };
}

/** a store that returns a fresh copy of each row on every read, as a database does */
class RowStore implements TaskReader, TaskWriter {
  readonly rows = new Map<string, string>();
  getTask(id: string): Promise<Task | undefined> {
    const r = this.rows.get(id);
    return Promise.resolve(r === undefined ? undefined : (JSON.parse(r, (_k, v: unknown) => (v === null ? undefined : v)) as Task));
  }
  listTasks(): Promise<Task[]> {
    return Promise.resolve([]);
  }
  listChildren(): Promise<Task[]> {
    return Promise.resolve([]);
  }
  createTask(t: Task): Promise<void> {
    this.rows.set(t.id, JSON.stringify(t, (_k, v: unknown) => (v === undefined ? null : v)));
    return Promise.resolve();
  }
  async transitionTask(id: string, _from: readonly TaskState[], to: TaskState): Promise<{ changed: boolean; task: Task | undefined }> {
    const t = await this.getTask(id);
    if (!t) return { changed: false, task: undefined };
    await this.createTask({ ...t, state: to });
    return { changed: true, task: await this.getTask(id) };
  }
  async extendTask(id: string, expiresAt: number): Promise<Task | undefined> {
    const t = await this.getTask(id);
    if (t) await this.createTask({ ...t, expiresAt });
    return this.getTask(id);
  }
}

describe('shared values of cached tasks', () => {
  it('tasks read with equal mandates hold one frozen mandate, with the same canonical text', async () => {
    const store = new RowStore();
    const m = mandateOf('answer support tickets');
    await store.createTask(task('t1', m));
    await store.createTask(task('t2', mandateOf('answer support tickets')));
    const cache = new CachedTasks(store, 100);
    const a = await cache.getTask('t1');
    const b = await cache.getTask('t2');
    expect(a?.mandate).toBe(b?.mandate);
    expect(Object.isFrozen(a?.mandate)).toBe(true);
    expect(Object.isFrozen(a?.mandate.tools[1])).toBe(true);
    expect(canonicalJson(a?.mandate)).toBe(canonicalJson(m));
    // what the caller passed is not changed
    expect(Object.isFrozen(m)).toBe(false);
    // every field but the shared ones as the store gave it
    expect(a).toEqual(await store.getTask('t1'));
  });

  it('a task whose mandate differs keeps its own, even under another mandate\'s hash', async () => {
    const store = new RowStore();
    const granted = mandateOf('answer support tickets');
    const other: Mandate = { ...mandateOf('answer support tickets'), tools: [{ name: 'mail.send' }] };
    await store.createTask(task('t1', granted));
    // a record whose hash names the first mandate but whose mandate is another (corrupt or forged)
    await store.createTask(task('t2', other, mandateHash(granted, hasher)));
    const cache = new CachedTasks(store, 100);
    const a = await cache.getTask('t1');
    const b = await cache.getTask('t2');
    expect(b?.mandate.tools.map((t) => t.name)).toEqual(['mail.send']);
    expect(a?.mandate.tools.map((t) => t.name)).toEqual(['helpdesk.search_tickets', 'fs.read_file']);
    expect(b?.mandate).not.toBe(a?.mandate);
  });

  it('created, renewed and ended tasks are held shared, with their new fields', async () => {
    const store = new RowStore();
    const cache = new CachedTasks(store, 100);
    await cache.createTask(task('t1', mandateOf('triage')));
    await cache.createTask(task('t2', mandateOf('triage')));
    expect((await cache.getTask('t1'))?.mandate).toBe((await cache.getTask('t2'))?.mandate);
    expect((await cache.extendTask('t1', 90_000))?.expiresAt).toBe(90_000);
    expect((await cache.getTask('t1'))?.expiresAt).toBe(90_000);
    await cache.transitionTask('t2', ['active'], 'completed', 1, 'done');
    const ended = await cache.getTask('t2');
    expect(ended?.state).toBe('completed');
    expect(ended?.mandate).toBe((await cache.getTask('t1'))?.mandate);
  });

  it('stays correct past its bound: every mandate read back is the one given', () => {
    for (let i = 0; i < 2500; i++) {
      const m = mandateOf(`purpose ${i % 1500}`);
      const held = sharedMandate(mandateHash(m, hasher), m);
      expect(canonicalJson(held)).toBe(canonicalJson(m));
    }
  });

  it('a task already holding the shared values is kept as it is', () => {
    const t = sharedTask(task('t9', mandateOf('kept')));
    expect(sharedTask(t)).toBe(t);
  });
});
