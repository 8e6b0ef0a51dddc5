/**
 * Task ends: turns what ends a task (a kill of its agent, of it or of an ancestor, an emergency
 * stop, a revocation, completion, expiry, suspension) into one event per watched task, with the
 * reason code, the moment it is durable: on this node from the state transition itself, from
 * other nodes through the change feed (PostgreSQL). What runs for a task (an MCP call in flight,
 * a server-sent event stream) watches its task here and stops when it hears.
 */
import { CachedTasks, TASK_STATE_REASON, TERMINAL_TASK_STATES, type Staleness, type Task, type TaskReader, type TaskState, type TaskWriter } from '@mandate/core';

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

/** how many ends this node remembers, so that a watch that comes after one hears it without a store read (config cache.task_ends) */
const REMEMBERED_ENDS = 10_000;

export class TaskEnds {
  private readonly watchers = new Map<string, Set<Listener>>();
  /** ends (terminal states only: they never change back) heard here, oldest first */
  private readonly known = new Map<string, TaskEnd>();
  private readonly read: (id: string) => Promise<Task | undefined>;
  private readonly onError: (e: unknown) => void;
  private readonly remembered: number;

  /**
   * `read`: the task as the store has it now (uncached), for changes heard from other nodes;
   * `remembered`: the ends kept, the oldest forgotten first (a watch of a forgotten one reads the store)
   */
  constructor(read: (id: string) => Promise<Task | undefined>, onError: (e: unknown) => void, remembered = REMEMBERED_ENDS) {
    this.read = read;
    this.onError = onError;
    this.remembered = remembered;
  }

  /**
   * Calls `onEnd` once when this task ends. A task that has already ended (killed, revoked,
   * completed, expired) is told at once: on the next tick when this node heard the end, else
   * once the store has been read; the read comes after the watch is in place, so an end that
   * commits meanwhile is heard one way or the other (a watch registered a moment too late, after
   * a call's authorization or before a stream opens, must not wait forever). A suspension
   * already in place is not told (it can be lifted): the watcher reads the state it starts from.
   * Returns the unwatch.
   */
  watch(taskId: string, onEnd: Listener): () => void {
    const set = this.watchers.get(taskId) ?? new Set<Listener>();
    this.watchers.set(taskId, set);
    let told = false;
    const once: Listener = (e) => {
      if (told) return;
      told = true;
      unwatch();
      onEnd(e);
    };
    const unwatch = () => {
      set.delete(once);
      if (set.size === 0 && this.watchers.get(taskId) === set) this.watchers.delete(taskId);
    };
    set.add(once);
    const known = this.known.get(taskId);
    const tell = (e: TaskEnd) => {
      if (!set.has(once)) return;
      try {
        once(e);
      } catch (err) {
        this.onError(err);
      }
    };
    if (known) queueMicrotask(() => tell(known));
    else {
      this.read(taskId).then(
        (t) => {
          if (t && TERMINAL_TASK_STATES.has(t.state)) tell(this.remember(t, t.endReason ?? ''));
        },
        (e: unknown) => this.onError(e),
      );
    }
    return unwatch;
  }

  /** tasks watched now */
  get watched(): number {
    return this.watchers.size;
  }

  /** A task moved to `task.state` on this node (durably). */
  ended(task: Task, detail: string): void {
    if (task.state === 'active') return;
    const e = TERMINAL_TASK_STATES.has(task.state) ? this.remember(task, detail) : endOf(task, detail);
    const listeners = this.watchers.get(task.id);
    if (!listeners) return;
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

  /** Keeps a terminal end (the first heard wins: it never changes), at most `remembered` of them. */
  private remember(task: Task, detail: string): TaskEnd {
    const had = this.known.get(task.id);
    if (had) return had;
    const e = endOf(task, detail);
    this.known.set(task.id, e);
    if (this.known.size > this.remembered) {
      const oldest = this.known.keys().next();
      if (oldest.done !== true) this.known.delete(oldest.value);
    }
    return e;
  }
}

function endOf(task: Task, detail: string): TaskEnd {
  const state = task.state as Exclude<TaskState, 'active'>;
  return { taskId: task.id, agentId: task.agentId, code: TASK_STATE_REASON[state], state, detail: detail.slice(0, 500) };
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
