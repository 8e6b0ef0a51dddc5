/**
 * Shadow mode: what a draft policy set would have decided for recent calls. Each decision record
 * in the audit log is rebuilt into the Cedar request it was decided on, and evaluated by the
 * draft and by the set in force now. A record is rebuilt only when that can be proven exact
 * enough: its redacted arguments must hash to the recorded `args_hash`, its task and agent must
 * still be stored, and the policy set in force must reproduce the recorded outcome when the
 * record was decided under that same version. Otherwise the record says why it was not rebuilt.
 */
import {
  argsHash,
  callRequest,
  checkCall,
  isJsonObject,
  NO_PROVENANCE,
  type Agent,
  type ArgProvenance,
  type AuditReader,
  type AuditRecord,
  type Hasher,
  type JsonObject,
  type PolicySet,
  type Task,
  type TaskReader,
  type AgentReader,
} from '@mandate/core';

export type ShadowOutcome = 'allow' | 'deny' | 'approval_required';

export interface ShadowRecord {
  readonly seq: number;
  readonly ts: string;
  readonly call_id: string | null;
  readonly task_id: string | null;
  readonly agent_id: string | null;
  readonly tool: string | null;
  /** same: the draft agrees; diverged: it does not; not_evaluated: decided before policy; unreconstructable: see `note` */
  readonly status: 'same' | 'diverged' | 'not_evaluated' | 'unreconstructable';
  readonly recorded: { readonly effect: string; readonly reasons: readonly string[]; readonly policy_version: string | null };
  readonly draft?: { readonly outcome: ShadowOutcome; readonly reason: string; readonly policy_ids: readonly string[] };
  readonly note?: string;
}

export interface ShadowReport {
  readonly draft_version: string;
  readonly live_version: string;
  readonly examined: number;
  readonly counts: Record<ShadowRecord['status'], number>;
  /** every record that is not `same`, newest first */
  readonly records: ShadowRecord[];
  readonly assumptions: string[];
}

export interface ShadowDeps {
  readonly audit: AuditReader;
  readonly tasks: TaskReader;
  readonly agents: AgentReader;
  readonly hasher: Hasher;
  readonly environment: string;
}

/** reasons decided by organisation policy (or the step-up it asks for); anything else came first */
const POLICY_STAGE = new Set(['NO_PERMITTING_POLICY', 'POLICY_FORBID', 'POLICY_EVALUATION_ERROR', 'APPROVAL_REQUIRED', 'APPROVAL_DENIED', 'APPROVAL_LIMIT_REACHED']);
const CEDAR_DENY = new Set(['NO_PERMITTING_POLICY', 'POLICY_FORBID', 'POLICY_EVALUATION_ERROR']);
const MAX_TASK_RECORDS = 10_000;

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** The outcome at the policy stage a record shows, comparable with a re-evaluation. */
function recordedOutcome(effect: string, reasons: readonly string[], data: JsonObject): ShadowOutcome {
  if (reasons.some((r) => CEDAR_DENY.has(r))) return 'deny';
  if (effect === 'approval_required' || reasons.includes('APPROVAL_DENIED') || reasons.includes('APPROVAL_LIMIT_REACHED') || typeof data['approval_id'] === 'string') return 'approval_required';
  return 'allow';
}

function provenanceOf(data: JsonObject): ArgProvenance {
  const p = data['provenance'];
  if (!isJsonObject(p)) return NO_PROVENANCE;
  return {
    untrusted: strings(p['untrusted_args']),
    trusted: strings(p['trusted_args']),
    purpose: strings(p['purpose_args']),
    untrustedText: strings(p['untrusted_text_args']),
    purposeSource: strings(p['purpose_source_args']),
    purposeSourceText: strings(p['purpose_source_text_args']),
    unknown: strings(p['unknown_args']),
    labelled: strings(p['labelled_args']),
    foreignTasks: strings(p['foreign_tasks']),
  };
}

export async function shadowEvaluate(draft: PolicySet, live: PolicySet, deps: ShadowDeps, limit: number): Promise<ShadowReport> {
  const head = await deps.audit.head();
  const from = head ? Math.max(1, head.seq - limit + 1) : 1;
  const window = head ? await deps.audit.readRange(from, limit) : [];
  const decisions = window.filter((r) => r.kind === 'decision').reverse();

  const taskRecords = new Map<string, AuditRecord[] | undefined>();
  const tasks = new Map<string, Task | undefined>();
  const agents = new Map<string, Agent | undefined>();
  const task = async (id: string) => {
    if (!tasks.has(id)) tasks.set(id, await deps.tasks.getTask(id));
    return tasks.get(id);
  };
  const agent = async (id: string) => {
    if (!agents.has(id)) agents.set(id, await deps.agents.getAgent(id));
    return agents.get(id);
  };
  const history = async (taskId: string) => {
    if (!taskRecords.has(taskId)) {
      const rs = await deps.audit.readByTask(taskId, MAX_TASK_RECORDS + 1);
      taskRecords.set(taskId, rs.length > MAX_TASK_RECORDS ? undefined : rs);
    }
    return taskRecords.get(taskId);
  };

  const out: ShadowRecord[] = [];
  const counts = { same: 0, diverged: 0, not_evaluated: 0, unreconstructable: 0 };
  for (const r of decisions) {
    const d = r.data;
    const effect = typeof d['effect'] === 'string' ? d['effect'] : 'unknown';
    const reasons = strings(d['reasons']);
    const base = {
      seq: r.seq,
      ts: new Date(r.ts).toISOString(),
      call_id: r.callId ?? null,
      task_id: r.taskId ?? null,
      agent_id: r.agentId ?? null,
      tool: typeof d['tool'] === 'string' ? d['tool'] : null,
      recorded: { effect, reasons, policy_version: typeof d['policy_version'] === 'string' ? d['policy_version'] : null },
    };
    const result = await evaluateOne(r, base, effect, reasons);
    counts[result.status] += 1;
    if (result.status !== 'same') out.push(result);
  }
  return {
    draft_version: draft.version,
    live_version: live.version,
    examined: decisions.length,
    counts,
    records: out,
    assumptions: [
      'agents are evaluated with their attributes as stored now (a record says so when the agent changed after the call)',
      'budget usage is recounted from the allowed decisions of the task before the call',
      'argument provenance is taken from the record where it was recorded, else none (the HTTP API carries none)',
      `the environment is this deployment's (${deps.environment})`,
    ],
  };

  async function evaluateOne(r: AuditRecord, base: Omit<ShadowRecord, 'status'>, effect: string, reasons: string[]): Promise<ShadowRecord> {
    const no = (note: string): ShadowRecord => ({ ...base, status: 'unreconstructable', note });
    const d = r.data;
    if (effect === 'deny' && !reasons.some((x) => POLICY_STAGE.has(x))) {
      return { ...base, status: 'not_evaluated', note: `denied before organisation policy (${reasons.join(', ') || 'no reason'}): a policy change cannot alter it` };
    }
    if (r.taskId === undefined || r.agentId === undefined) return no('the record names no task or agent');
    const tool = base.tool;
    if (tool === null) return no('the record names no tool');
    const args = d['args'];
    if (!isJsonObject(args)) return no('the record carries no arguments');
    if (argsHash(args, deps.hasher) !== d['args_hash']) return no('the arguments were redacted in the audit record (secrets by name or shape, or long strings), so the call cannot be rebuilt exactly');
    const t = await task(r.taskId);
    if (!t) return no('the task is no longer stored');
    const a = await agent(r.agentId);
    if (!a) return no('the agent is no longer stored');
    const hist = await history(t.id);
    if (!hist) return no(`the task has over ${MAX_TASK_RECORDS} audit records; its budget usage was not recounted`);
    const chain: string[] = [];
    for (let cur: Task | undefined = t, hop = 0; cur?.parentId !== undefined; hop++) {
      const parent: Task | undefined = hop < 16 ? await task(cur.parentId) : undefined;
      if (!parent) return no('an ancestor task of the delegation chain is no longer stored');
      chain.unshift(parent.agentId);
      cur = parent;
    }
    const before = hist.filter((x) => x.kind === 'decision' && x.seq < r.seq && x.data['effect'] === 'allow');
    const usage = { calls: before.length, toolCalls: before.filter((x) => x.data['tool'] === tool).length };
    const resource = typeof d['resource'] === 'string' ? d['resource'] : undefined;
    const provenance = provenanceOf(d);

    const outcome = (set: PolicySet) => {
      const toolInfo = set.catalog.lookup(tool);
      const verdict = checkCall(t.mandate, { tool, resource, args, now: r.ts, toolInfo, usage });
      const res = set.evaluateCall(callRequest({ agent: a, task: t, tool: toolInfo, args, target: resource, callId: r.callId ?? 'shadow', environment: deps.environment, now: r.ts, usage, delegationChain: chain, provenance }));
      if (res.decision === 'deny') return { outcome: 'deny' as const, reason: res.reason, policy_ids: res.policyIds };
      if (res.decision === 'step_up') return { outcome: 'approval_required' as const, reason: 'APPROVAL_REQUIRED', policy_ids: res.policyIds };
      if (verdict.approval) return { outcome: 'approval_required' as const, reason: 'APPROVAL_REQUIRED', policy_ids: ['mandate.approvals'] };
      return { outcome: 'allow' as const, reason: 'PERMITTED', policy_ids: res.policyIds };
    };
    const recorded = recordedOutcome(effect, reasons, d);
    if (base.recorded.policy_version === live.version && outcome(live).outcome !== recorded) {
      return no('re-running the policy set that decided this call does not reproduce the recorded decision, so the rebuilt request is not the one decided');
    }
    const drafted = outcome(draft);
    const changed = a.updatedAt > r.ts ? 'the agent was changed after this call; its current attributes were used' : undefined;
    return {
      ...base,
      status: drafted.outcome === recorded ? 'same' : 'diverged',
      draft: drafted,
      ...(changed !== undefined ? { note: changed } : {}),
    };
  }
}
