/**
 * The words of behavioural detection. A detector reads a task's call history (and its agent
 * type's baseline) and returns signals; a signal never authorizes anything, it can only lead to
 * an alert or a restriction (see combine.ts).
 */
import type { JsonObject } from '../json.ts';
import type { Effect } from '../model.ts';

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

export const DETECTORS = ['drift', 'chains', 'rate', 'novelty', 'volume', 'retry', 'judge'] as const;
export type DetectorName = (typeof DETECTORS)[number];

/** A behavioural finding. Evidence names tools, argument names and counts, never argument values. */
export interface Signal {
  readonly detector: DetectorName;
  readonly severity: Severity;
  /** 0..1 */
  readonly confidence: number;
  readonly evidence: JsonObject;
}

/** One decided call as the detectors see it. */
export interface CallEvent {
  readonly ts: number;
  readonly callId: string;
  readonly tool: string;
  readonly category: string;
  readonly risk: string;
  readonly dataClasses: readonly string[];
  /** the resource's kind: the part before the first ':' (ticket:T-1 → ticket) */
  readonly resourceKind: string | undefined;
  /** `tool(key:type,…)` with the top-level argument names sorted */
  readonly argShape: string;
  /** arguments whose values came only from untrusted tool output (provenance) */
  readonly untrustedArgs: readonly string[];
  /** the policy's answer (before any containment) */
  readonly policyEffect: Effect;
  /**
   * denied when admitted, by the policy or by containment: a call refused because its task was
   * suspended counts the same whether the suspension had reached the store yet or not
   */
  readonly denied: boolean;
  readonly argsHash: string;
}

/** A past call as the detectors read it from a scope's memory (scope.ts CallRing keeps no more). */
export interface PastCall {
  readonly ts: number;
  readonly tool: string;
  readonly denied: boolean;
}

/** What a task declared, as the detectors need it. */
export interface TaskProfile {
  readonly taskId: string;
  readonly agentId: string;
  readonly agentType: string;
  readonly purpose: string;
  /** the purpose in lower case and its words (drift) */
  readonly purposeWords: { readonly text: string; readonly tokens: ReadonlySet<string> };
  /** the tools the mandate names exactly (not through a glob) */
  readonly declaredTools: ReadonlySet<string>;
  readonly startedAt: number;
  /** the mandate's call budget, when it declares one */
  readonly declaredCalls: number | undefined;
  /** records and bytes the mandate declares it will touch, when it does */
  readonly declaredScale: { readonly records?: number | undefined; readonly bytes?: number | undefined } | undefined;
}

/** Per task: what its results added up to (from outcome reports). */
export interface VolumeTotals {
  readonly records: number;
  readonly bytes: number;
  readonly results: number;
}

/** Per agent type, learnt from allowed calls across its tasks. */
export interface BaselineView {
  /** allowed calls observed for this agent type */
  readonly observations: number;
  hasTool(tool: string): boolean;
  hasResourceKind(kind: string): boolean;
  hasArgShape(shape: string): boolean;
  /** the typical busiest window of this type's tasks (EWMA of per-task peaks), with how many tasks fed it */
  readonly peakPerWindow: number;
  readonly peakSamples: number;
}

/** A chain rule's progress: step i's mark holds until `until` (ms); `calls` are the calls that made steps 0..i. */
export interface ChainMark {
  readonly until: number;
  readonly calls: readonly string[];
}

export type ScopeKind = 'task' | 'agent';

/** One scope as a detector reads it: the state before the call being judged. */
export interface ScopeView {
  readonly kind: ScopeKind;
  readonly id: string;
  /** recent calls kept (at most the scope's ring size) */
  readonly size: number;
  /** of the i-th recent call kept, oldest first (i in 0..size-1): its admission time */
  tsAt(i: number): number;
  /** … whether it was denied (when admitted: by the policy, by containment, or after its own signals) */
  deniedAt(i: number): boolean;
  /** … its tool */
  toolAt(i: number): string;
  /** … whether it was this call again: the same tool and arguments (by a 64-bit key of their hash, scope.ts CallRing) */
  sameCallAt(i: number, tool: string, argsHash: string): boolean;
  /** calls admitted in (now - windowMs, now]: exact on this node up to its cap, plus what other nodes shared */
  calls(now: number, windowMs: number): number;
  /** denied calls other nodes shared for (now - windowMs, now] (this node's are in the ring) */
  remoteDenied(now: number, windowMs: number): number;
  /** the live mark of a chain rule's step, on this node or shared by another */
  mark(ruleId: string, step: number, now: number): ChainMark | undefined;
}

/** What every detector receives: the task, its history before this call, and this call. */
export interface DetectorInput {
  readonly now: number;
  readonly task: TaskProfile;
  /** earlier calls of the task, oldest first (bounded) */
  readonly history: readonly PastCall[];
  readonly call: CallEvent;
  readonly baseline: BaselineView;
  readonly volume: VolumeTotals;
  /**
   * The scopes this call counts in, as they were before it: the task's first, then the agent's
   * and, for a delegated task, each delegating agent's (all their tasks). Rate, retry and chains
   * judge each scope their config enables.
   */
  readonly scopes: readonly ScopeView[];
}

/** What containment can do. Each only restricts; none can grant. */
export const CONTAINMENT_ACTIONS = ['alert', 'step_up', 'narrow', 'suspend', 'kill'] as const;
export type ContainmentAction = (typeof CONTAINMENT_ACTIONS)[number];

/**
 * One stored restriction of a task. Restrictions only accumulate: a task's containment is the
 * union of its rows, so two nodes adding restrictions at once can never undo each other.
 */
export interface Restriction {
  readonly taskId: string;
  readonly agentId: string;
  readonly action: Exclude<ContainmentAction, 'alert'>;
  /** for `narrow`: the tool (glob) removed from the task; '' otherwise */
  readonly tool: string;
  readonly detector: string;
  readonly callId: string;
  readonly reason: string;
  readonly createdAt: number;
}

export type AlertState = 'open' | 'acknowledged';

/** An operator's notice of one call's signals and what containment did about them. */
export interface Alert {
  readonly id: string;
  readonly ts: number;
  readonly taskId: string;
  readonly agentId: string;
  readonly callId: string;
  readonly tool: string;
  /** the highest severity among the signals */
  readonly severity: Severity;
  readonly detectors: readonly string[];
  readonly signals: readonly Signal[];
  /** containment actions this call caused */
  readonly actions: readonly ContainmentAction[];
  readonly policyEffect: Effect;
  readonly finalEffect: Effect;
  readonly state: AlertState;
  readonly ackedBy: string | undefined;
  readonly ackedAt: number | undefined;
  readonly ackNote: string | undefined;
}
