/**
 * Shadow mode: a candidate policy set judges every call the active set judges, and every
 * divergence is recorded. The candidate never affects a decision: the engine hands it a copy of
 * the policy stage's inputs after the live stage has run, and anything the candidate does wrong
 * (an error, a throw) is caught here and recorded as the candidate's deny.
 *
 * What is compared is the policy stage: the mandate's own checks (with the candidate's tool
 * catalogue) and the Cedar policies. State checks (token, task state, kill switch, budget
 * commit, approvals already granted) are the same whichever set is active, so they are not
 * re-run.
 */
import { describeError } from './errors.ts';
import type { JsonObject } from './json.ts';
import { checkCall, type MandateVerdict } from './mandate/check.ts';
import type { Agent, BudgetUsage, Effect, Task } from './model.ts';
import type { ArgProvenance } from './policy/context.ts';
import { callRequest } from './policy/context.ts';
import type { PolicyResult, PolicySet } from './policy/engine.ts';
import type { Clock } from './ports.ts';

/** What the policy stage of one call saw: enough to judge it again with another set. */
export interface PolicyStageInput {
  readonly agent: Agent;
  readonly task: Task;
  readonly tool: string;
  readonly args: JsonObject;
  readonly target: string | undefined;
  readonly callId: string;
  readonly environment: string;
  readonly now: number;
  readonly usage: BudgetUsage;
  readonly delegationChain: readonly string[];
  readonly provenance: ArgProvenance;
}

export interface StageOutcome {
  readonly effect: Effect;
  readonly reasons: readonly string[];
  readonly policyIds: readonly string[];
  readonly policyVersion: string;
}

export interface Divergence {
  readonly seq: number;
  readonly ts: number;
  readonly callId: string;
  readonly taskId: string;
  readonly agentId: string;
  readonly tool: string;
  readonly active: StageOutcome;
  readonly candidate: StageOutcome;
}

/** The policy stage's outcome: mandate verdict, then Cedar (step-up from either). */
export function stageOutcome(verdict: MandateVerdict, result: PolicyResult | undefined, version: string): StageOutcome {
  if (!verdict.ok) return { effect: 'deny', reasons: [...verdict.reasons], policyIds: ['mandate'], policyVersion: version };
  if (!result) return { effect: 'deny', reasons: ['INTERNAL_ERROR'], policyIds: [], policyVersion: version };
  if (result.decision === 'deny') return { effect: 'deny', reasons: [result.reason], policyIds: [...result.policyIds], policyVersion: version };
  if (result.decision === 'step_up') return { effect: 'approval_required', reasons: ['APPROVAL_REQUIRED'], policyIds: [...result.policyIds], policyVersion: version };
  if (verdict.approval) return { effect: 'approval_required', reasons: ['APPROVAL_REQUIRED'], policyIds: ['mandate.approvals'], policyVersion: version };
  return { effect: 'allow', reasons: [], policyIds: [...result.policyIds], policyVersion: version };
}

/** Runs the policy stage of a call against `policies`, as the engine does. Never throws. */
export function evaluateStage(policies: PolicySet, input: PolicyStageInput): StageOutcome {
  try {
    const toolInfo = policies.catalog.lookup(input.tool);
    const verdict = checkCall(input.task.mandate, { tool: input.tool, resource: input.target, args: input.args, now: input.now, toolInfo, usage: input.usage });
    const result = verdict.ok
      ? policies.evaluateCall(
          callRequest({
            agent: input.agent,
            task: input.task,
            tool: toolInfo,
            args: input.args,
            target: input.target,
            callId: input.callId,
            environment: input.environment,
            now: input.now,
            usage: input.usage,
            delegationChain: input.delegationChain,
            provenance: input.provenance,
          }),
        )
      : undefined;
    return stageOutcome(verdict, result, policies.version);
  } catch (e) {
    return { effect: 'deny', reasons: ['POLICY_EVALUATION_ERROR', describeError(e).slice(0, 200)], policyIds: [], policyVersion: policies.version };
  }
}

export interface ShadowOptions {
  /** the candidate set (undefined: shadow mode off for now) */
  readonly candidate: () => PolicySet | undefined;
  readonly clock: Clock;
  /** divergences kept in memory (oldest dropped first; the counters keep counting) */
  readonly keep?: number;
  /** told of each divergence (a log line, a metric); its errors are swallowed */
  readonly onDivergence?: ((d: Divergence) => void) | undefined;
}

export interface ShadowStats {
  readonly candidateVersion: string | undefined;
  readonly evaluated: number;
  readonly divergences: number;
  /** divergences by kind: "<active>-><candidate>" */
  readonly byKind: Readonly<Record<string, number>>;
}

/** Judges each call again with the candidate set and keeps what differs. */
export class ShadowEvaluator {
  private readonly o: ShadowOptions;
  private readonly keep: number;
  private readonly kept: Divergence[] = [];
  private evaluatedCount = 0;
  private divergenceCount = 0;
  private readonly kinds = new Map<string, number>();

  constructor(o: ShadowOptions) {
    this.o = o;
    this.keep = o.keep ?? 10_000;
  }

  /** Called by the engine after the live policy stage; never throws, never changes `active`. */
  observe(input: PolicyStageInput, active: StageOutcome): void {
    try {
      const candidate = this.o.candidate();
      if (!candidate) return;
      this.evaluatedCount += 1;
      const c = evaluateStage(candidate, input);
      if (c.effect === active.effect) return;
      this.divergenceCount += 1;
      const kind = `${active.effect}->${c.effect}`;
      this.kinds.set(kind, (this.kinds.get(kind) ?? 0) + 1);
      const d: Divergence = {
        seq: this.divergenceCount,
        ts: this.o.clock.now(),
        callId: input.callId,
        taskId: input.task.id,
        agentId: input.agent.id,
        tool: input.tool,
        active,
        candidate: c,
      };
      this.kept.push(d);
      if (this.kept.length > this.keep) this.kept.shift();
      this.o.onDivergence?.(d);
    } catch {
      // the candidate must never reach the live path; a failure here only loses a record
    }
  }

  stats(): ShadowStats {
    return {
      candidateVersion: this.o.candidate()?.version,
      evaluated: this.evaluatedCount,
      divergences: this.divergenceCount,
      byKind: Object.fromEntries([...this.kinds.entries()].sort(([a], [b]) => (a < b ? -1 : 1))),
    };
  }

  /** The kept divergences after `afterSeq`, oldest first, at most `limit`. */
  list(afterSeq = 0, limit = 100): Divergence[] {
    return this.kept.filter((d) => d.seq > afterSeq).slice(0, limit);
  }
}
