import type { Agent, AgentStatus, BudgetLimits, BudgetUsage, Task, TaskState } from '../model.ts';
import type { Ceiling } from '../mandate/schema.ts';
import type { AgentReader, AgentWriter, BudgetLedger, Clock, DecisionCommit, DecisionCommitResult, DecisionCommitter, RevocationStore, TaskReader, TaskWriter } from '../ports.ts';
import { sharedTask } from './shared-values.ts';

/**
 * How stale a cached entry may get before it is read again. On one node nothing else writes,
 * so entries never go stale; with several nodes, changes arrive as invalidations from the
 * store's change feed, and this bound caps the damage of one that never arrives.
 */
export interface Staleness {
  readonly clock: Clock;
  readonly maxAgeMs: number;
}

/**
 * A bounded map whose entries expire after a maximum age (when one is given). Emptied whole when
 * full: each cache here falls back to the store on a miss, so forgetting costs a read, never a
 * wrong answer. Without a maximum age a value is held as it is, with no record of its own (~40 B
 * less an entry); the time each was read is kept apart only when it can expire.
 */
class EntryCache<V> {
  private readonly values = new Map<string, V>();
  /** when each entry was read, for a cache whose entries expire */
  private readonly readAt: Map<string, number> | undefined;
  private readonly max: number;
  private readonly staleness: Staleness | undefined;

  constructor(max: number, staleness: Staleness | undefined) {
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError(`cache: max must be a positive integer, got ${max}`);
    this.max = max;
    this.staleness = staleness;
    this.readAt = staleness === undefined ? undefined : new Map();
  }

  get(id: string): V | undefined {
    const v = this.values.get(id);
    if (v === undefined) return undefined;
    if (this.staleness && this.readAt && this.staleness.clock.now() - (this.readAt.get(id) ?? Number.NEGATIVE_INFINITY) > this.staleness.maxAgeMs) {
      this.delete(id);
      return undefined;
    }
    return v;
  }

  set(id: string, value: V): void {
    if (this.values.size >= this.max && !this.values.has(id)) this.clear();
    this.values.set(id, value);
    if (this.staleness && this.readAt) this.readAt.set(id, this.staleness.clock.now());
  }

  delete(id: string): void {
    this.values.delete(id);
    this.readAt?.delete(id);
  }

  clear(): void {
    this.values.clear();
    this.readAt?.clear();
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
    if (!t) return undefined;
    const shared = sharedTask(t);
    this.cache.set(shared.id, shared);
    return shared;
  }

  listTasks(opts: Parameters<TaskReader['listTasks']>[0]): Promise<Task[]> {
    return this.inner.listTasks(opts);
  }

  listChildren(parentId: string): Promise<Task[]> {
    return this.inner.listChildren(parentId);
  }

  async createTask(task: Task): Promise<void> {
    await this.inner.createTask(task);
    this.cache.set(task.id, sharedTask(task));
  }

  async transitionTask(id: string, from: readonly TaskState[], to: TaskState, at: number, reason: string): Promise<{ changed: boolean; task: Task | undefined }> {
    this.cache.delete(id); // never serve a stale state while the write is in flight
    const r = await this.inner.transitionTask(id, from, to, at, reason);
    if (r.task) this.cache.set(r.task.id, sharedTask(r.task));
    return r;
  }

  async extendTask(id: string, expiresAt: number): Promise<Task | undefined> {
    this.cache.delete(id);
    const t = await this.inner.extendTask(id, expiresAt);
    if (t) this.cache.set(t.id, sharedTask(t));
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

/**
 * Revocation checks from memory, for a single node (nothing else writes the store): every jti
 * asked about is remembered as revoked (once in effect) or as not revoked, and every revocation
 * through this object forgets the jti first and again once the store has it. A read that was
 * in flight while any revocation happened is answered but not remembered, so a stale "not
 * revoked" can never be kept. Several nodes must not use it (the store is read on every call).
 */
export class CachedRevocations implements RevocationStore {
  private readonly inner: RevocationStore;
  /** jti → revoked (in effect when read), or not revoked when last read */
  private readonly known: EntryCache<boolean>;
  /** revocations started so far: a read that saw this change keeps nothing */
  private writes = 0;

  constructor(inner: RevocationStore, max = 100_000) {
    this.inner = inner;
    this.known = new EntryCache(max, undefined);
  }

  async revokeToken(jti: string, taskId: string, expiresAt: number, reason: string, at: number): Promise<void> {
    this.writes += 1;
    this.known.delete(jti);
    try {
      await this.inner.revokeToken(jti, taskId, expiresAt, reason, at);
    } finally {
      this.writes += 1;
      this.known.delete(jti);
    }
  }

  async useOnce(key: string, taskId: string, expiresAt: number, reason: string, at: number): Promise<boolean> {
    // straight to the store, whose insert-if-absent decides; what was read of the key is stale after
    this.writes += 1;
    this.known.delete(key);
    try {
      return await this.inner.useOnce(key, taskId, expiresAt, reason, at);
    } finally {
      this.writes += 1;
      this.known.delete(key);
    }
  }

  async isTokenRevoked(jti: string, now?: number): Promise<boolean> {
    const k = this.known.get(jti);
    if (k !== undefined) return k;
    const writes = this.writes;
    // ever revoked (without a time), and revoked by `now`: the two reads tell when it takes effect
    const ever = await this.inner.isTokenRevoked(jti);
    const effective = ever && now !== undefined ? await this.inner.isTokenRevoked(jti, now) : ever;
    if (this.writes === writes && (!ever || effective)) {
      // a scheduled revocation (its time still ahead) is not remembered: it is read until in effect,
      // and one in effect stays in effect (even should the clock step back)
      this.known.set(jti, ever);
    }
    return effective;
  }
}

/**
 * Budget usage for the policy context from memory, for a single node. Counters only grow (a
 * spend or a carve), so the highest value seen is never ahead of the store: reads fill it,
 * and the usage each decision commit reports (exact, inside its transaction) raises it.
 * Enforcement never reads this: it happens in the commit's own transaction.
 */
export class CachedBudgets implements BudgetLedger {
  private readonly inner: BudgetLedger;
  private readonly totals: EntryCache<number>;
  private readonly perTool: EntryCache<number>;

  constructor(inner: BudgetLedger, max = 100_000) {
    this.inner = inner;
    this.totals = new EntryCache(max, undefined);
    this.perTool = new EntryCache(max, undefined);
  }

  async usage(taskId: string, tool: string): Promise<BudgetUsage> {
    const calls = this.totals.get(taskId);
    const toolCalls = this.perTool.get(toolKey(taskId, tool));
    if (calls !== undefined && toolCalls !== undefined) return { calls, toolCalls };
    const read = await this.inner.usage(taskId, tool);
    this.observe(taskId, tool, read);
    return { calls: this.totals.get(taskId) ?? read.calls, toolCalls: this.perTool.get(toolKey(taskId, tool)) ?? read.toolCalls };
  }

  async consume(taskId: string, tool: string, limits: BudgetLimits): Promise<{ ok: boolean; usage: BudgetUsage; exhausted?: 'calls' | 'tool' }> {
    const r = await this.inner.consume(taskId, tool, limits);
    this.observe(taskId, tool, r.usage);
    return r;
  }

  async carve(taskId: string, calls: number, limit: number): Promise<boolean> {
    const ok = await this.inner.carve(taskId, calls, limit);
    // the new total is not returned: read it again when next asked
    if (ok) this.totals.delete(taskId);
    return ok;
  }

  /** the committer whose budget results keep this cache current (decisions commit through it) */
  committing(inner: DecisionCommitter): DecisionCommitter {
    return {
      commitDecision: async (entry: DecisionCommit): Promise<DecisionCommitResult> => {
        const r = await inner.commitDecision(entry);
        if (entry.budget && r.budget) this.observe(entry.budget.taskId, entry.budget.tool, r.budget.usage);
        return r;
      },
    };
  }

  private observe(taskId: string, tool: string, usage: BudgetUsage): void {
    this.totals.set(taskId, Math.max(this.totals.get(taskId) ?? 0, usage.calls));
    const key = toolKey(taskId, tool);
    this.perTool.set(key, Math.max(this.perTool.get(key) ?? 0, usage.toolCalls));
  }
}

/**
 * A task's counter for one tool. Joined, not concatenated: a concatenation is a tree of its parts
 * that V8 keeps as the Map's key (the tool's name as the request spelled it included), where a
 * join is one flat string.
 */
function toolKey(taskId: string, tool: string): string {
  return [taskId, tool].join('\u0000');
}
