/**
 * Task ends: turns what ends a task (a kill of its agent, of it or of an ancestor, an emergency
 * stop, a revocation, completion, expiry, suspension) into one event per watched task, with the
 * reason code, the moment it is durable: on this node from the state transition itself, from
 * other nodes through the change feed (PostgreSQL). What runs for a task (an MCP call in flight,
 * a server-sent event stream) watches its task here and stops when it hears.
 */
import { CachedTasks, TASK_STATE_REASON, type Staleness, type Task, type TaskReader, type TaskState, type TaskWriter } from '@mandate/core';

export interface TaskEnd {
  readonly taskId: string;
  readonly agentId: string;
  /** the reason code a call of this task is now denied with (TASK_KILLED, TASK_REVOKED…) */
  readonly code: string;
  /** the state the task is in now */
  readonly state: TaskState;
  /** the words given with the end (an operator's kill reason), bounded */
  readonly detail: string;
}

type Listener = (e: TaskEnd) => void;

export class TaskEnds {
  private readonly watchers = new Map<string, Set<Listener>>();
  private readonly read: (id: string) => Promise<Task | undefined>;
  private readonly onError: (e: unknown) => void;

  /** `read`: the task as the store has it now (uncached), for changes heard from other nodes */
  constructor(read: (id: string) => Promise<Task | undefined>, onError: (e: unknown) => void) {
    this.read = read;
    this.onError = onError;
  }

  /** Calls `onEnd` once when this task ends (at once if it has ended). Returns the unwatch. */
  watch(taskId: string, onEnd: Listener): () => void {
    const set = this.watchers.get(taskId) ?? new Set<Listener>();
    this.watchers.set(taskId, set);
    const once: Listener = (e) => {
      unwatch();
      onEnd(e);
    };
    const unwatch = () => {
      set.delete(once);
      if (set.size === 0 && this.watchers.get(taskId) === set) this.watchers.delete(taskId);
    };
    set.add(once);
    return unwatch;
  }

  /** tasks watched now */
  get watched(): number {
    return this.watchers.size;
  }

  /** A task moved to `task.state` on this node (durably). */
  ended(task: Task, detail: string): void {
    if (task.state === 'active') return;
    const listeners = this.watchers.get(task.id);
    if (!listeners) return;
    const e: TaskEnd = { taskId: task.id, agentId: task.agentId, code: TASK_STATE_REASON[task.state], state: task.state, detail: detail.slice(0, 500) };
    for (const l of [...listeners]) {
      try {
        l(e);
      } catch (err) {
        this.onError(err);
      }
    }
  }

  /** Another node changed this task (change feed): re-read it if anything here watches it. */
  changed(taskId: string): void {
    if (!this.watchers.has(taskId)) return;
    this.read(taskId).then(
      (t) => {
        if (t) this.ended(t, t.endReason ?? '');
      },
      (e: unknown) => this.onError(e),
    );
  }

  /** The change feed came back after a gap or loss: every watched task is re-read. */
  recheckAll(): void {
    for (const id of [...this.watchers.keys()]) this.changed(id);
  }
}

/** The cached task store whose transitions out of `active` are told to TaskEnds as they commit. */
export class EndingTasks extends CachedTasks {
  private readonly ends: TaskEnds;

  constructor(inner: TaskReader & TaskWriter, ends: TaskEnds, max?: number, staleness?: Staleness) {
    super(inner, max, staleness);
    this.ends = ends;
  }

  override async transitionTask(id: string, from: readonly TaskState[], to: TaskState, at: number, reason: string): Promise<{ changed: boolean; task: Task | undefined }> {
    const r = await super.transitionTask(id, from, to, at, reason);
    if (r.changed && r.task && to !== 'active') this.ends.ended(r.task, reason);
    return r;
  }
}
