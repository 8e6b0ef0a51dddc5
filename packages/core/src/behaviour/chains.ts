/**
 * Risky chains: declarative sequence and data-flow rules over a task's calls. A rule lists steps;
 * the last step must match the current call and each earlier step an earlier call, in order,
 * all within `within` calls. A step matches on the tool (globs), its category, risk and data
 * classes (from tools.yaml), the resource kind, and arguments whose values came only from
 * untrusted tool output (provenance). Every listed field must match; lists mean "any of".
 *
 *   - id: secret-then-external
 *     steps:
 *       - { data_classes: [secret] }
 *       - { category: [external_sink] }
 *     within: 5
 *     severity: high
 *     confidence: 0.9
 *   - id: untrusted-recipient
 *     steps:
 *       - { category: [external_sink], untrusted_args: [to, cc, bcc, recipient, url] }
 *     severity: high
 */
import { z } from 'zod';
import { globMatch } from '../glob.ts';
import type { CallEvent, DetectorInput, Signal } from './types.ts';

const list = z.array(z.string().min(1).max(200)).min(1).max(100);

export const chainStepSchema = z.strictObject({
  tool: list.optional(),
  category: list.optional(),
  risk: list.optional(),
  data_classes: list.optional(),
  resource_kind: list.optional(),
  /** argument names; `*` for any argument */
  untrusted_args: list.optional(),
});
export type ChainStep = z.output<typeof chainStepSchema>;

export const chainRuleSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/),
  description: z.string().max(500).optional(),
  steps: z.array(chainStepSchema).min(1).max(8),
  /** the whole chain fits in this many calls (the current one included) */
  within: z.number().int().min(1).max(256).default(10),
  /** earlier steps count only calls the policy allowed (they actually happened) */
  only_allowed: z.boolean().default(true),
  severity: z.enum(['low', 'medium', 'high', 'critical']).default('high'),
  confidence: z.number().min(0).max(1).default(0.9),
});
export type ChainRule = z.output<typeof chainRuleSchema>;

export const chainsConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  rules: z
    .array(chainRuleSchema)
    .max(200)
    .default([
      {
        id: 'sensitive-read-then-external-send',
        description: 'a read of secret or customer data followed by a call to an external sink',
        steps: [{ data_classes: ['secret', 'credentials', 'customer-pii'] }, { category: ['external_sink'] }],
        within: 5,
        only_allowed: true,
        severity: 'high',
        confidence: 0.9,
      },
      {
        id: 'untrusted-recipient',
        description: 'a recipient or destination that came only from untrusted tool output',
        steps: [{ category: ['external_sink', 'payment'], untrusted_args: ['to', 'cc', 'bcc', 'recipient', 'recipients', 'url', 'iban', 'account', 'destination'] }],
        within: 1,
        only_allowed: true,
        severity: 'high',
        confidence: 0.85,
      },
    ]),
});
export type ChainsConfig = z.output<typeof chainsConfigSchema>;

const anyOf = (want: readonly string[] | undefined, have: readonly string[]): boolean => want === undefined || want.some((w) => have.includes(w));

export function stepMatches(step: ChainStep, e: CallEvent): boolean {
  if (step.tool !== undefined && !step.tool.some((g) => globMatch(g, e.tool))) return false;
  if (step.category !== undefined && !step.category.includes(e.category)) return false;
  if (step.risk !== undefined && !step.risk.includes(e.risk)) return false;
  if (!anyOf(step.data_classes, e.dataClasses)) return false;
  if (step.resource_kind !== undefined && (e.resourceKind === undefined || !step.resource_kind.includes(e.resourceKind))) return false;
  if (step.untrusted_args !== undefined) {
    const hit = step.untrusted_args.includes('*') ? e.untrustedArgs.length > 0 : step.untrusted_args.some((a) => e.untrustedArgs.includes(a));
    if (!hit) return false;
  }
  return true;
}

/** The calls (call ids) that complete `rule` with `call` as its last step, or undefined. */
export function matchChain(rule: ChainRule, history: readonly CallEvent[], call: CallEvent): string[] | undefined {
  const last = rule.steps[rule.steps.length - 1];
  if (last === undefined || !stepMatches(last, call)) return undefined;
  const ids = [call.callId];
  // walk back over the window, matching the earlier steps from last to first (greedy, latest first)
  let step = rule.steps.length - 2;
  const from = Math.max(0, history.length - (rule.within - 1));
  for (let i = history.length - 1; i >= from && step >= 0; i--) {
    const e = history[i] as CallEvent;
    if (rule.only_allowed && e.policyEffect !== 'allow') continue;
    if (stepMatches(rule.steps[step] as ChainStep, e)) {
      ids.unshift(e.callId);
      step -= 1;
    }
  }
  return step < 0 ? ids : undefined;
}

export function detectChains(input: DetectorInput, cfg: ChainsConfig): Signal[] {
  if (!cfg.enabled) return [];
  const out: Signal[] = [];
  for (const rule of cfg.rules) {
    const ids = matchChain(rule, input.history, input.call);
    if (ids === undefined) continue;
    out.push({
      detector: 'chains',
      severity: rule.severity,
      confidence: rule.confidence,
      evidence: { rule: rule.id, calls: ids, tool: input.call.tool, ...(input.call.untrustedArgs.length > 0 ? { untrusted_args: [...input.call.untrustedArgs] } : {}) },
    });
  }
  return out;
}
