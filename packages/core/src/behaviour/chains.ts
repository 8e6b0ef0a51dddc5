/**
 * Risky chains: declarative sequence and data-flow rules over an agent's calls. A rule lists
 * steps; the last step must match the current call and each earlier step an earlier call, in
 * order. Chains are state, not a window: a call that makes a step leaves a mark on its task and
 * its agent (all its tasks and delegates) that holds for `hold_ms`, whatever calls come between,
 * and the next step counts while the mark of the step before it holds. Padding a chain with
 * harmless calls, or spreading it over tasks, does not hide it.
 *
 * A step matches on the tool (globs), its category, risk and data classes (from tools.yaml), the
 * resource kind, and arguments whose values came only from untrusted tool output (provenance).
 * Every listed field must match; lists mean "any of".
 *
 *   - id: secret-then-external
 *     steps:
 *       - { data_classes: [secret] }
 *       - { category: [external_sink] }
 *     hold_ms: 3600000
 *     severity: high
 *     confidence: 0.9
 *   - id: untrusted-recipient
 *     steps:
 *       - { category: [external_sink], untrusted_args: [to, cc, bcc, recipient, url] }
 *     severity: high
 */
import { z } from 'zod';
import { globMatch } from '../glob.ts';
import { detectorScopeSchema, Scope } from './scope.ts';
import type { CallEvent, ChainMark, DetectorInput, ScopeView, Signal } from './types.ts';

const list = z.array(z.string().min(1).max(200)).min(1).max(100);

export const chainStepSchema = z.strictObject({
  tool: list.optional().describe('tools (globs) this step matches'),
  category: list.optional().describe('tool categories (tools.yaml) this step matches'),
  risk: list.optional().describe('tool risk levels (tools.yaml) this step matches'),
  data_classes: list.optional().describe('data classes (of the tool, tools.yaml) this step matches'),
  resource_kind: list.optional().describe('resource kinds (the part before : of the resource) this step matches'),
  untrusted_args: list.optional().describe('argument names; `*` for any argument'),
});
export type ChainStep = z.output<typeof chainStepSchema>;

export const chainRuleSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/).describe('the rule\'s name, carried by its signals'),
  description: z.string().max(500).optional().describe('what the chain means, for people reading its alerts'),
  steps: z.array(chainStepSchema).min(1).max(8).describe('the calls that make the chain, in order; a step matches when every field it names matches'),
  hold_ms: z
    .number()
    .int()
    .min(1000)
    .max(604_800_000)
    .default(3_600_000)
    .describe('how long a step, once made, counts towards the next one (ms), whatever calls come between'),
  within: z
    .number()
    .int()
    .min(1)
    .max(256)
    .optional()
    .describe('no longer used (a chain step now holds for hold_ms, however many calls come between); accepted so existing configurations load'),
  only_allowed: z.boolean().default(true).describe('earlier steps count only calls the policy allowed (they actually happened)'),
  severity: z.enum(['low', 'medium', 'high', 'critical']).default('high').describe('severity of the signal when the last step completes the chain'),
  confidence: z.number().min(0).max(1).default(0.9).describe('confidence of that signal (0..1)'),
});
export type ChainRule = z.output<typeof chainRuleSchema>;

export const chainsConfigSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('run the chains detector: sequences of calls (a sensitive read, then an external send) within a task or agent'),
  scope: detectorScopeSchema.prefault({}),
  rules: z
    .array(chainRuleSchema)
    .max(200)
    .describe('the chains looked for; the default two are replaced, not extended, by a list given here')
    .default([
      {
        id: 'sensitive-read-then-external-send',
        description: 'a read of secret or customer data followed by a call to an external sink',
        steps: [{ data_classes: ['secret', 'credentials', 'customer-pii'] }, { category: ['external_sink'] }],
        hold_ms: 3_600_000,
        only_allowed: true,
        severity: 'high',
        confidence: 0.9,
      },
      {
        id: 'untrusted-recipient',
        description: 'a recipient or destination that came only from untrusted tool output',
        steps: [{ category: ['external_sink', 'payment'], untrusted_args: ['to', 'cc', 'bcc', 'recipient', 'recipients', 'url', 'iban', 'account', 'destination'] }],
        hold_ms: 3_600_000,
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

/** Per rule, the steps the call matches: bit i set when step i matches (a rule has at most 8). */
export function stepHits(rules: readonly ChainRule[], e: CallEvent): number[] {
  const out = new Array<number>(rules.length);
  for (let r = 0; r < rules.length; r++) {
    const steps = (rules[r] as ChainRule).steps;
    let bits = 0;
    for (let i = 0; i < steps.length; i++) if (stepMatches(steps[i] as ChainStep, e)) bits |= 1 << i;
    out[r] = bits;
  }
  return out;
}

/** The scope a chain completes in, with the calls that made it, or undefined. */
function completed(rule: ChainRule, bits: number, scopes: readonly ScopeView[], cfg: ChainsConfig, now: number): { calls: readonly string[]; scope: ScopeView | undefined } | undefined {
  const last = rule.steps.length - 1;
  if ((bits & (1 << last)) === 0) return undefined;
  if (last === 0) return { calls: [], scope: undefined };
  for (const scope of scopes) {
    if (!cfg.scope[scope.kind]) continue;
    const m = scope.mark(rule.id, last - 1, now);
    if (m !== undefined) return { calls: m.calls, scope };
  }
  return undefined;
}

/**
 * The call leaves its marks: step i (any but the last) when it matches and the mark of step i-1
 * holds (step 0 needs none). Steps are taken from the last down, so one call never makes two
 * steps of the same chain. With `only_allowed`, only calls the policy allowed leave marks.
 */
export function markChains(scope: Scope, rules: readonly ChainRule[], e: CallEvent, hits: readonly number[], now: number): void {
  for (let r = 0; r < rules.length; r++) {
    const bits = hits[r] ?? 0;
    if (bits === 0) continue;
    const rule = rules[r] as ChainRule;
    if (rule.only_allowed && e.policyEffect !== 'allow') continue;
    const steps = rule.steps.length;
    for (let i = steps - 2; i >= 0; i--) {
      if ((bits & (1 << i)) === 0) continue;
      const prev: ChainMark | undefined = i === 0 ? undefined : scope.mark(rule.id, i - 1, now);
      if (i > 0 && prev === undefined) continue;
      scope.setMark(rule.id, i, steps - 1, { until: now + rule.hold_ms, calls: [...(prev?.calls ?? []), e.callId] });
    }
  }
}

/**
 * The calls (call ids) that complete `rule` with `call` as its last step after `history` (oldest
 * first), or undefined: the same marks the monitor keeps, replayed over a trace.
 */
export function matchChain(rule: ChainRule, history: readonly CallEvent[], call: CallEvent): string[] | undefined {
  const scope = new Scope('task', 'trace', history.length + 1, 1);
  const rules = [rule];
  const cfg: ChainsConfig = { enabled: true, scope: { task: true, agent: false }, rules };
  for (const e of history) markChains(scope, rules, e, stepHits(rules, e), e.ts);
  const done = completed(rule, stepHits(rules, call)[0] ?? 0, [scope], cfg, call.ts);
  return done === undefined ? undefined : [...done.calls, call.callId];
}

export function detectChains(input: DetectorInput, cfg: ChainsConfig, hits: readonly number[] = stepHits(cfg.rules, input.call)): Signal[] {
  if (!cfg.enabled) return [];
  const out: Signal[] = [];
  for (let r = 0; r < cfg.rules.length; r++) {
    const rule = cfg.rules[r] as ChainRule;
    const done = completed(rule, hits[r] ?? 0, input.scopes, cfg, input.now);
    if (done === undefined) continue;
    const scope = done.scope;
    out.push({
      detector: 'chains',
      severity: rule.severity,
      confidence: rule.confidence,
      evidence: {
        rule: rule.id,
        calls: [...done.calls, input.call.callId],
        tool: input.call.tool,
        ...(scope !== undefined ? { scope: scope.kind, ...(scope.kind === 'agent' ? { agent_id: scope.id } : {}) } : {}),
        ...(input.call.untrustedArgs.length > 0 ? { untrusted_args: [...input.call.untrustedArgs] } : {}),
      },
    });
  }
  return out;
}
