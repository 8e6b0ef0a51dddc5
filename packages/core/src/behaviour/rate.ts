/**
 * Rate and burst: calls in the last window, against an absolute ceiling (per task and per agent:
 * an agent that spreads its calls over tasks or delegates is still one actor), against the task's
 * own rhythm so far (its mean rate before this window), and against the agent type's typical
 * busiest window (learnt from earlier tasks of the type). A call counts when it is admitted, so
 * concurrent calls are counted as if they had come one by one.
 */
import { z } from 'zod';
import { detectorScopeSchema } from './scope.ts';
import type { DetectorInput, ScopeView, Signal } from './types.ts';

export const rateConfigSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('run the rate detector: bursts of calls against a fixed ceiling, the task\'s own rhythm and the agent type\'s baseline'),
  window_ms: z.number().int().min(100).max(3_600_000).default(10_000).describe('the sliding window calls are counted in (ms)'),
  max_per_window: z.number().int().min(1).max(1_000_000).default(60).describe('calls per window that are a burst whatever the task\'s rhythm'),
  task_factor: z.number().min(1).max(1000).default(5).describe('a window this many times busier than the task\'s own mean rate is a burst'),
  baseline_factor: z.number().min(1).max(1000).default(3).describe('… this many times busier than the agent type\'s typical busiest window'),
  min_history: z.number().int().min(1).max(10_000).default(10).describe('calls before the window needed to judge the task\'s own rhythm'),
  min_baseline_tasks: z.number().int().min(1).max(10_000).default(5).describe('earlier tasks of the type needed to judge against the baseline'),
  min_calls: z.number().int().min(1).max(10_000).default(8).describe('windows quieter than this are never a burst (a handful of calls is not a pattern)'),
  scope: detectorScopeSchema.prefault({}),
  agent_max_per_window: z
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .optional()
    .describe('the ceiling for an agent across all its tasks and delegates, per window; default max_per_window'),
});
export type RateConfig = z.output<typeof rateConfigSchema>;

/** the ceiling a scope is judged against */
export function ceilingOf(cfg: RateConfig, kind: ScopeView['kind']): number {
  return kind === 'agent' ? (cfg.agent_max_per_window ?? cfg.max_per_window) : cfg.max_per_window;
}

/** calls of the task (this one included) inside the window ending now */
export function callsInWindow(input: DetectorInput, windowMs: number): number {
  const task = input.scopes[0];
  return 1 + (task === undefined ? 0 : task.calls(input.now, windowMs));
}

export function detectRate(input: DetectorInput, cfg: RateConfig): Signal[] {
  if (!cfg.enabled) return [];
  const now = input.now;
  // the ceiling, in every scope judged: the one furthest over its ceiling speaks (the task's on a tie)
  let over: { scope: ScopeView; calls: number; max: number } | undefined;
  for (const scope of input.scopes) {
    if (!cfg.scope[scope.kind]) continue;
    const max = ceilingOf(cfg, scope.kind);
    const calls = 1 + scope.calls(now, cfg.window_ms);
    if (calls > max && (over === undefined || calls / max > over.calls / over.max)) over = { scope, calls, max };
  }
  if (over !== undefined) {
    const evidence = { calls_in_window: over.calls, window_ms: cfg.window_ms, kind: 'ceiling', max_per_window: over.max, scope: over.scope.kind, ...(over.scope.kind === 'agent' ? { agent_id: over.scope.id } : {}) };
    return [{ detector: 'rate', severity: over.calls > 2 * over.max ? 'high' : 'medium', confidence: 0.9, evidence }];
  }
  const task = input.scopes[0];
  if (!cfg.scope.task || task === undefined || task.kind !== 'task') return [];
  const inWindow = 1 + task.calls(now, cfg.window_ms);
  const out: Signal[] = [];
  if (inWindow < cfg.min_calls) return out;
  const evidence = { calls_in_window: inWindow, window_ms: cfg.window_ms, scope: 'task' };
  // the task's own rhythm: its mean rate over the time before this window
  const before = task.size - (inWindow - 1);
  const first = task.at(0);
  if (before >= cfg.min_history && first !== undefined) {
    const span = now - cfg.window_ms - first.ts;
    if (span > 0) {
      const expected = (before / span) * cfg.window_ms;
      if (inWindow > cfg.task_factor * Math.max(expected, 1)) {
        out.push({ detector: 'rate', severity: 'medium', confidence: Math.min(0.9, 0.5 + before / 200), evidence: { ...evidence, kind: 'task_rhythm', expected: Math.round(expected * 100) / 100 } });
      }
    }
  }
  const b = input.baseline;
  if (b.peakSamples >= cfg.min_baseline_tasks && inWindow > cfg.baseline_factor * Math.max(b.peakPerWindow, 1)) {
    out.push({ detector: 'rate', severity: 'medium', confidence: Math.min(0.9, 0.5 + b.peakSamples / 100), evidence: { ...evidence, kind: 'agent_type_baseline', typical_peak: Math.round(b.peakPerWindow * 100) / 100 } });
  }
  return out;
}
