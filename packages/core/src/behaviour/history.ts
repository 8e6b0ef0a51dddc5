/**
 * Bounded memory for the detectors: per task and per agent a scope (scope.ts: its recent calls,
 * admission times, chain marks), per task the volume its results added up to, and per agent type
 * a baseline of the tools, resource kinds and argument shapes seen in allowed calls. Everything
 * is capped: tasks, agents and agent types are held in ring maps (least recently touched goes
 * first), and each baseline set stops growing at its cap.
 */
import { Buckets, RingMap, Scope } from './scope.ts';
import type { BaselineView, CallEvent, TaskProfile, VolumeTotals } from './types.ts';

export { Ring } from './scope.ts';

export interface HistoryLimits {
  /** calls remembered per task */
  readonly perTask: number;
  /** tasks remembered at once */
  readonly maxTasks: number;
  /** calls remembered per agent (all its tasks and delegates) */
  readonly perAgent: number;
  /** agents remembered at once */
  readonly maxAgents: number;
  /** agent types with a baseline */
  readonly maxAgentTypes: number;
  /** tools, resource kinds and argument shapes kept per agent type (each) */
  readonly maxBaselineEntries: number;
  /** admission times kept per task / per agent for rate counts (2 × the ceiling + 1 is enough) */
  readonly rateCapTask: number;
  readonly rateCapAgent: number;
  /** several nodes: agent scopes count calls in buckets of this size over this horizon, to share them */
  readonly share?: { readonly bucketMs: number; readonly horizonMs: number } | undefined;
}

export const DEFAULT_HISTORY_LIMITS: HistoryLimits = { perTask: 256, maxTasks: 20_000, perAgent: 256, maxAgents: 10_000, maxAgentTypes: 1_000, maxBaselineEntries: 5_000, rateCapTask: 121, rateCapAgent: 121 };

export class TaskHistory extends Scope {
  volume: VolumeTotals = { records: 0, bytes: 0, results: 0 };
  /** the busiest window this task has had so far (for the agent type's baseline) */
  peakPerWindow = 0;
  /** what the task declared, derived once */
  profile: TaskProfile | undefined;

  constructor(taskId: string, perTask: number, rateCap: number) {
    super('task', taskId, perTask, rateCap);
  }
}

class BoundedSet {
  private readonly set = new Set<string>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  add(v: string): void {
    if (this.set.size < this.max) this.set.add(v);
  }

  has(v: string): boolean {
    return this.set.has(v);
  }
}

export class Baseline implements BaselineView {
  observations = 0;
  peakPerWindow = 0;
  peakSamples = 0;
  private readonly tools: BoundedSet;
  private readonly kinds: BoundedSet;
  private readonly shapes: BoundedSet;

  constructor(max: number) {
    this.tools = new BoundedSet(max);
    this.kinds = new BoundedSet(max);
    this.shapes = new BoundedSet(max);
  }

  learn(e: CallEvent): void {
    this.observations += 1;
    this.tools.add(e.tool);
    if (e.resourceKind !== undefined) this.kinds.add(e.resourceKind);
    this.shapes.add(e.argShape);
  }

  /** folds one task's busiest window into the type's typical peak (EWMA, alpha 0.2) */
  learnPeak(peak: number): void {
    this.peakPerWindow = this.peakSamples === 0 ? peak : 0.8 * this.peakPerWindow + 0.2 * peak;
    this.peakSamples += 1;
  }

  hasTool(tool: string): boolean {
    return this.tools.has(tool);
  }

  hasResourceKind(kind: string): boolean {
    return this.kinds.has(kind);
  }

  hasArgShape(shape: string): boolean {
    return this.shapes.has(shape);
  }
}

/** All the detectors' memory. */
export class BehaviourHistory {
  readonly limits: HistoryLimits;
  private readonly tasks: RingMap<TaskHistory>;
  private readonly agents: RingMap<Scope>;
  private readonly baselines: RingMap<Baseline>;

  constructor(limits: Partial<HistoryLimits> = {}) {
    this.limits = { ...DEFAULT_HISTORY_LIMITS, ...limits };
    this.tasks = new RingMap(this.limits.maxTasks);
    this.agents = new RingMap(this.limits.maxAgents);
    this.baselines = new RingMap(this.limits.maxAgentTypes);
  }

  task(taskId: string): TaskHistory {
    return this.tasks.getOrCreate(taskId, () => new TaskHistory(taskId, this.limits.perTask, this.limits.rateCapTask));
  }

  peekTask(taskId: string): TaskHistory | undefined {
    return this.tasks.peek(taskId);
  }

  /** an agent's scope: every call of its tasks and of the tasks delegated from them */
  agent(agentId: string): Scope {
    return this.agents.getOrCreate(agentId, () => {
      const s = new Scope('agent', agentId, this.limits.perAgent, this.limits.rateCapAgent);
      const share = this.limits.share;
      if (share !== undefined) s.buckets = new Buckets(share.bucketMs, share.horizonMs);
      return s;
    });
  }

  peekAgent(agentId: string): Scope | undefined {
    return this.agents.peek(agentId);
  }

  agentScopes(): IterableIterator<Scope> {
    return this.agents.values();
  }

  baseline(agentType: string): Baseline {
    return this.baselines.getOrCreate(agentType, () => new Baseline(this.limits.maxBaselineEntries));
  }

  /** a task ended: its busiest window feeds its agent type's baseline, and its memory goes */
  forget(taskId: string, agentType: string | undefined): void {
    const t = this.tasks.delete(taskId);
    if (t !== undefined && agentType !== undefined && t.size > 0) this.baseline(agentType).learnPeak(t.peakPerWindow);
  }

  get taskCount(): number {
    return this.tasks.size;
  }

  get agentCount(): number {
    return this.agents.size;
  }
}
