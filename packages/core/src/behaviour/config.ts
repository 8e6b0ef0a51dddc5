/** The behaviour section's core part: each detector's own config, containment, memory bounds. */
import { z } from 'zod';
import { chainsConfigSchema } from './chains.ts';
import { containmentConfigSchema } from './combine.ts';
import { driftConfigSchema } from './drift.ts';
import { noveltyConfigSchema } from './novelty.ts';
import { rateConfigSchema } from './rate.ts';
import { retryConfigSchema } from './retry.ts';
import { volumeConfigSchema } from './volume.ts';

export const detectorsConfigSchema = z.strictObject({
  drift: driftConfigSchema.prefault({}).describe('purpose drift: actions the declared purpose does not name'),
  chains: chainsConfigSchema.prefault({}).describe('sequences of calls that together are a threat'),
  rate: rateConfigSchema.prefault({}).describe('bursts of calls'),
  novelty: noveltyConfigSchema.prefault({}).describe('tools, resources and argument shapes new to the agent type'),
  volume: volumeConfigSchema.prefault({}).describe('results larger than the declared scale'),
  retry: retryConfigSchema.prefault({}).describe('probing with denied calls'),
});
export type DetectorsConfig = z.output<typeof detectorsConfigSchema>;

export const behaviourCoreConfigSchema = z.strictObject({
  detectors: detectorsConfigSchema.prefault({}).describe('each detector\'s switch and thresholds (docs/behaviour.md)'),
  containment: containmentConfigSchema.prefault({}).describe('what signals cause: alert, step-up, narrow, suspend, kill (docs/containment.md)'),
  alert_min_severity: z.enum(['low', 'medium', 'high', 'critical']).default('low').describe('signals below this severity are recorded but raise no alert'),
  history: z
    .strictObject({
      per_task: z.number().int().min(8).max(10_000).default(256).describe('recent calls remembered per task (rate rhythm, retry loops, drift read them); ~400 B each: live tasks × min(calls per task, per_task) × 400 B is the largest memory cost of a busy server (docs/operations.md, memory)'),
      max_tasks: z.number().int().min(1).max(1_000_000).default(20_000).describe('tasks whose calls are remembered at once (the least recently active goes first; a task that ends is forgotten); ~2.7 KB each besides its calls'),
      per_agent: z.number().int().min(8).max(10_000).default(256).describe('recent calls remembered per agent, across all its tasks and delegates (retry loops read them)'),
      max_agents: z.number().int().min(1).max(1_000_000).default(10_000).describe('agents remembered at once; the least recently active goes first'),
      max_agent_types: z.number().int().min(1).max(100_000).default(1_000).describe('agent types whose baselines (rate, novelty) are kept'),
      max_baseline_entries: z.number().int().min(1).max(1_000_000).default(5_000).describe('entries (tools, resources, argument shapes) one agent type\'s baseline holds'),
    })
    .prefault({}).describe('the detectors\' memory bounds'),
  /** the judge's answers: a score at or above min_score becomes a signal for the task's next call */
  judge_signal: z
    .strictObject({
      min_score: z.number().min(0).max(1).default(0.7).describe('the judge\'s score (0..1) at or above which it becomes a signal'),
      severity: z.enum(['low', 'medium', 'high', 'critical']).default('medium').describe('severity of that signal'),
      max_in_flight: z.number().int().min(1).max(10_000).default(16).describe('judge requests under way at once; more calls are not judged'),
    })
    .prefault({}).describe('the judge\'s answers: a score at or above min_score becomes a signal for the task\'s next call'),
});
export type BehaviourCoreConfig = z.output<typeof behaviourCoreConfigSchema>;
export type BehaviourCoreConfigInput = z.input<typeof behaviourCoreConfigSchema>;
