/**
 * Rate and burst: calls in the last window, against an absolute ceiling, against the task's own
 * rhythm so far (its mean rate before this window), and against the agent type's typical busiest
 * window (learnt from earlier tasks of the type).
 */
import { z } from 'zod';
import type { DetectorInput, Signal } from './types.ts';

export const rateConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  window_ms: z.number().int().min(100).max(3_600_000).default(10_000),
  /** calls per window that are a burst whatever the task's rhythm */
  max_per_window: z.number().int().min(1).max(1_000_000).default(60),
  /** a window this many times busier than the task's own mean rate is a burst */
  task_factor: z.number().min(1).max(1000).default(5),
  /** … this many times busier than the agent type's typical busiest window */
  baseline_factor: z.number().min(1).max(1000).default(3),
  /** calls before the window needed to judge the task's own rhythm */
  min_history: z.number().int().min(1).max(10_000).default(10),
  /** earlier tasks of the type needed to judge against the baseline */
  min_baseline_tasks: z.number().int().min(1).max(10_000).default(5),
  /** windows quieter than this are never a burst (a handful of calls is not a pattern) */
  min_calls: z.number().int().min(1).max(10_000).default(8),
});
export type RateConfig = z.output<typeof rateConfigSchema>;

/** calls of the history (plus this one) inside the window ending now */
export function callsInWindow(input: DetectorInput, windowMs: number): number {
  let n = 1;
  for (let i = input.history.length - 1; i >= 0; i--) {
    const e = input.history[i];
    if (e === undefined || input.now - e.ts >= windowMs) break;
    n += 1;
  }
  return n;
}

export function detectRate(input: DetectorInput, cfg: RateConfig): Signal[] {
  if (!cfg.enabled) return [];
  const inWindow = callsInWindow(input, cfg.window_ms);
  const out: Signal[] = [];
  const evidence = { calls_in_window: inWindow, window_ms: cfg.window_ms };
  if (inWindow > cfg.max_per_window) {
    out.push({ detector: 'rate', severity: inWindow > 2 * cfg.max_per_window ? 'high' : 'medium', confidence: 0.9, evidence: { ...evidence, kind: 'ceiling', max_per_window: cfg.max_per_window } });
    return out;
  }
  if (inWindow < cfg.min_calls) return out;
  // the task's own rhythm: its mean rate over the time before this window
  const before = input.history.length - (inWindow - 1);
  const first = input.history[0];
  if (before >= cfg.min_history && first !== undefined) {
    const span = input.now - cfg.window_ms - first.ts;
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
