/**
 * The task event streams open on this node, bounded per task and per agent. At a cap the oldest
 * stream of that task (or agent) gives way, never the new one: a client reconnecting after a
 * network break is not locked out by its own old stream, which the server may not yet know is
 * dead. A task or agent can only crowd out its own streams.
 */
export interface TaskStream {
  readonly taskId: string;
  readonly agentId: string;
  /** told to end because a newer stream took its place */
  replaced(why: string): void;
}

export class TaskStreams {
  private readonly byTask = new Map<string, TaskStream[]>();
  private readonly byAgent = new Map<string, TaskStream[]>();
  private readonly perTask: number;
  private readonly perAgent: number;

  constructor(limits: { readonly perTask: number; readonly perAgent: number }) {
    this.perTask = limits.perTask;
    this.perAgent = limits.perAgent;
  }

  /** streams open now */
  get size(): number {
    let n = 0;
    for (const list of this.byTask.values()) n += list.length;
    return n;
  }

  /** Counts a new stream in, ending the oldest ones it puts over a cap. */
  add(s: TaskStream): void {
    for (const [list, cap, what] of [
      [this.byTask.get(s.taskId), this.perTask, 'task'],
      [this.byAgent.get(s.agentId), this.perAgent, 'agent'],
    ] as const) {
      // the oldest first (lists keep opening order); each one removes itself as it ends
      for (const old of (list ?? []).slice(0, Math.max(0, (list?.length ?? 0) - cap + 1))) {
        this.remove(old);
        old.replaced(`the ${what} reached its cap of open event streams (tasks.events.max_streams_per_${what})`);
      }
    }
    push(this.byTask, s.taskId, s);
    push(this.byAgent, s.agentId, s);
  }

  remove(s: TaskStream): void {
    drop(this.byTask, s.taskId, s);
    drop(this.byAgent, s.agentId, s);
  }
}

function push(m: Map<string, TaskStream[]>, key: string, s: TaskStream): void {
  const list = m.get(key) ?? [];
  m.set(key, list);
  list.push(s);
}

function drop(m: Map<string, TaskStream[]>, key: string, s: TaskStream): void {
  const list = m.get(key);
  if (!list) return;
  const i = list.indexOf(s);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) m.delete(key);
}
