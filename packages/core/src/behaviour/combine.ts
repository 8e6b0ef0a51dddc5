/**
 * Combine: the policy decides, containment may only restrict. `restrict` is the one place a
 * final effect is derived from a policy effect, and it is pure and total: it returns the policy's
 * answer or a stricter one (allow > approval_required > deny), never a more permissive one.
 */
import { z } from 'zod';
import { globMatch } from '../glob.ts';
import type { Effect } from '../model.ts';
import type { ReasonCode } from '../reasons.ts';
import { CONTAINMENT_ACTIONS, DETECTORS, severityRank, type ContainmentAction, type Restriction, type Severity, type Signal } from './types.ts';

const EFFECT_RANK: Record<Effect, number> = { deny: 0, approval_required: 1, allow: 2 };

/** allow > approval_required > deny */
export function permissiveness(e: Effect): number {
  return EFFECT_RANK[e];
}

/** A task's containment as the decision sees it. */
export interface ContainmentState {
  readonly stepUp: boolean;
  /** tool globs removed from the task */
  readonly narrowed: readonly string[];
  readonly suspended: boolean;
  readonly killed: boolean;
}

export const NO_CONTAINMENT: ContainmentState = { stepUp: false, narrowed: [], suspended: false, killed: false };

/** What `restrict` needs to know about the call. */
export interface CallContainment {
  readonly state: ContainmentState;
  readonly tool: string;
  /** whether the call is sensitive (step-up applies to sensitive calls only) */
  readonly sensitive: boolean;
  /** whether the catalogue leaves the tool unclassified: a narrowed task may not call it (it may be a narrowed tool by another name) */
  readonly unknown?: boolean | undefined;
}

export interface Verdict {
  readonly effect: Effect;
  readonly reasons: readonly ReasonCode[];
}

export interface FinalVerdict extends Verdict {
  /** the containment that changed the answer, if any */
  readonly restrictedBy: 'kill' | 'suspend' | 'narrow' | 'step_up' | undefined;
}

/** final = policy restricted by containment. Pure, total, never more permissive than `policy`. */
export function restrict(policy: Verdict, c: CallContainment): FinalVerdict {
  const keep: FinalVerdict = { effect: policy.effect, reasons: policy.reasons, restrictedBy: undefined };
  if (policy.effect === 'deny') return keep;
  let out: FinalVerdict = keep;
  if (c.state.killed) out = { effect: 'deny', reasons: ['CONTAINMENT_KILLED'], restrictedBy: 'kill' };
  else if (c.state.suspended) out = { effect: 'deny', reasons: ['CONTAINMENT_SUSPENDED'], restrictedBy: 'suspend' };
  else if (c.state.narrowed.some((g) => globMatch(g, c.tool)) || (c.state.narrowed.length > 0 && c.unknown === true)) out = { effect: 'deny', reasons: ['CONTAINMENT_NARROWED'], restrictedBy: 'narrow' };
  else if (c.state.stepUp && c.sensitive && policy.effect === 'allow') out = { effect: 'approval_required', reasons: ['CONTAINMENT_STEP_UP'], restrictedBy: 'step_up' };
  // belt and braces: whatever the branches above say, never answer more permissively than policy
  return permissiveness(out.effect) <= permissiveness(policy.effect) ? out : keep;
}

const severity = z.enum(['low', 'medium', 'high', 'critical']);

/** signal → action: every rule whose detector, severity and confidence match applies */
export const containmentRuleSchema = z.strictObject({
  detector: z.union([z.enum(DETECTORS), z.literal('*')]).default('*').describe('a detector name, or * for any'),
  rule: z.string().max(100).optional().describe('only signals of this chain rule (chains)'),
  severity: severity.default('low').describe('the lowest severity that triggers the action'),
  min_confidence: z.number().min(0).max(1).default(0).describe('the lowest signal confidence (0..1) that triggers the action'),
  action: z.enum(CONTAINMENT_ACTIONS).describe('what to do: alert, step_up (hold sensitive calls for approval), narrow (remove tools), suspend the task, or kill the agent'),
  tools: z.array(z.string().min(1).max(200)).max(100).optional().describe('narrow: the tools (globs) to remove from the task; default the call\'s own tool'),
});
export type ContainmentRule = z.output<typeof containmentRuleSchema>;

export const containmentConfigSchema = z.strictObject({
  rules: z.array(containmentRuleSchema).max(200).default([]).describe('signal to action rules; every matching rule applies (none: signals only alert)'),
  /** which calls a step-up holds: by tool category or risk (tools.yaml); a tool the catalogue does not classify always is */
  sensitive: z
    .strictObject({
      categories: z.array(z.string().min(1).max(64)).max(100).default(['write', 'external_sink', 'exec', 'payment', 'network']).describe('tool categories a step-up holds'),
      risks: z.array(z.string().min(1).max(64)).max(10).default(['high', 'critical']).describe('tool risk levels a step-up holds'),
    })
    .prefault({}).describe('which calls a step-up holds: by tool category or risk (tools.yaml); a tool the catalogue does not classify always is'),
});
export type ContainmentConfig = z.output<typeof containmentConfigSchema>;

export interface PlannedAction {
  readonly action: ContainmentAction;
  readonly detector: string;
  /** narrow: the tool globs removed */
  readonly tools: readonly string[];
  readonly severity: Severity;
  readonly confidence: number;
}

export function ruleMatches(rule: ContainmentRule, s: Signal): boolean {
  if (rule.detector !== '*' && rule.detector !== s.detector) return false;
  if (rule.rule !== undefined && s.evidence['rule'] !== rule.rule) return false;
  return severityRank(s.severity) >= severityRank(rule.severity) && s.confidence >= rule.min_confidence;
}

/** The actions the signals call for, each once per (action, tools). */
export function planActions(signals: readonly Signal[], rules: readonly ContainmentRule[], tool: string): PlannedAction[] {
  const out: PlannedAction[] = [];
  const seen = new Set<string>();
  for (const s of signals) {
    for (const r of rules) {
      if (!ruleMatches(r, s)) continue;
      const tools = r.action === 'narrow' ? (r.tools ?? [tool]) : [];
      const key = r.action + '\u0000' + tools.join('\u0000');
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ action: r.action, detector: s.detector, tools, severity: s.severity, confidence: s.confidence });
    }
  }
  return out;
}

/** state after the actions: only ever more restricted */
export function applyActions(state: ContainmentState, actions: readonly PlannedAction[]): ContainmentState {
  let { stepUp, suspended, killed } = state;
  const narrowed = [...state.narrowed];
  for (const a of actions) {
    if (a.action === 'step_up') stepUp = true;
    else if (a.action === 'suspend') suspended = true;
    else if (a.action === 'kill') killed = true;
    else if (a.action === 'narrow') for (const t of a.tools) if (!narrowed.includes(t)) narrowed.push(t);
  }
  return { stepUp, narrowed, suspended, killed };
}

/** a task's containment from its stored restrictions */
export function foldRestrictions(rows: readonly Restriction[]): ContainmentState {
  return applyActions(
    NO_CONTAINMENT,
    rows.map((r) => ({ action: r.action, detector: r.detector, tools: r.action === 'narrow' ? [r.tool] : [], severity: 'low', confidence: 0 })),
  );
}

/**
 * Whether the tool catalogue (tools.yaml) leaves a tool unclassified: not listed, or listed
 * without a category or a risk. Unknown counts as sensitive, as a value of unknown origin
 * counts as untrusted: what nobody classified may be anything.
 */
export function isUncatalogued(category: string, risk: string): boolean {
  return category === 'unknown' || risk === 'unknown';
}

/** which calls a step-up holds: a sensitive category or risk, and every tool the catalogue does not classify */
export function isSensitive(cfg: ContainmentConfig['sensitive'], category: string, risk: string): boolean {
  return isUncatalogued(category, risk) || cfg.categories.includes(category) || cfg.risks.includes(risk);
}
