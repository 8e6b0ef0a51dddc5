/**
 * Lifting a task's behavioural containment: an operator's audited answer to a false positive.
 *
 * A lift removes the restrictions signals put on a task — `step_up`, `narrow` and `suspend` — and
 * resumes the task when its suspension was containment's own. It never lifts anything else: a
 * kill (the `kill` restriction stays, the agent stays disabled, a killed task stays killed), a
 * policy deny, a budget, or a suspension by supervision. It is recorded before it takes effect
 * (`containment.lifted`, naming the operator, the reason and every restriction lifted), and it
 * removes exactly the restrictions it recorded: one a signal adds meanwhile stays. Later signals
 * restrict the task again as the containment rules say.
 */
import type { AuditDraft } from '../audit/chain.ts';
import { MandateError } from '../errors.ts';
import type { JsonObject } from '../json.ts';
import { TERMINAL_TASK_STATES, type Task } from '../model.ts';
import type { AuditAppender, AuditReader, Clock, TaskReader, TaskWriter } from '../ports.ts';
import type { ContainmentStore } from './monitor.ts';
import type { Restriction } from './types.ts';

/** The operator id containment acts as (its suspensions and kills are audited under it). */
export const CONTAINMENT_OPERATOR = 'mandate:behaviour';

/** What a lift may remove: behavioural restrictions only, never a kill. */
export const LIFTABLE_ACTIONS = ['step_up', 'narrow', 'suspend'] as const;
export type LiftableAction = (typeof LIFTABLE_ACTIONS)[number];

/** A store capability beside ContainmentStore: removing restrictions, for an operator's lift only. */
export interface ContainmentLifts {
  /**
   * Removes exactly these restrictions of the task, each matched by action, tool and creation
   * time (a restriction added again since is another one, and stays); returns those it removed.
   * With several nodes, every node drops its cached containment of the task.
   */
  liftRestrictions(taskId: string, rows: readonly Pick<Restriction, 'action' | 'tool' | 'createdAt'>[]): Promise<Restriction[]>;
}

export interface ContainmentLifterDeps {
  readonly clock: Clock;
  readonly store: ContainmentStore & ContainmentLifts;
  readonly tasks: TaskReader & TaskWriter;
  readonly audit: AuditAppender & Pick<AuditReader, 'readByTask'>;
  /** drops this node's cached containment of the task (other nodes hear it from the store) */
  readonly invalidate?: ((taskId: string) => void) | undefined;
  /** re-checks an agent's live tasks against what admits a task now (supervision.ts); suspends misfits */
  readonly reevaluate?: ((agentId: string) => Promise<unknown>) | undefined;
}

export interface LiftResult {
  /** the task after the lift */
  readonly task: Task;
  readonly lifted: readonly Restriction[];
  /** whether the task, suspended by containment, was resumed */
  readonly resumed: boolean;
  /** restrictions that stay (a kill) */
  readonly kept: readonly Restriction[];
  readonly auditSeq: number | undefined;
}

/** Audit records read to find who suspended a task (the newest suspension wins). */
const SUSPENSION_SCAN = 10_000;

export class ContainmentLifter {
  private readonly d: ContainmentLifterDeps;

  constructor(deps: ContainmentLifterDeps) {
    this.d = deps;
  }

  /**
   * Lifts the task's behavioural restrictions. NOT_FOUND for an unknown task; CONFLICT for a task
   * that has ended (a kill is never lifted) or that has nothing to lift.
   */
  async lift(taskId: string, operatorId: string, reason: string): Promise<LiftResult> {
    const task = await this.d.tasks.getTask(taskId);
    if (!task) throw new MandateError('NOT_FOUND', 'task not found');
    if (TERMINAL_TASK_STATES.has(task.state)) throw new MandateError('CONFLICT', `task is ${task.state}: an ended task has nothing to lift, and a kill is never lifted`);
    const rows = await this.d.store.listRestrictions(taskId);
    const lifting = rows.filter((r) => (LIFTABLE_ACTIONS as readonly string[]).includes(r.action));
    const kept = rows.filter((r) => !lifting.includes(r));
    const resumes = task.state === 'suspended' && (await this.suspendedByContainment(taskId));
    if (lifting.length === 0 && !resumes) throw new MandateError('CONFLICT', 'the task has no behavioural restriction to lift');

    const now = this.d.clock.now();
    // audit before act: the record names exactly what is lifted
    const committed = await this.d.audit.append([
      draft('containment.lifted', task, now, {
        by: operatorId,
        reason,
        lifted: lifting.map((r) => ({ action: r.action, tool: r.tool, detector: r.detector, call_id: r.callId, reason: r.reason, created_at: r.createdAt })),
        resumes_task: resumes,
        kept: kept.map((r) => ({ action: r.action, tool: r.tool })),
      }),
    ]);
    const lifted = lifting.length === 0 ? [] : await this.d.store.liftRestrictions(taskId, lifting);
    this.d.invalidate?.(taskId);
    let resumed = false;
    if (resumes) {
      const t = await this.d.tasks.transitionTask(taskId, ['suspended'], 'active', now, reason);
      resumed = t.changed;
      if (t.changed && t.task) {
        await this.d.audit.append([draft('task.resumed', t.task, now, { by: { operator: operatorId }, reason, after: 'containment.lifted' })]);
        // what admits a task may have changed while it was suspended: re-checked now, not trusted
        await this.d.reevaluate?.(task.agentId);
      }
    }
    const after = (await this.d.tasks.getTask(taskId)) ?? task;
    return { task: after, lifted, resumed, kept, auditSeq: committed[0]?.seq };
  }

  /** whether the task's newest suspension was containment's (supervision's is not lifted) */
  private async suspendedByContainment(taskId: string): Promise<boolean> {
    const records = await this.d.audit.readByTask(taskId, SUSPENSION_SCAN);
    // a log too long to read whole may hide a later suspension: in doubt, the task stays suspended
    if (records.length >= SUSPENSION_SCAN) return false;
    const last = records.filter((r) => r.kind === 'task.suspended' && r.taskId === taskId).at(-1);
    const by = last?.data['by'];
    return typeof by === 'object' && by !== null && !Array.isArray(by) && (by as JsonObject)['operator'] === CONTAINMENT_OPERATOR;
  }
}

function draft(kind: AuditDraft['kind'], task: Task, ts: number, data: JsonObject): AuditDraft {
  return { kind, ts, taskId: task.id, agentId: task.agentId, txn: task.txn, data };
}
