/**
 * Novelty: a tool, a resource kind or an argument shape never seen in an allowed call of this
 * agent type. Silent until the type's baseline has seen enough calls to mean something, except
 * for a tool the catalogue does not classify: that is new on every call, whatever the baseline.
 */
import { z } from 'zod';
import { isUncatalogued } from './combine.ts';
import type { DetectorInput, Signal } from './types.ts';

export const noveltyConfigSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('run the novelty detector: a tool, resource or argument shape the agent type has not used before'),
  min_observations: z.number().int().min(1).max(1_000_000).default(50).describe('allowed calls of the agent type before novelty is reported'),
  tools: z.boolean().default(true).describe('report a tool the agent type never called'),
  resources: z.boolean().default(true).describe('report a resource kind the agent type never touched'),
  arg_shapes: z.boolean().default(true).describe('report arguments whose shape (names and types) the agent type never sent to that tool'),
});
export type NoveltyConfig = z.output<typeof noveltyConfigSchema>;

export function detectNovelty(input: DetectorInput, cfg: NoveltyConfig): Signal[] {
  if (!cfg.enabled) return [];
  const b = input.baseline;
  if (isUncatalogued(input.call.category, input.call.risk)) {
    return [{ detector: 'novelty', severity: 'medium', confidence: 0.9, evidence: { agent_type: input.task.agentType, observations: b.observations, kind: 'uncatalogued_tool', tool: input.call.tool } }];
  }
  if (b.observations < cfg.min_observations) return [];
  const call = input.call;
  // more history, more confidence that "never seen" means something
  const confidence = Math.min(0.9, b.observations / (b.observations + 4 * cfg.min_observations) + 0.3);
  const base = { agent_type: input.task.agentType, observations: b.observations };
  if (cfg.tools && !b.hasTool(call.tool)) {
    // a new tool makes its shape new too: one signal, not two
    return [{ detector: 'novelty', severity: 'medium', confidence, evidence: { ...base, kind: 'tool', tool: call.tool } }];
  }
  const out: Signal[] = [];
  if (cfg.resources && call.resourceKind !== undefined && !b.hasResourceKind(call.resourceKind)) {
    out.push({ detector: 'novelty', severity: 'low', confidence, evidence: { ...base, kind: 'resource', resource_kind: call.resourceKind } });
  }
  if (cfg.arg_shapes && !b.hasArgShape(call.argShape)) {
    out.push({ detector: 'novelty', severity: 'low', confidence: confidence * 0.8, evidence: { ...base, kind: 'arg_shape', shape: call.argShape } });
  }
  return out;
}
