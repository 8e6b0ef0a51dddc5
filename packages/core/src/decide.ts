import type { AuditDraft } from './audit/chain.ts';
import { redactArgsCopy } from './audit/redact.ts';
import { MandateError, describeError, isMandateError } from './errors.ts';
import { canonicalJson, checkJsonBounds, isJsonObject, sealJson, type JsonLimits, type JsonObject, type JsonValue } from './json.ts';
import { checkCall, toolBudget } from './mandate/check.ts';
import { TASK_STATE_REASON, type BudgetLimits, type CallRequest, type Decision, type Effect, type FinalAction, type Task } from './model.ts';
import { NO_PROVENANCE, callRequest, type ArgProvenance } from './policy/context.ts';
import type { PolicySet } from './policy/engine.ts';
import type { AgentReader, BudgetLedger, Clock, DecisionCommit, DecisionCommitter, Hasher, IdGenerator, RevocationStore, TaskReader, TaskWriter } from './ports.ts';
import type { ReasonCode } from './reasons.ts';
import type { TaskTokenClaims, TaskTokens } from './tokens/task-token.ts';
import type { ApprovalResolution, ApprovalService } from './approvals.ts';
import { SOURCE_CATEGORIES, type ProvenanceLedger, type Trust } from './provenance.ts';
import { READ_ONLY_CATEGORIES, boundLabel, resourceEntries, type LabelStore, type ReadLabels, type SharedLabelOptions } from './provenance/labels.ts';
import type { ToolInfo } from './model.ts';
import type { Assessment, BehaviourMonitor } from './behaviour/monitor.ts';
import { permissiveness } from './behaviour/combine.ts';
import { checkBinding } from './tokens/dpop.ts';
import { stageOutcome, type ShadowEvaluator } from './shadow.ts';
import { PendingOutcomes } from './state/pending-outcomes.ts';

export interface DecisionLimits {
  readonly args: JsonLimits;
  /** allowed calls remembered for their outcome report, oldest forgotten first (default 50,000) */
  readonly pendingOutcomes?: number | undefined;
}

export interface DecisionEngineDeps {
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly hasher: Hasher;
  readonly tokens: TaskTokens;
  readonly agents: AgentReader;
  readonly tasks: TaskReader & TaskWriter;
  readonly revocations: RevocationStore;
  /** read for the policy context; spending goes through `audit.commitDecision` */
  readonly budgets: Pick<BudgetLedger, 'usage'>;
  /** commits a decision's records and spends its budget in one transaction */
  readonly audit: DecisionCommitter;
  /** the policy set in force now (swapped atomically on reload) */
  readonly policies: () => PolicySet;
  /** the environment this deployment guards (prod, staging…) */
  readonly environment: string;
  /** step-up approvals; without it a held call simply stays held */
  readonly approvals?: ApprovalService | undefined;
  /** the emergency stop, read from memory on every call */
  readonly emergency?: { stopped(): boolean } | undefined;
  /**
   * Whether cached state can be trusted (several nodes: the change feed is connected). When it
   * cannot, every call is denied: a revocation this node has not heard of must not be missed.
   */
  readonly freshness?: { fresh(): boolean } | undefined;
  readonly limits: DecisionLimits;
  /**
   * Where argument values came from: tool results recorded through `recordOutcome` are matched
   * against later calls' arguments, and the policy context carries the classification.
   */
  readonly provenance?: ProvenanceLedger | undefined;
  /**
   * Labels through shared resources (provenance/labels.ts): a call to a tool the catalogue marks
   * `shared` stores the labels of the values it writes before it is allowed, and its output
   * comes back with the labels stored for what it read. Needs `provenance`.
   */
  readonly labels?: { readonly store: LabelStore; readonly options: SharedLabelOptions } | undefined;
  /**
   * Behavioural detection and containment (behaviour/): signals for every decided call, and
   * containment that can only restrict the policy's answer. Absent: policy alone decides.
   */
  readonly behaviour?: BehaviourMonitor | undefined;
  /** shadow mode: a candidate policy set judges the same calls; it never affects a decision */
  readonly shadow?: ShadowEvaluator | undefined;
}

/** A tool's result, reported by the enforcement point that forwarded an allowed call. */
export interface OutcomeReport {
  readonly taskToken: string;
  readonly callId: string;
  /** the tool's output as the agent received it (any JSON; text is scanned for values) */
  readonly result: JsonValue;
  readonly isError?: boolean | undefined;
  /** overrides the tool catalogue's output_trust (an MCP upstream configured as trusted or not) */
  readonly trust?: Trust | undefined;
}

export interface OutcomeReceipt {
  readonly callId: string;
  readonly taskId: string;
  readonly tool: string;
  readonly trust: Trust;
  readonly resultDigest: string;
  readonly auditSeq: number | undefined;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The reason a containment step-up names on its approval requests. */
const CONTAINMENT_REASON = 'behaviour.containment';

/** Allowed calls remembered for their outcome reports, by default (bounded; oldest dropped). */
const MAX_PENDING_OUTCOMES = 50_000;

/** The canonical hash of a call's arguments: what audit records and approvals bind to. */
export function argsHash(args: JsonObject, hasher: Hasher): string {
  return 'sha256:' + hasher.sha256Hex(canonicalJson(args));
}

const TOOL_NAME = /^[A-Za-z0-9._:/@-]{1,200}$/;
const CALL_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const MANDATE_POLICY_ID: Partial<Record<ReasonCode, string>> = {
  TOOL_NOT_IN_MANDATE: 'mandate.tools',
  ARG_CONSTRAINT_FAILED: 'mandate.tools',
  RESOURCE_NOT_IN_MANDATE: 'mandate.resources',
  DATA_CLASS_NOT_DECLARED: 'mandate.data_classes',
  OUTSIDE_TIME_WINDOW: 'mandate.time_window',
  BUDGET_EXHAUSTED: 'mandate.budgets',
  TOOL_BUDGET_EXHAUSTED: 'mandate.budgets',
};

/** Thrown inside the pipeline to end it with a deny; never escapes `decide`. */
class Deny {
  readonly reasons: ReasonCode[];
  readonly details: string[];
  readonly policyIds: string[];

  constructor(reasons: ReasonCode[], details: string[], policyIds: string[] = []) {
    this.reasons = reasons;
    this.details = details;
    this.policyIds = policyIds;
  }
}

interface BudgetClaim {
  readonly taskId: string;
  readonly tool: string;
  readonly limits: BudgetLimits;
}

interface Ctx {
  callId: string;
  claims?: TaskTokenClaims;
  task?: Task;
  tool: string;
  resource: string | undefined;
  args: JsonObject;
  errors: { policyId: string; message: string }[];
  policyVersion: string;
  approvalId?: string;
  /** the reasons the approval this call spent was asked for (it answers those, no others) */
  approvalReasons?: readonly string[];
  // for behaviour: what the pipeline learnt on the way
  agentType?: string;
  /** a delegated task: the agents above it, root first (behaviour counts the call for them too) */
  lineage?: readonly string[];
  toolInfo?: ToolInfo;
  provenance?: ArgProvenance;
  /** the call reads a source the task's purpose names */
  namedSource?: boolean;
  /** the arguments' canonical hash and audit form, computed once per call (see `argsOf`) */
  argsMemo?: { of: JsonObject; hash: string; redacted: JsonObject };
  /** the shared entries the call reaches, and how many labels it wrote there */
  shared?: SharedReach;
}

/** The entries of a shared resource one call reaches (provenance/labels.ts). */
interface SharedReach {
  readonly store: string;
  readonly entries: readonly string[];
  /** the call named no entry: a read sees the whole resource */
  readonly whole: boolean;
  labelsWritten: number;
}

/**
 * decide(call): the one place a tool call is decided, for every enforcement point. Deny is a
 * result, not an exception: any error on the way becomes a deny that names it. An allow is
 * returned only after its audit records are durably committed.
 */
export class DecisionEngine {
  private readonly d: DecisionEngineDeps;
  /** the allowed calls awaiting their outcome report, by task and call id (state/pending-outcomes.ts) */
  private readonly allowed: PendingOutcomes<SharedReach>;
  /** per task, the outcome being recorded while its shared labels are read: the next call waits for it */
  private readonly labelling = new Map<string, Promise<unknown>>();

  constructor(deps: DecisionEngineDeps) {
    this.d = deps;
    this.allowed = new PendingOutcomes(Math.max(1, Math.floor(deps.limits.pendingOutcomes ?? MAX_PENDING_OUTCOMES)));
  }

  /**
   * Decides one call. `provenance` may be given by a caller that classified the arguments itself;
   * otherwise it is computed from the task's recorded results (when a ledger is configured).
   */
  async decide(req: CallRequest, provenance?: ArgProvenance): Promise<Decision> {
    const ctx: Ctx = {
      callId: typeof req.callId === 'string' && CALL_ID.test(req.callId) ? req.callId : this.d.ids.next('call'),
      tool: typeof req.tool === 'string' ? req.tool : '',
      resource: typeof req.resource === 'string' ? req.resource : undefined,
      args: {},
      errors: [],
      policyVersion: 'unknown',
    };
    try {
      // one policy set for the whole decision, even if a reload swaps it meanwhile
      const policies = this.d.policies();
      ctx.policyVersion = policies.version;
      return await this.pipeline(req, ctx, policies, provenance);
    } catch (e) {
      const deny =
        e instanceof Deny
          ? e
          : isMandateError(e) && e.code !== 'INTERNAL_ERROR'
            ? new Deny([e.code as ReasonCode], [e.message])
            : new Deny(['INTERNAL_ERROR'], [describeError(e)]);
      return this.finish(ctx, 'deny', deny.reasons, deny.policyIds, deny.details);
    }
  }

  private async pipeline(req: CallRequest, ctx: Ctx, policies: PolicySet, given: ArgProvenance | undefined): Promise<Decision> {
    // 1. shape and bounds, before anything else touches the input
    if (req.callId !== undefined && (typeof req.callId !== 'string' || !CALL_ID.test(req.callId))) {
      throw new Deny(['MALFORMED_REQUEST'], [`call_id must match ${CALL_ID.source}`]);
    }
    if (!TOOL_NAME.test(ctx.tool)) throw new Deny(['MALFORMED_REQUEST'], [`tool must match ${TOOL_NAME.source}`]);
    if (req.resource !== undefined && (typeof req.resource !== 'string' || req.resource.length === 0 || req.resource.length > 1024)) {
      throw new Deny(['MALFORMED_REQUEST'], ['resource must be a string of 1 to 1024 characters']);
    }
    if (!isJsonObject(req.args)) throw new Deny(['MALFORMED_REQUEST'], ['args must be a JSON object']);
    checkJsonBounds(req.args, this.d.limits.args, 'args');
    ctx.args = req.args;

    // 2. authenticate: the task token (signature cached by exact text, state checked fresh)
    const claims = await this.d.tokens.verify(req.taskToken);
    ctx.claims = claims;
    if (req.taskId !== undefined && req.taskId !== claims.task_id) {
      throw new Deny(['TOKEN_TASK_MISMATCH'], ['the token was issued for another task']);
    }
    // proof of possession: a key-bound token is useless without a fresh proof made with its key
    const unproven = checkBinding(claims.cnf?.jkt, req.proof);
    if (unproven) throw new Deny([unproven.reason], [unproven.detail]);
    if (this.d.emergency?.stopped()) throw new Deny(['EMERGENCY_STOP'], ['an emergency stop is in force']);
    if (this.d.freshness && !this.d.freshness.fresh()) throw new Deny(['STORE_UNAVAILABLE'], ['this node cannot confirm current state: the store or its change feed is unreachable']);
    // `now`: a renewed token's revocation takes effect after its grace window (tasks.ts renew)
    if (await this.store(() => this.d.revocations.isTokenRevoked(claims.jti, this.d.clock.now()))) throw new Deny(['TOKEN_REVOKED'], ['task token revoked']);

    // 3. load current state
    const task = await this.store(() => this.d.tasks.getTask(claims.task_id));
    if (!task) throw new Deny(['TASK_NOT_FOUND'], ['task not found']);
    if (task.agentId !== claims.sub) throw new Deny(['AGENT_MISMATCH'], ['token subject is not the task agent']);
    ctx.task = task;
    if (task.mandateHash !== claims.mandate_hash) throw new Deny(['MANDATE_HASH_MISMATCH'], ['token is bound to another mandate']);
    // the agent first: a disabled agent's calls say so, whatever became of its tasks
    const agent = await this.store(() => this.d.agents.getAgent(task.agentId));
    if (!agent) throw new Deny(['AGENT_UNKNOWN'], ['agent is not registered']);
    if (agent.status !== 'active') throw new Deny(['AGENT_DISABLED'], ['agent is disabled']);
    ctx.agentType = agent.type;
    const now = this.d.clock.now();
    if (task.state !== 'active') throw new Deny([TASK_STATE_REASON[task.state]], [`task is ${task.state}`]);
    // by time alone: the state catches up through TaskService.expireDue, off the hot path
    if (now >= task.expiresAt) throw new Deny(['TASK_EXPIRED'], ['task expired']);

    const lineage = task.parentId === undefined ? { agents: [], tasks: [] } : await this.delegationChain(task, now);
    const chain = lineage.agents;
    ctx.lineage = chain;
    const toolInfo = policies.catalog.lookup(ctx.tool);
    ctx.toolInfo = toolInfo;
    // values a parent task saw flow into what it delegates: the child inherits its ancestors' record
    const ledger = this.d.provenance;
    // an outcome whose shared labels are still being read is recorded before this call is classified
    const pendingLabels = this.labelling.get(task.id);
    if (pendingLabels !== undefined) await pendingLabels;
    const provenance = given ?? ledger?.classify(task.id, task.mandate.purpose, ctx.args, lineage.tasks, toolInfo.sinkArgs, toolInfo.contentArgs) ?? NO_PROVENANCE;
    ctx.provenance = provenance;
    // a read of a source the purpose names: its output will carry the user's authority (provenance/named-sources.ts)
    ctx.namedSource = ledger !== undefined && SOURCE_CATEGORIES.has(toolInfo.category) && ledger.readsNamedSource(task.mandate.purpose, ctx.args);
    if (toolInfo.shared !== undefined && this.d.labels !== undefined) ctx.shared = { store: toolInfo.shared.store, ...resourceEntries(toolInfo.shared, ctx.args), labelsWritten: 0 };

    // 4. the mandate's own constraints
    const usage = await this.store(() => this.d.budgets.usage(task.id, ctx.tool));
    const verdict = checkCall(task.mandate, { tool: ctx.tool, resource: ctx.resource, args: ctx.args, now, toolInfo, usage });
    const stage = { agent, task, args: ctx.args, target: ctx.resource, callId: ctx.callId, environment: this.d.environment, now, usage, delegationChain: chain, provenance };
    if (!verdict.ok) {
      this.d.shadow?.observe({ ...stage, tool: ctx.tool }, stageOutcome(verdict, undefined, policies.version));
      throw new Deny(verdict.reasons, verdict.details, [...new Set(verdict.reasons.map((r) => MANDATE_POLICY_ID[r] ?? 'mandate'))]);
    }

    // 5. organisation policy (Cedar)
    const result = policies.evaluateCall(callRequest({ ...stage, tool: toolInfo }));
    // shadow mode: the candidate judges the same call; observe() never throws and returns nothing
    this.d.shadow?.observe({ ...stage, tool: ctx.tool }, stageOutcome(verdict, result, policies.version));
    ctx.errors = result.errors;
    if (result.decision === 'deny') {
      // a refused destination stays refused in this task (provenance.ts)
      if (result.reason === 'POLICY_FORBID' && given === undefined) ledger?.refuse(task.id, ctx.args, toolInfo.sinkArgs ?? []);
      const detail = result.reason === 'NO_PERMITTING_POLICY' ? 'no policy permits this call' : result.reason === 'POLICY_FORBID' ? 'forbidden by policy' : 'a policy failed to evaluate';
      throw new Deny([result.reason as ReasonCode], [detail], result.policyIds);
    }

    // 6. step-up: from a @step_up policy or the mandate's own approval rules; an approval for
    //    this exact call (task, tool, argument hash) is spent here, once
    let policyIds = result.policyIds;
    if (result.decision === 'step_up' || verdict.approval) {
      const ids = result.decision === 'step_up' ? result.policyIds : ['mandate.approvals'];
      const approvals = this.d.approvals;
      if (!approvals) return this.finish(ctx, 'approval_required', ['APPROVAL_REQUIRED'], ids, ['this call needs an approval']);
      // a task already under step-up containment: one request names both reasons
      const contained = this.d.behaviour !== undefined && (await this.store(() => (this.d.behaviour as BehaviourMonitor).stepUpHolds(task, toolInfo)));
      const reasons = contained ? [...ids, CONTAINMENT_REASON] : ids;
      const r = await this.store(() => this.requestApproval(approvals, ctx, task, reasons));
      if (r.kind === 'limit') throw new Deny(['APPROVAL_LIMIT_REACHED'], ['too many approval requests are open for this task'], ids);
      ctx.approvalId = r.approval.id;
      ctx.approvalReasons = r.approval.policyIds;
      if (r.kind === 'denied') throw new Deny(['APPROVAL_DENIED'], ['an approver denied this call'], ids);
      if (r.kind === 'held') return this.finish(ctx, 'approval_required', ['APPROVAL_REQUIRED'], ids, ['this call needs an approval']);
      policyIds = [...result.policyIds, ...ids.filter((id) => !result.policyIds.includes(id)), `approval:${r.approval.id}`];
    }

    // 7. a write to a shared resource: its values' labels are stored before it may happen, so no
    //    reader ever sees a value without its label (a store that cannot take them: no write)
    if (toolInfo.shared !== undefined && this.d.labels !== undefined && ledger !== undefined) {
      await this.store(() => this.writeLabels(ctx, task, toolInfo.shared!, lineage.tasks, toolInfo.contentArgs ?? [], toolInfo.category));
    }

    // 8. allow: counted against its budgets in the same commit as its audit records
    return this.finish(ctx, 'allow', [], policyIds, [], {
      taskId: task.id,
      tool: ctx.tool,
      limits: { calls: task.mandate.budgets?.calls, toolCalls: toolBudget(task.mandate, ctx.tool) },
    });
  }

  /**
   * Records the result of an allowed call: its digest goes into the audit chain (linked to the
   * call by its id) and its values into the task's provenance. Only the task that was allowed
   * the call may report it, once. Throws MandateError (UNAUTHENTICATED / NOT_FOUND / CONFLICT …).
   */
  async recordOutcome(report: OutcomeReport): Promise<OutcomeReceipt> {
    if (typeof report.callId !== 'string' || !CALL_ID.test(report.callId)) throw new MandateError('MALFORMED_REQUEST', `call_id must match ${CALL_ID.source}`);
    const claims = await this.d.tokens.verify(report.taskToken);
    // keyed by the task too: another task's call of the same id is not found
    const pending = this.allowed.take(claims.task_id, report.callId);
    if (!pending) throw new MandateError('NOT_FOUND', 'no allowed call with this id awaits an outcome for this task');
    const info = this.d.policies().catalog.lookup(pending.tool);
    const declared: Trust = report.trust ?? info.outputTrust;
    const resultDigest = 'sha256:' + this.d.hasher.sha256Hex(canonicalJson(report.result));
    const record = (labels?: ReadLabels) => this.d.provenance?.record(claims.task_id, declared, report.result, { trustedFields: info.trustedFields, namedSource: pending.namedSource, labels });
    const recorded = pending.shared !== undefined && this.d.labels !== undefined && this.d.provenance !== undefined ? await this.recordShared(claims.task_id, pending.shared, record) : record();
    const trust: Trust = recorded?.trust ?? declared;
    this.d.behaviour?.outcome(claims.task_id, report.result);
    const committed = await this.d.audit.commitDecision({
      drafts: [
        {
          kind: 'outcome',
          ts: this.d.clock.now(),
          callId: report.callId,
          taskId: claims.task_id,
          agentId: claims.sub,
          txn: claims.txn,
          data: {
            tool: pending.tool,
            result_digest: resultDigest,
            is_error: report.isError === true,
            trust,
            ...(recorded ? { chars: recorded.chars, tokens: recorded.tokens, vouched: recorded.vouched, named_source: recorded.namedSource } : {}),
            // the task's provenance record is incomplete: its later calls fail closed (provenance.ts)
            ...(recorded?.lossy === true ? { provenance_lossy: true } : {}),
            // results forgotten to make room for this one (this task's oldest, or other tasks' records)
            ...(recorded !== undefined && recorded.forgotten > 0 ? { forgotten_chars: recorded.forgotten } : {}),
            // the cross-task flow: labelled values this output brought back, and who wrote them
            ...(pending.shared !== undefined && recorded ? { shared: { store: pending.shared.store, labelled: recorded.labelled, foreign_tasks: [...recorded.foreignTasks].slice(0, 32), saturated: recorded.saturated } } : {}),
          },
        },
      ],
      lazy: true, // no call waits on an outcome record: it shares the next decision's commit (fsync)
    });
    return { callId: report.callId, taskId: claims.task_id, tool: pending.tool, trust, resultDigest, auditSeq: committed.records[0]?.seq };
  }

  /**
   * Reads the labels of the shared entries an allowed call reached and records its output with
   * them. A store that does not answer leaves the output untrusted whole (fail closed). The
   * task's next call waits until this is recorded.
   */
  private recordShared<R>(taskId: string, shared: SharedReach, record: (labels: ReadLabels) => R): Promise<R> {
    const l = this.d.labels as NonNullable<DecisionEngineDeps['labels']>;
    const done = (async () => {
      let labels: ReadLabels;
      try {
        labels = await l.store.readLabels({ entries: shared.entries, store: shared.whole ? shared.store : undefined }, this.d.clock.now(), l.options.maxRead);
      } catch {
        labels = { labels: [], saturated: true };
      }
      return record(labels);
    })();
    this.labelling.set(taskId, done);
    const clear = () => {
      if (this.labelling.get(taskId) === done) this.labelling.delete(taskId);
    };
    done.then(clear, clear);
    return done;
  }

  /** Stores the labels of the values a call writes to a shared resource (provenance/labels.ts). */
  private async writeLabels(ctx: Ctx, task: Task, shared: NonNullable<ToolInfo['shared']>, inherit: readonly string[], contentArgs: readonly string[], category: string): Promise<void> {
    const reach = ctx.shared as SharedReach;
    if (READ_ONLY_CATEGORIES.has(category)) return;
    const l = this.d.labels as NonNullable<DecisionEngineDeps['labels']>;
    const labels = (this.d.provenance as ProvenanceLedger).labelsOf(task.id, task.mandate.purpose, ctx.args, inherit, contentArgs).map((x) => boundLabel(x, l.options.maxTextLength));
    if (labels.length === 0) return;
    const now = this.d.clock.now();
    for (const entry of reach.entries) await l.store.putLabels(entry, shared.store, labels, { now, expiresAt: now + l.options.ttlMs }, l.options.limits);
    reach.labelsWritten = labels.length;
  }

  /** Forgets a task's provenance (it ended). */
  forgetTask(taskId: string): void {
    this.d.provenance?.forget(taskId);
    this.d.behaviour?.forget(taskId);
  }

  /**
   * The call's argument hash and redacted form, computed once: an allow writes three sets of
   * audit drafts (the allow and the two budget-exhausted variants) and an approval binds to the
   * same hash, all from the same arguments.
   */
  private argsOf(ctx: Ctx): { hash: string; redacted: JsonObject } {
    if (ctx.argsMemo?.of !== ctx.args) {
      // sealed: its canonical text is written once and reused by every draft and record hash;
      // when redaction changed nothing that text is also the arguments' own
      const { redacted, changed } = redactArgsCopy(ctx.args, true);
      const sealed = sealJson(redacted);
      const hash = argsHash(changed ? ctx.args : sealed, this.d.hasher);
      ctx.argsMemo = { of: ctx.args, hash, redacted: sealed };
    }
    return ctx.argsMemo;
  }

  /** A step-up for this exact call (task, tool, argument hash): finds or opens its approval, or spends an approved one. */
  private requestApproval(approvals: ApprovalService, ctx: Ctx, task: Task, policyIds: string[]): Promise<ApprovalResolution> {
    const a = this.argsOf(ctx);
    return approvals.resolve({ task, tool: ctx.tool, argsHash: a.hash, resource: ctx.resource, callId: ctx.callId, args: a.redacted, policyIds });
  }

  /**
   * Each hop of a delegated task is re-checked at use time: every ancestor task must still be
   * active and in time, and every ancestor agent active. Returns the agents from the root down.
   */
  private async delegationChain(task: Task, now: number): Promise<{ agents: string[]; tasks: string[] }> {
    const chain: string[] = [];
    const tasks: string[] = [];
    let cur = task;
    for (let hop = 0; cur.parentId !== undefined; hop++) {
      if (hop >= 16) throw new Deny(['DELEGATION_CHAIN_BROKEN'], ['delegation chain too deep']);
      const parentId: string = cur.parentId;
      const parent = await this.store(() => this.d.tasks.getTask(parentId));
      if (!parent || parent.state !== 'active' || now >= parent.expiresAt) {
        throw new Deny(['DELEGATION_CHAIN_BROKEN'], [`ancestor task ${parentId} is ${parent ? (parent.state === 'active' ? 'expired' : parent.state) : 'gone'}`]);
      }
      const agent = await this.store(() => this.d.agents.getAgent(parent.agentId));
      if (!agent || agent.status !== 'active') throw new Deny(['DELEGATION_CHAIN_BROKEN'], [`ancestor agent ${parent.agentId} is disabled`]);
      chain.unshift(parent.agentId);
      tasks.push(parent.id);
      cur = parent;
    }
    return { agents: chain, tasks };
  }

  private async store<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw new Deny(['STORE_UNAVAILABLE'], [describeError(e)]);
    }
  }

  private decision(ctx: Ctx, effect: Effect, reasons: ReasonCode[], policyIds: string[], details: string[]): Decision {
    const final: FinalAction = effect === 'allow' ? 'allowed' : effect === 'deny' ? 'blocked' : 'held';
    const d: Mutable<Decision> = {
      callId: ctx.callId,
      effect,
      reasons,
      policyIds,
      policyVersion: ctx.policyVersion,
      final,
      taskId: ctx.claims?.task_id,
      agentId: ctx.claims?.sub,
      details,
      errors: ctx.errors,
      auditSeq: undefined,
    };
    // assigned, not spread in: the same fields in the same order, without a copy of each
    if (ctx.approvalId !== undefined) d.approvalId = ctx.approvalId;
    if (ctx.provenance !== undefined) d.provenance = ctx.provenance;
    return d;
  }

  /**
   * Audits the decision (when the caller authenticated) and returns it. An allow carries its
   * budget claim into the same commit: it stays an allow only if the budget still had room and
   * the records are durably committed.
   */
  private async finish(ctx: Ctx, effect: Effect, reasons: ReasonCode[], policyIds: string[], details: string[], budget?: BudgetClaim): Promise<Decision> {
    const policy = this.decision(ctx, effect, reasons, policyIds, details);
    // An unauthenticated request has no principal to attribute; it is logged by the edge, not chained.
    const claims = ctx.claims;
    if (!claims) return policy;
    // behaviour: signals and containment, after the policy decision and before the commit
    const contained = this.d.behaviour && ctx.task ? await this.contain(ctx, policy) : undefined;
    const decision = contained?.final ?? policy;
    const result = await this.commit(ctx, claims, decision, contained ? policy : undefined, decision.effect === 'allow' ? budget : undefined);
    if (contained?.assessment) this.d.behaviour?.settle(contained.assessment, result.effect);
    return result;
  }

  private async commit(ctx: Ctx, claims: TaskTokenClaims, decision: Decision, policy: Decision | undefined, budget: BudgetClaim | undefined): Promise<Decision> {
    const { effect, reasons, details } = decision;
    const signals = decision.signals ?? [];
    const exhausted = (reason: ReasonCode) => {
      const d = this.decision(ctx, 'deny', [reason], ['mandate.budgets'], ['budget used up']);
      return policy ? { ...d, policyEffect: 'deny' as const, signals: decision.signals, containment: decision.containment } : d;
    };
    let entry: DecisionCommit;
    try {
      const variant = (d: Decision) => this.auditDrafts(ctx, claims, d, policy ? d : undefined, signals);
      entry = {
        drafts: this.auditDrafts(ctx, claims, decision, policy, signals),
        ...(budget
          ? {
              budget: {
                ...budget,
                // built only if the store finds the budget used up (rare): from the same
                // sealed arguments and fixed reasons as the allow's drafts
                exhausted: (which: 'calls' | 'tool') => variant(exhausted(which === 'tool' ? 'TOOL_BUDGET_EXHAUSTED' : 'BUDGET_EXHAUSTED')),
              },
            }
          : {}),
      };
    } catch (e) {
      return { ...decision, effect: 'deny', final: 'blocked', reasons: [...reasons, 'INTERNAL_ERROR'], details: [...details, describeError(e)] };
    }
    try {
      const committed = await this.d.audit.commitDecision(entry);
      const seq = committed.records[0]?.seq;
      if (committed.budget && !committed.budget.ok) {
        return { ...exhausted(committed.budget.exhausted === 'tool' ? 'TOOL_BUDGET_EXHAUSTED' : 'BUDGET_EXHAUSTED'), auditSeq: seq };
      }
      // the tool's name as the catalogue holds it (the same text): the request's copy is not kept
      if (effect === 'allow') this.allowed.remember(claims.task_id, ctx.callId, { tool: ctx.toolInfo?.name ?? ctx.tool, namedSource: ctx.namedSource === true, shared: ctx.shared });
      return { ...decision, auditSeq: seq };
    } catch (e) {
      // no committed record, no allow
      return { ...decision, effect: 'deny', final: 'blocked', reasons: effect === 'deny' ? [...reasons, 'AUDIT_UNAVAILABLE'] : ['AUDIT_UNAVAILABLE'], details: [...details, describeError(e)] };
    }
  }

  /**
   * The policy's decision restricted by the task's containment (behaviour/combine.ts: never
   * more permissive). A containment step-up goes through the approval flow like a @step_up
   * policy. Any failure here denies: behaviour that cannot be assessed lets nothing through.
   */
  private async contain(ctx: Ctx, policy: Decision): Promise<{ final: Decision; assessment: Assessment | undefined }> {
    const b = this.d.behaviour as BehaviourMonitor;
    const task = ctx.task as Task;
    const fail = (e: unknown): Decision => ({
      ...policy,
      effect: 'deny',
      final: 'blocked',
      reasons: policy.effect === 'deny' ? [...policy.reasons, 'INTERNAL_ERROR'] : ['INTERNAL_ERROR'],
      details: [...policy.details, `behaviour: ${describeError(e)}`],
      policyEffect: policy.effect,
    });
    let assessment: Assessment;
    try {
      const loaded = await b.load(task);
      // admission: assess() judges the call and counts it in one synchronous step
      assessment = b.assess({
        task,
        agentType: ctx.agentType ?? 'unknown',
        tool: ctx.toolInfo ?? this.d.policies().catalog.lookup(ctx.tool),
        resource: ctx.resource,
        args: ctx.args,
        provenance: ctx.provenance ?? NO_PROVENANCE,
        callId: ctx.callId,
        argsHash: this.argsOf(ctx).hash,
        now: this.d.clock.now(),
        policy: { effect: policy.effect, reasons: policy.reasons },
        lineage: ctx.lineage,
      }, loaded);
    } catch (e) {
      return { final: fail(e), assessment: undefined };
    }
    const base: Decision = { ...policy, policyEffect: policy.effect, signals: assessment.signals, containment: assessment.actions.length === 0 ? [] : [...new Set(assessment.actions.map((a) => a.action))] };
    const r = assessment.final;
    const restrictedIds = [...policy.policyIds, 'behaviour.containment'];
    let final: Decision = base;
    try {
      if (r.restrictedBy === 'step_up') {
        final = await this.containmentStepUp(ctx, task, base, restrictedIds);
      } else if (r.restrictedBy !== undefined) {
        final = { ...base, effect: r.effect, final: r.effect === 'deny' ? 'blocked' : 'held', reasons: [...r.reasons], policyIds: restrictedIds, details: [...policy.details, `contained: ${r.restrictedBy}`] };
      }
    } catch (e) {
      final = fail(e);
    }
    // belt and braces: the final answer is never more permissive than the policy's
    if (permissiveness(final.effect) > permissiveness(policy.effect)) final = fail(new Error('containment widened a decision'));
    return { final, assessment };
  }

  /**
   * containment asks for a step-up: an approval bound to this exact call, used once, that was
   * asked for this reason. One the policy's own step-up just spent covers it only if it names
   * containment too; otherwise the call is held for one that names both.
   */
  private async containmentStepUp(ctx: Ctx, task: Task, base: Decision, ids: string[]): Promise<Decision> {
    if (base.approvalId !== undefined && ctx.approvalReasons?.includes(CONTAINMENT_REASON) === true) return base;
    const held = (approvalId?: string): Decision => ({
      ...base,
      effect: 'approval_required',
      final: 'held',
      reasons: ['CONTAINMENT_STEP_UP'],
      policyIds: ids,
      details: [...base.details, 'behavioural containment: this task needs an approval for sensitive calls'],
      ...(approvalId !== undefined ? { approvalId } : {}),
    });
    const approvals = this.d.approvals;
    if (!approvals) return held();
    const r = await this.requestApproval(approvals, ctx, task, [...new Set([...(ctx.approvalReasons ?? []), CONTAINMENT_REASON])]);
    if (r.kind === 'limit') return { ...base, effect: 'deny', final: 'blocked', reasons: ['APPROVAL_LIMIT_REACHED'], policyIds: ids, details: ['too many approval requests are open for this task'] };
    if (r.kind === 'denied') return { ...base, effect: 'deny', final: 'blocked', reasons: ['APPROVAL_DENIED'], policyIds: ids, details: ['an approver denied this call'], approvalId: r.approval.id };
    if (r.kind === 'held') return held(r.approval.id);
    return { ...base, policyIds: [...base.policyIds, `approval:${r.approval.id}`], approvalId: r.approval.id };
  }

  /**
   * The records of one decision, linked by the call id: the policy decision, each behavioural
   * signal (with behaviour on), and the final action.
   */
  private auditDrafts(ctx: Ctx, claims: TaskTokenClaims, final: Omit<Decision, 'auditSeq'>, policy?: Omit<Decision, 'auditSeq'>, signals: Decision['signals'] = []): AuditDraft[] {
    const ts = this.d.clock.now();
    const decision = policy ?? final;
    // Built field by field, never with a spread in the middle of a literal: V8 defines every
    // property after such a spread through the runtime (~0.8 µs for the decision data alone).
    // Decision and action data are built here and never changed: sealed, their canonical text is
    // written once for the store's check, the row and the record hash. Their keys are added in
    // canonical (sorted) order, so canonicalJson finds them in order and does not sort them.
    let action: JsonObject;
    if (policy) {
      action = {};
      if (final.approvalId !== undefined) action.approval_id = final.approvalId;
      action.containment = final.containment === undefined || final.containment.length === 0 ? NONE : [...final.containment];
      action.effect = final.effect;
      action.final = final.final;
      action.policy_effect = policy.effect;
      action.reasons = listOf(final.reasons);
    } else {
      action = { effect: final.effect, final: final.final };
    }
    const args = this.argsOf(ctx);
    const data: JsonObject = { args: args.redacted, args_hash: args.hash };
    if (decision.approvalId !== undefined) data.approval_id = decision.approvalId;
    data.details = listOf(decision.details);
    data.effect = decision.effect;
    data.errors = decision.errors.length === 0 ? NONE : decision.errors.map((e) => ({ message: e.message, policy_id: e.policyId }));
    data.policy_ids = listOf(decision.policyIds);
    data.policy_version = decision.policyVersion;
    data.reasons = listOf(decision.reasons);
    data.resource = ctx.resource ?? null;
    if (ctx.shared !== undefined) data.shared = { entries: ctx.shared.entries.slice(0, 16), labels_written: ctx.shared.labelsWritten, store: ctx.shared.store };
    data.tool = ctx.tool;
    const drafts: AuditDraft[] = [draft('decision', ts, ctx.callId, claims, sealJson(data))];
    for (const s of signals ?? []) drafts.push(draft('signal', ts, ctx.callId, claims, { confidence: s.confidence, detector: s.detector, evidence: s.evidence, severity: s.severity }));
    drafts.push(draft('action', ts, ctx.callId, claims, sealJson(action)));
    return drafts;
  }
}

/**
 * The empty list of audit data, sealed once: most decisions have no details, errors or reasons,
 * and a fresh empty array for each would be frozen on its own when its data is sealed.
 */
const NONE: JsonValue[] = sealJson([]);

/** a copy of `list` for sealed audit data (NONE when empty) */
function listOf(list: readonly string[]): JsonValue[] {
  return list.length === 0 ? NONE : [...list];
}

/** One audit draft of a decided call, linked to it by the call id. */
function draft(kind: AuditDraft['kind'], ts: number, callId: string, claims: TaskTokenClaims, data: JsonObject): AuditDraft {
  return { kind, ts, callId, taskId: claims.task_id, agentId: claims.sub, txn: claims.txn, data };
}

