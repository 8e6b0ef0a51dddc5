import type { AuditDraft } from './audit/chain.ts';
import { MandateError } from './errors.ts';
import type { JsonObject } from './json.ts';
import type { Agent, Approval, OperatorKey, Task } from './model.ts';
import type { AgentReader, ApprovalStore, AuditAppender, Clock, IdGenerator, TaskReader } from './ports.ts';

export interface ApprovalLimits {
  /** how long a request waits for a human, and how long an approval stays usable */
  readonly ttlMs: number;
  /** approval fatigue: open requests one task may have at once */
  readonly maxPendingPerTask: number;
  /** refuse an approval from an operator whose key name is the agent's owner */
  readonly forbidOwnerApproval: boolean;
}

export interface ApprovalServiceDeps {
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly store: ApprovalStore;
  readonly tasks: TaskReader;
  readonly agents: AgentReader;
  readonly audit: AuditAppender;
  readonly limits: ApprovalLimits;
  /** told of every new request (webhook); must not throw or block */
  readonly notify?: ((approval: Approval) => void) | undefined;
}

/** What a held call's binding resolves to. */
export type ApprovalResolution =
  | { readonly kind: 'consumed'; readonly approval: Approval }
  | { readonly kind: 'held'; readonly approval: Approval }
  | { readonly kind: 'denied'; readonly approval: Approval }
  | { readonly kind: 'limit' };

export interface StepUpCall {
  readonly task: Task;
  readonly tool: string;
  readonly argsHash: string;
  readonly resource: string | undefined;
  readonly callId: string;
  /** redacted, for the approver */
  readonly args: JsonObject;
  readonly policyIds: readonly string[];
}

/** Whether an approval answers every one of these reasons (it may name more). */
export function answers(a: Pick<Approval, 'policyIds'>, reasons: readonly string[]): boolean {
  return reasons.every((r) => a.policyIds.includes(r));
}

/**
 * Step-up approvals: bound to one task, one tool and the canonical hash of the arguments;
 * approved by an operator, never by an agent; usable once; expiring. A second use, other
 * arguments, another task or an expired approval never allow: they need a new approval.
 */
export class ApprovalService {
  private readonly d: ApprovalServiceDeps;

  constructor(deps: ApprovalServiceDeps) {
    this.d = deps;
  }

  /**
   * Called by the decision for a call that needs a step-up. An approval answers the reasons it
   * was asked for (`policyIds`: the @step_up policies, `mandate.approvals`, or
   * `behaviour.containment`), not the call as such: it is spent only by a call whose reasons it
   * names, all of them. A call that needs a reason the open request or approval does not name
   * supersedes it (cancelled, audited) with a new request naming both, for a human to see.
   */
  async resolve(call: StepUpCall): Promise<ApprovalResolution> {
    const now = this.d.clock.now();
    const found = await this.d.store.findApproval(call.task.id, call.tool, call.argsHash, now);
    let reasons = [...call.policyIds];
    if (found !== undefined && found.state !== 'denied' && !answers(found, call.policyIds)) {
      if (found.state === 'pending' || found.state === 'approved') {
        reasons = [...new Set([...found.policyIds, ...call.policyIds])];
        const { changed, approval } = await this.d.store.transitionApproval(found.id, ['pending', 'approved'], 'cancelled', { at: now, reason: 'superseded: the call needs a reason this approval does not answer' });
        if (changed && approval) {
          await this.d.audit.append([this.draft('approval.cancelled', approval, now, { reason: 'superseded', needs: [...call.policyIds], superseded_by_call: call.callId })]);
        }
      }
      return this.request(call, reasons, now);
    }
    if (found?.state === 'approved') {
      // single use rests on this compare-and-set: of two concurrent retries, one wins
      const { changed, approval } = await this.d.store.transitionApproval(found.id, ['approved'], 'used', { at: now, callId: call.callId });
      if (changed && approval) {
        await this.d.audit.append([this.draft('approval.used', approval, now, { call_id: call.callId })]);
        return { kind: 'consumed', approval };
      }
    } else if (found?.state === 'pending') {
      return { kind: 'held', approval: found };
    } else if (found?.state === 'denied') {
      return { kind: 'denied', approval: found };
    }
    return this.request(call, reasons, now);
  }

  /** Opens a request for this call, naming `reasons` (bounded per task). */
  private async request(call: StepUpCall, reasons: readonly string[], now: number): Promise<ApprovalResolution> {
    if ((await this.d.store.countPending(call.task.id, now)) >= this.d.limits.maxPendingPerTask) return { kind: 'limit' };
    const approval: Approval = {
      id: this.d.ids.next('apr'),
      taskId: call.task.id,
      agentId: call.task.agentId,
      tool: call.tool,
      argsHash: call.argsHash,
      resource: call.resource,
      callId: call.callId,
      state: 'pending',
      policyIds: [...reasons],
      args: call.args,
      createdAt: now,
      expiresAt: now + this.d.limits.ttlMs,
      decidedAt: undefined,
      decidedBy: undefined,
      reason: undefined,
      usedAt: undefined,
      usedCallId: undefined,
    };
    await this.d.store.createApproval(approval);
    await this.d.audit.append([this.draft('approval.requested', approval, now, { tool: approval.tool, args_hash: approval.argsHash, policy_ids: [...approval.policyIds], expires_at: approval.expiresAt })]);
    this.d.notify?.(approval);
    return { kind: 'held', approval };
  }

  /** An operator approves or denies a pending request. */
  async decide(id: string, operator: OperatorKey, verdict: 'approve' | 'deny', reason: string): Promise<Approval> {
    const now = this.d.clock.now();
    const a = await this.d.store.getApproval(id);
    if (!a) throw new MandateError('NOT_FOUND', 'approval not found');
    if (a.state !== 'pending') throw new MandateError('CONFLICT', `approval is ${a.state}`);
    if (now >= a.expiresAt) {
      await this.expireOne(a, now);
      throw new MandateError('CONFLICT', 'approval expired');
    }
    const agent: Agent | undefined = await this.d.agents.getAgent(a.agentId);
    if (this.d.limits.forbidOwnerApproval && agent && agent.owner === operator.name) {
      throw new MandateError('FORBIDDEN', "the agent's owner may not approve its own agent's calls");
    }
    const task = await this.d.tasks.getTask(a.taskId);
    if (verdict === 'approve' && task?.state !== 'active') throw new MandateError('CONFLICT', `task is ${task?.state ?? 'gone'}`);
    const to = verdict === 'approve' ? 'approved' : 'denied';
    const { changed, approval } = await this.d.store.transitionApproval(id, ['pending'], to, { at: now, by: operator.id, reason });
    if (!changed || !approval) throw new MandateError('CONFLICT', 'approval was decided meanwhile');
    await this.d.audit.append([this.draft(verdict === 'approve' ? 'approval.approved' : 'approval.denied', approval, now, { by: operator.id, reason })]);
    return approval;
  }

  get(id: string): Promise<Approval | undefined> {
    return this.d.store.getApproval(id);
  }

  list(opts: Parameters<ApprovalStore['listApprovals']>[0]): Promise<Approval[]> {
    return this.d.store.listApprovals(opts);
  }

  /** Marks expired requests and approvals, with an audit record each. */
  async expireDue(): Promise<number> {
    const now = this.d.clock.now();
    const expired = await this.d.store.expireApprovals(now);
    if (expired.length > 0) await this.d.audit.append(expired.map((a) => this.draft('approval.expired', a, now, {})));
    return expired.length;
  }

  /** Cancels what is pending or approved for these tasks (a kill, a task's end). */
  async cancelForTasks(taskIds: readonly string[], reason: string): Promise<number> {
    const now = this.d.clock.now();
    const cancelled = await this.d.store.cancelForTasks(taskIds, now, reason);
    if (cancelled.length > 0) await this.d.audit.append(cancelled.map((a) => this.draft('approval.cancelled', a, now, { reason })));
    return cancelled.length;
  }

  private async expireOne(a: Approval, now: number): Promise<void> {
    const { changed, approval } = await this.d.store.transitionApproval(a.id, ['pending', 'approved'], 'expired', { at: now });
    if (changed && approval) await this.d.audit.append([this.draft('approval.expired', approval, now, {})]);
  }

  private draft(kind: AuditDraft['kind'], a: Approval, ts: number, data: JsonObject): AuditDraft {
    return { kind, ts, taskId: a.taskId, agentId: a.agentId, callId: a.callId, data: { approval_id: a.id, ...data } };
  }
}
