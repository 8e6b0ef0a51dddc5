/**
 * Bounded memory for the detectors: per task a ring buffer of its last calls and the volume its
 * results added up to; per agent type a baseline of the tools, resource kinds and argument shapes
 * seen in allowed calls. Everything is capped: tasks and agent types are evicted least recently
 * used first, and each baseline set stops growing at its cap.
 */
import type { BaselineView, CallEvent, TaskProfile, VolumeTotals } from './types.ts';

export interface HistoryLimits {
  /** calls remembered per task */
  readonly perTask: number;
  /** tasks remembered at once */
  readonly maxTasks: number;
  /** agent types with a baseline */
  readonly maxAgentTypes: number;
  /** tools, resource kinds and argument shapes kept per agent type (each) */
  readonly maxBaselineEntries: number;
}

export const DEFAULT_HISTORY_LIMITS: HistoryLimits = { perTask: 256, maxTasks: 20_000, maxAgentTypes: 1_000, maxBaselineEntries: 5_000 };

/** A fixed-size ring of calls; `items()` returns them oldest first. */
export class Ring<T> {
  private readonly buf: (T | undefined)[];
  private start = 0;
  private count = 0;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new TypeError(`ring capacity must be a positive integer, got ${String(capacity)}`);
    this.buf = new Array<T | undefined>(capacity);
  }

  push(v: T): void {
    const cap = this.buf.length;
    if (this.count < cap) {
      this.buf[(this.start + this.count) % cap] = v;
      this.count += 1;
    } else {
      this.buf[this.start] = v;
      this.start = (this.start + 1) % cap;
    }
  }

  get size(): number {
    return this.count;
  }

  items(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.count; i++) out.push(this.buf[(this.start + i) % this.buf.length] as T);
    return out;
  }
}

export class TaskHistory {
  readonly calls: Ring<CallEvent>;
  volume: VolumeTotals = { records: 0, bytes: 0, results: 0 };
  /** the busiest window this task has had so far (for the agent type's baseline) */
  peakPerWindow = 0;
  /** what the task declared, derived once */
  profile: TaskProfile | undefined;

  constructor(perTask: number) {
    this.calls = new Ring(perTask);
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

/** Least-recently-used map with a hard cap. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  private readonly max: number;

  constructor(max: number) {
    this.max = max;
  }

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  getOrCreate(key: string, make: () => V, onEvict?: (v: V) => void): V {
    let v = this.get(key);
    if (v === undefined) {
      v = make();
      this.map.set(key, v);
      while (this.map.size > this.max) {
        const oldest = this.map.keys().next();
        if (oldest.done === true) break;
        const gone = this.map.get(oldest.value);
        this.map.delete(oldest.value);
        if (gone !== undefined) onEvict?.(gone);
      }
    }
    return v;
  }

  delete(key: string): V | undefined {
    const v = this.map.get(key);
    this.map.delete(key);
    return v;
  }

  get size(): number {
    return this.map.size;
  }
}

/** All the detectors' memory. */
export class BehaviourHistory {
  readonly limits: HistoryLimits;
  private readonly tasks: Lru<TaskHistory>;
  private readonly baselines: Lru<Baseline>;
  private readonly typeOfTask = new Map<string, string>();

  constructor(limits: Partial<HistoryLimits> = {}) {
    this.limits = { ...DEFAULT_HISTORY_LIMITS, ...limits };
    this.tasks = new Lru(this.limits.maxTasks);
    this.baselines = new Lru(this.limits.maxAgentTypes);
  }

  task(taskId: string): TaskHistory {
    return this.tasks.getOrCreate(taskId, () => new TaskHistory(this.limits.perTask));
  }

  peekTask(taskId: string): TaskHistory | undefined {
    return this.tasks.get(taskId);
  }

  baseline(agentType: string): Baseline {
    return this.baselines.getOrCreate(agentType, () => new Baseline(this.limits.maxBaselineEntries));
  }

  /** a task ended: its busiest window feeds its agent type's baseline, and its memory goes */
  forget(taskId: string, agentType: string | undefined): void {
    const t = this.tasks.delete(taskId);
    if (t !== undefined && agentType !== undefined && t.calls.size > 0) this.baseline(agentType).learnPeak(t.peakPerWindow);
  }

  get taskCount(): number {
    return this.tasks.size;
  }
}
