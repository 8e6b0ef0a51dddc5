import type { Agent, AgentStatus, Task, TaskState } from '../model.ts';
import type { Ceiling } from '../mandate/schema.ts';
import type { AgentReader, AgentWriter, TaskReader, TaskWriter } from '../ports.ts';

/**
 * Write-through caches for the hot path: the decision reads tasks and agents from memory and
 * every write through this object updates memory after the store accepted it. Correct for a
 * single node; several nodes invalidate entries from store events (`invalidate*`).
 */
export class CachedTasks implements TaskReader, TaskWriter {
  private readonly byId = new Map<string, Task>();
  private readonly inner: TaskReader & TaskWriter;
  private readonly max: number;

  constructor(inner: TaskReader & TaskWriter, max = 100_000) {
    this.inner = inner;
    this.max = max;
  }

  async getTask(id: string): Promise<Task | undefined> {
    const hit = this.byId.get(id);
    if (hit) return hit;
    const t = await this.inner.getTask(id);
    if (t) this.remember(t);
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
    this.remember(task);
  }

  async transitionTask(id: string, from: readonly TaskState[], to: TaskState, at: number, reason: string): Promise<{ changed: boolean; task: Task | undefined }> {
    this.byId.delete(id); // never serve a stale state while the write is in flight
    const r = await this.inner.transitionTask(id, from, to, at, reason);
    if (r.task) this.remember(r.task);
    return r;
  }

  async extendTask(id: string, expiresAt: number): Promise<Task | undefined> {
    this.byId.delete(id);
    const t = await this.inner.extendTask(id, expiresAt);
    if (t) this.remember(t);
    return t;
  }

  invalidateTask(id: string): void {
    this.byId.delete(id);
  }

  private remember(t: Task): void {
    if (this.byId.size >= this.max) this.byId.clear();
    this.byId.set(t.id, t);
  }
}

export class CachedAgents implements AgentReader, AgentWriter {
  private readonly byId = new Map<string, Agent>();
  private readonly inner: AgentReader & AgentWriter;

  constructor(inner: AgentReader & AgentWriter) {
    this.inner = inner;
  }

  async getAgent(id: string): Promise<Agent | undefined> {
    const hit = this.byId.get(id);
    if (hit) return hit;
    const a = await this.inner.getAgent(id);
    if (a) this.byId.set(id, a);
    return a;
  }

  listAgents(opts: Parameters<AgentReader['listAgents']>[0]): Promise<Agent[]> {
    return this.inner.listAgents(opts);
  }

  async createAgent(agent: Agent): Promise<void> {
    await this.inner.createAgent(agent);
    this.byId.set(agent.id, agent);
  }

  async updateAgent(id: string, patch: { status?: AgentStatus; owner?: string; type?: string; ceiling?: Ceiling }, at: number): Promise<Agent> {
    this.byId.delete(id);
    const a = await this.inner.updateAgent(id, patch, at);
    this.byId.set(id, a);
    return a;
  }

  invalidateAgent(id: string): void {
    this.byId.delete(id);
  }
}
