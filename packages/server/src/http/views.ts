import type { Agent, Alert, Approval, AuditRecord, Checkpoint, ContainmentState, Decision, Restriction, Task } from '@mandate/core';

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function agentView(a: Agent) {
  return { id: a.id, owner: a.owner, type: a.type, status: a.status, ceiling: a.ceiling, created_at: iso(a.createdAt), updated_at: iso(a.updatedAt) };
}

export function taskView(t: Task) {
  return {
    id: t.id,
    agent_id: t.agentId,
    state: t.state,
    mandate: t.mandate,
    mandate_hash: t.mandateHash,
    txn: t.txn,
    parent_id: t.parentId ?? null,
    depth: t.depth,
    created_at: iso(t.createdAt),
    expires_at: iso(t.expiresAt),
    max_expires_at: iso(t.maxExpiresAt),
    ended_at: iso(t.endedAt),
    end_reason: t.endReason ?? null,
  };
}

export function decisionView(d: Decision) {
  return {
    call_id: d.callId,
    effect: d.effect,
    final: d.final,
    reasons: d.reasons,
    policy_ids: d.policyIds,
    policy_version: d.policyVersion,
    task_id: d.taskId ?? null,
    agent_id: d.agentId ?? null,
    details: d.details,
    audit_seq: d.auditSeq ?? null,
    approval_id: d.approvalId ?? null,
    ...(d.policyEffect !== undefined ? { policy_effect: d.policyEffect, signals: d.signals ?? [], containment: d.containment ?? [] } : {}),
  };
}

export function auditView(r: AuditRecord) {
  return {
    seq: r.seq,
    ts: iso(r.ts),
    kind: r.kind,
    call_id: r.callId ?? null,
    task_id: r.taskId ?? null,
    agent_id: r.agentId ?? null,
    txn: r.txn ?? null,
    data: r.data,
    prev_hash: r.prevHash,
    hash: r.hash,
  };
}

export function checkpointView(c: Checkpoint) {
  return { seq: c.seq, head_hash: c.headHash, ts: iso(c.ts), kid: c.kid, signature: c.signature };
}

export function approvalView(a: Approval, now: number) {
  return {
    id: a.id,
    task_id: a.taskId,
    agent_id: a.agentId,
    tool: a.tool,
    args: a.args,
    args_hash: a.argsHash,
    resource: a.resource ?? null,
    call_id: a.callId,
    // a pending request past its time is shown as expired even before the sweep marks it
    state: (a.state === 'pending' || a.state === 'approved') && now >= a.expiresAt ? 'expired' : a.state,
    policy_ids: a.policyIds,
    created_at: iso(a.createdAt),
    expires_at: iso(a.expiresAt),
    decided_at: iso(a.decidedAt),
    decided_by: a.decidedBy ?? null,
    reason: a.reason ?? null,
    used_at: iso(a.usedAt),
    used_call_id: a.usedCallId ?? null,
  };
}

export function alertView(a: Alert) {
  return {
    id: a.id,
    ts: iso(a.ts),
    task_id: a.taskId,
    agent_id: a.agentId,
    call_id: a.callId,
    tool: a.tool,
    severity: a.severity,
    detectors: a.detectors,
    signals: a.signals,
    actions: a.actions,
    policy_effect: a.policyEffect,
    final_effect: a.finalEffect,
    state: a.state,
    acked_by: a.ackedBy ?? null,
    acked_at: iso(a.ackedAt),
    ack_note: a.ackNote ?? null,
  };
}

export function restrictionView(r: Restriction) {
  return { action: r.action, tool: r.tool === '' ? null : r.tool, detector: r.detector, call_id: r.callId, reason: r.reason, at: iso(r.createdAt) };
}

export function containmentView(state: ContainmentState, restrictions: readonly Restriction[]) {
  return {
    step_up: state.stepUp,
    narrowed_tools: state.narrowed,
    suspended: state.suspended,
    killed: state.killed,
    restrictions: restrictions.map(restrictionView),
  };
}
