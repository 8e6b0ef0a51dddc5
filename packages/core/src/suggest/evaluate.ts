/**
 * What a suggestion would have denied of observed traffic: each call checked against the ceiling
 * (tool, data classes, environment) and against the mandate template with the same check a live
 * call gets (check.ts: grants, argument constraints, data classes, budgets). A call counts against
 * a budget only when the template allowed it, as a live call counts when it is admitted.
 *
 * On the window the suggestion was learnt from, shape denials (anything but a budget) are zero by
 * construction; budget denials are at most the tasks above the budget percentile.
 */
import { unknownTool } from '../policy/catalog.ts';
import { globMatch } from '../glob.ts';
import { checkCall } from '../mandate/check.ts';
import { parseCeiling, parseMandate } from '../mandate/parse.ts';
import type { Ceiling, Mandate } from '../mandate/schema.ts';
import type { ToolInfo } from '../model.ts';
import { clusterWords, nearestSeed } from './cluster.ts';
import type { AgentSuggestion } from './learn.ts';
import type { ObservedTask } from './observe.ts';

export interface DenialCount {
  readonly denied: number;
  /** denials for a budget alone */
  readonly budget: number;
  readonly byReason: Readonly<Record<string, number>>;
}

export interface DenialReport {
  readonly tasks: number;
  readonly calls: number;
  readonly ceiling: DenialCount;
  readonly template: DenialCount;
  /** the cluster template of the task's nearest cluster; a task near none is judged by the agent's template */
  readonly cluster: DenialCount & { readonly unmatchedTasks: number };
  /** calls of agents the suggestion does not cover (denied by all three) */
  readonly unknownAgentCalls: number;
  /** the first few denials by the template, to read */
  readonly examples: readonly { readonly task: string; readonly tool: string; readonly reasons: readonly string[]; readonly detail: string }[];
}

export interface CallVerdicts {
  readonly ceiling: readonly string[];
  readonly template: readonly string[];
  readonly cluster: readonly string[];
}

const BUDGET = new Set(['BUDGET_EXHAUSTED', 'TOOL_BUDGET_EXHAUSTED']);
const MAX_EXAMPLES = 20;

function ceilingReasons(c: Ceiling, info: ToolInfo, environment: string): string[] {
  const out: string[] = [];
  if (c.tools && !c.tools.some((p) => globMatch(p, info.name))) out.push('TOOL_NOT_IN_CEILING');
  if (c.data_classes && info.dataClasses.some((d) => !(c.data_classes as string[]).includes(d))) out.push('DATA_CLASS_NOT_IN_CEILING');
  if (c.environments && !c.environments.includes(environment)) out.push('ENVIRONMENT_NOT_IN_CEILING');
  return out;
}

class Counter {
  denied = 0;
  budget = 0;
  readonly byReason: Record<string, number> = {};
  add(reasons: readonly string[]): void {
    if (reasons.length === 0) return;
    this.denied += 1;
    if (reasons.every((r) => BUDGET.has(r))) this.budget += 1;
    for (const r of reasons) this.byReason[r] = (this.byReason[r] ?? 0) + 1;
  }
  result(): DenialCount {
    return { denied: this.denied, budget: this.budget, byReason: this.byReason };
  }
}

/** A template run over one task's calls, budgets counted as admitted. */
class TemplateRun {
  private calls = 0;
  private readonly perTool = new Map<string, number>();
  private readonly m: Mandate;
  constructor(m: Mandate) {
    this.m = m;
  }
  check(tool: string, args: ObservedTask['calls'][number]['args'], info: ToolInfo, now: number): { reasons: string[]; details: string[] } {
    const v = checkCall(this.m, { tool, resource: undefined, args, now, toolInfo: info, usage: { calls: this.calls, toolCalls: this.perTool.get(tool) ?? 0 } });
    if (v.ok) {
      this.calls += 1;
      this.perTool.set(tool, (this.perTool.get(tool) ?? 0) + 1);
    }
    return { reasons: v.reasons, details: v.details };
  }
}

interface Compiled {
  readonly ceiling: Ceiling;
  readonly mandate: Mandate;
  readonly clusters: readonly { readonly words: ReadonlySet<string>; readonly mandate: Mandate }[];
}

/**
 * Judges `tasks` against `suggestions` call by call; `onCall` (optional) hears each call's
 * reasons under the ceiling, the template and the cluster template (empty = allowed).
 */
export function evaluateSuggestions(
  suggestions: readonly AgentSuggestion[],
  tasks: readonly ObservedTask[],
  opts: { readonly toolInfo?: ((tool: string) => ToolInfo) | undefined; readonly environment?: string; readonly clusterSimilarity?: number; readonly onCall?: (task: ObservedTask, index: number, v: CallVerdicts) => void } = {},
): DenialReport {
  const compiled = new Map<string, Compiled>();
  for (const s of suggestions) {
    compiled.set(s.agent, {
      ceiling: parseCeiling(s.ceiling),
      mandate: parseMandate(s.mandate),
      clusters: s.clusters.map((c) => ({ words: new Set(c.words), mandate: parseMandate(c.mandate) })),
    });
  }
  const similarity = opts.clusterSimilarity ?? 0.5;
  const ceiling = new Counter();
  const template = new Counter();
  const cluster = new Counter();
  const examples: DenialReport['examples'][number][] = [];
  let calls = 0;
  let unknownAgentCalls = 0;
  let unmatchedTasks = 0;
  for (const t of tasks) {
    const s = compiled.get(t.agent);
    calls += t.calls.length;
    if (s === undefined) {
      unknownAgentCalls += t.calls.length;
      t.calls.forEach((_, i) => {
        for (const counter of [ceiling, template, cluster]) counter.add(['AGENT_NOT_IN_SUGGESTION']);
        opts.onCall?.(t, i, { ceiling: ['AGENT_NOT_IN_SUGGESTION'], template: ['AGENT_NOT_IN_SUGGESTION'], cluster: ['AGENT_NOT_IN_SUGGESTION'] });
      });
      continue;
    }
    const seed = nearestSeed(clusterWords(t.purpose), s.clusters.map((c) => c.words), similarity);
    if (seed < 0) unmatchedTasks += 1;
    const run = new TemplateRun(s.mandate);
    const clusterRun = new TemplateRun(seed < 0 ? s.mandate : (s.clusters[seed] as Compiled['clusters'][number]).mandate);
    const environment = t.environment ?? opts.environment ?? 'prod';
    t.calls.forEach((c, i) => {
      const info = opts.toolInfo?.(c.tool) ?? { ...unknownTool(c.tool), dataClasses: [] };
      const now = c.ts ?? 0;
      const byCeiling = ceilingReasons(s.ceiling, info, environment);
      const byTemplate = run.check(c.tool, c.args, info, now);
      const byCluster = clusterRun.check(c.tool, c.args, info, now);
      ceiling.add(byCeiling);
      template.add(byTemplate.reasons);
      cluster.add(byCluster.reasons);
      if (byTemplate.reasons.length > 0 && examples.length < MAX_EXAMPLES) examples.push({ task: t.task, tool: c.tool, reasons: byTemplate.reasons, detail: byTemplate.details.join('; ').slice(0, 300) });
      opts.onCall?.(t, i, { ceiling: byCeiling, template: byTemplate.reasons, cluster: byCluster.reasons });
    });
  }
  return { tasks: tasks.length, calls, ceiling: ceiling.result(), template: template.result(), cluster: { ...cluster.result(), unmatchedTasks }, unknownAgentCalls, examples };
}
