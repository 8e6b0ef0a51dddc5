/**
 * What the learner reads: tasks and the calls they made, from the audit log or from recorded
 * traces. Both readers are pure: they take parsed records, never a file or a store.
 */
import type { AuditRecord } from '../audit/chain.ts';
import { isJsonObject, type JsonObject } from '../json.ts';

export interface ObservedCall {
  readonly tool: string;
  readonly args: JsonObject;
  /** milliseconds since the epoch, when known */
  readonly ts?: number | undefined;
}

export interface ObservedTask {
  readonly agent: string;
  readonly task: string;
  readonly purpose: string;
  readonly environment?: string | undefined;
  /** the ttl the task declared, in milliseconds */
  readonly ttlMs?: number | undefined;
  /** the data classes the task declared (used when no tool catalogue is given) */
  readonly dataClasses?: readonly string[] | undefined;
  readonly calls: readonly ObservedCall[];
}

export interface AuditWindow {
  /** only decisions at or after this time (ms since the epoch) */
  readonly since?: number | undefined;
  /** only decisions before this time */
  readonly until?: number | undefined;
  /** only this agent's tasks */
  readonly agent?: string | undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * Folds audit records into tasks: `task.started` gives the agent, purpose and declared mandate;
 * each `decision` whose effect is allow, inside the window, is a call that was used. Denied and
 * held calls are not learnt from: they are what the current rules refused. Tasks with no allowed
 * call in the window are left out. Feed records in log order (by seq); `fold` may be called page
 * by page.
 */
export class AuditObserver {
  private readonly tasks = new Map<string, { agent: string; purpose: string; environment?: string; ttlMs?: number; dataClasses?: string[]; calls: ObservedCall[] }>();

  private readonly window: AuditWindow;

  constructor(window: AuditWindow = {}) {
    this.window = window;
  }

  fold(records: readonly AuditRecord[]): void {
    for (const r of records) {
      if (r.taskId === undefined || r.agentId === undefined) continue;
      if (this.window.agent !== undefined && r.agentId !== this.window.agent) continue;
      if (r.kind === 'task.started') {
        const m = isJsonObject(r.data['mandate']) ? r.data['mandate'] : {};
        const dc = m['data_classes'];
        const t = this.taskOf(r.taskId, r.agentId);
        t.purpose = str(r.data['purpose']) ?? str(m['purpose']) ?? '';
        const env = str(m['environment']);
        if (env !== undefined) t.environment = env;
        if (typeof m['ttl'] === 'number') t.ttlMs = m['ttl'];
        if (Array.isArray(dc)) t.dataClasses = dc.filter((x): x is string => typeof x === 'string');
        continue;
      }
      if (r.kind !== 'decision' || r.data['effect'] !== 'allow') continue;
      if (this.window.since !== undefined && r.ts < this.window.since) continue;
      if (this.window.until !== undefined && r.ts >= this.window.until) continue;
      const tool = str(r.data['tool']);
      const args = r.data['args'];
      if (tool === undefined) continue;
      this.taskOf(r.taskId, r.agentId).calls.push({ tool, args: isJsonObject(args) ? args : {}, ts: r.ts });
    }
  }

  private taskOf(id: string, agent: string) {
    let t = this.tasks.get(id);
    if (t === undefined) {
      t = { agent, purpose: '', calls: [] };
      this.tasks.set(id, t);
    }
    return t;
  }

  result(): ObservedTask[] {
    const out: ObservedTask[] = [];
    for (const [task, t] of this.tasks) if (t.calls.length > 0) out.push({ task, ...t });
    return out;
  }
}

/** A recorded trace (the replay format) as one task of `agent` (default: the trace's suite). */
export function traceTask(t: { readonly id: string; readonly suite: string; readonly purpose: string; readonly steps: readonly { readonly tool: string; readonly args: JsonObject }[] }, agent?: string): ObservedTask {
  return { agent: agent ?? t.suite, task: t.id, purpose: t.purpose, calls: t.steps.map((s) => ({ tool: s.tool, args: s.args })) };
}
