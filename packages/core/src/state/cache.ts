import type { Agent, AgentStatus, Task, TaskState } from '../model.ts';
import type { Ceiling } from '../mandate/schema.ts';
import type { AgentReader, AgentWriter, Clock, TaskReader, TaskWriter } from '../ports.ts';

/**
 * How stale a cached entry may get before it is read again. On one node nothing else writes,
 * so entries never go stale; with several nodes, changes arrive as invalidations from the
 * store's change feed, and this bound caps the damage of one that never arrives.
 */
export interface Staleness {
  readonly clock: Clock;
  readonly maxAgeMs: number;
}

/** A bounded map whose entries expire after a maximum age (when one is given). */
class EntryCache<V> {
  private readonly byId = new Map<string, { value: V; at: number }>();
  private readonly max: number;
  private readonly staleness: Staleness | undefined;

  constructor(max: number, staleness: Staleness | undefined) {
    this.max = max;
    this.staleness = staleness;
  }

  get(id: string): V | undefined {
    const e = this.byId.get(id);
    if (e === undefined) return undefined;
    if (this.staleness && this.staleness.clock.now() - e.at > this.staleness.maxAgeMs) {
      this.byId.delete(id);
      return undefined;
    }
    return e.value;
  }

  set(id: string, value: V): void {
    if (this.byId.size >= this.max) this.byId.clear();
    this.byId.set(id, { value, at: this.staleness?.clock.now() ?? 0 });
  }

  delete(id: string): void {
    this.byId.delete(id);
  }

  clear(): void {
    this.byId.clear();
  }
}

/**
 * Write-through caches for the hot path: the decision reads tasks and agents from memory and
 * every write through this object updates memory after the store accepted it. Correct for a
 * single node; several nodes invalidate entries from store events (`invalidate*`, `clear`).
 */
export class CachedTasks implements TaskReader, TaskWriter {
  private readonly cache: EntryCache<Task>;
  private readonly inner: TaskReader & TaskWriter;

  constructor(inner: TaskReader & TaskWriter, max = 100_000, staleness?: Staleness) {
    this.inner = inner;
    this.cache = new EntryCache(max, staleness);
  }

  async getTask(id: string): Promise<Task | undefined> {
    const hit = this.cache.get(id);
    if (hit) return hit;
    const t = await this.inner.getTask(id);
    if (t) this.cache.set(t.id, t);
    return t;
  }

  listTasks(opts: Parameters<TaskReader['listTasks']>[0]): Promise<Task[]> {
    return this.inner.listTasks(opts);
  }

  listChildren(parentId: string): Promise<Task[]> {
    return this.inner.listChildren(parentId);
  }

  async createTask(task: Task): Promise<void> {
    await this.inner.createTask(task);
    this.cache.set(task.id, task);
  }

  async transitionTask(id: string, from: readonly TaskState[], to: TaskState, at: number, reason: string): Promise<{ changed: boolean; task: Task | undefined }> {
    this.cache.delete(id); // never serve a stale state while the write is in flight
    const r = await this.inner.transitionTask(id, from, to, at, reason);
    if (r.task) this.cache.set(r.task.id, r.task);
    return r;
  }

  async extendTask(id: string, expiresAt: number): Promise<Task | undefined> {
    this.cache.delete(id);
    const t = await this.inner.extendTask(id, expiresAt);
    if (t) this.cache.set(t.id, t);
    return t;
  }

  invalidateTask(id: string): void {
    this.cache.delete(id);
  }

  clear(): void {
    this.cache.clear();
  }
}

export class CachedAgents implements AgentReader, AgentWriter {
  private readonly cache: EntryCache<Agent>;
  private readonly inner: AgentReader & AgentWriter;

  constructor(inner: AgentReader & AgentWriter, max = 100_000, staleness?: Staleness) {
    this.inner = inner;
    this.cache = new EntryCache(max, staleness);
  }

  async getAgent(id: string): Promise<Agent | undefined> {
    const hit = this.cache.get(id);
    if (hit) return hit;
    const a = await this.inner.getAgent(id);
    if (a) this.cache.set(id, a);
    return a;
  }

  listAgents(opts: Parameters<AgentReader['listAgents']>[0]): Promise<Agent[]> {
    return this.inner.listAgents(opts);
  }

  async createAgent(agent: Agent): Promise<void> {
    await this.inner.createAgent(agent);
    this.cache.set(agent.id, agent);
  }

  async updateAgent(id: string, patch: { status?: AgentStatus; owner?: string; type?: string; ceiling?: Ceiling }, at: number): Promise<Agent> {
    this.cache.delete(id);
    const a = await this.inner.updateAgent(id, patch, at);
    this.cache.set(id, a);
    return a;
  }

  invalidateAgent(id: string): void {
    this.cache.delete(id);
  }

  clear(): void {
    this.cache.clear();
  }
}
