/**
 * Suggested mandates on AgentDojo: ceilings and mandate templates learnt (core/suggest) from the
 * clean runs of half of the models, judged on the other half's runs, both ways round (the models
 * sorted by name, alternately in fold A and fold B). One agent per suite; the suite's tool facts
 * (examples/agentdojo/<suite>/tools.yaml) give the data classes. The labels are read only to
 * split the runs (clean or attacked, which model) and to count which calls were attacks.
 *
 *   node bench/suggest-agentdojo.ts [--data DIR] [--budget-percentile P] [--max-enum N] [--json-only] [--out DIR]
 *
 * Figures, per suite and fold and pooled over both folds:
 *   clean calls denied   calls of the held-out models' clean runs that the suggestion denies
 *   attack calls denied  calls labelled attack in their attacked runs that it denies
 *   benign under attack  the other calls of attacked runs that it denies
 * each by the ceiling, the agent's template, and the template of the task's purpose cluster; and
 * what each denies of the window it was learnt from (shape denials are zero by construction).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ToolCatalog, evaluateSuggestions, suggest, traceTask, type ObservedTask, type SuggestOptions } from '@mandate/core';
import { readPolicyDir, type ReplayTrace } from '@mandate/server';
import { DEFAULT_AGENTDOJO_DATA, readLabels, readTraces, suitesIn } from './lib/agentdojo-data.ts';
import type { Label } from './lib/agentdojo-score.ts';
import { type BenchResult, emitResult, newResult, parseBenchArgs, startInfo, printer } from './lib/report.ts';
import { REPO_ROOT } from './lib/stats.ts';

const FACTS = join(REPO_ROOT, 'examples', 'agentdojo');


type ModelLabel = Label & { readonly model?: string };
type Judge = 'ceiling' | 'template' | 'cluster';
const JUDGES: readonly Judge[] = ['ceiling', 'template', 'cluster'];
type Tally = Record<Judge, number> & { calls: number; templateReasons: Record<string, number> };
const tally = (): Tally => ({ calls: 0, ceiling: 0, template: 0, cluster: 0, templateReasons: {} });

interface FoldResult {
  readonly suite: string;
  readonly fold: string;
  readonly trainModels: readonly string[];
  readonly testModels: readonly string[];
  readonly trainTasks: number;
  readonly training: Tally;
  readonly clean: Tally;
  readonly attack: Tally;
  readonly benignUnderAttack: Tally;
  readonly tools: number;
  readonly constrainedArgs: number;
  readonly openArgs: number;
  readonly clusters: number;
  readonly learnMs: number;
}


function modelOf(l: ModelLabel): string {
  return l.model ?? l.id.split('/')[0] ?? '?';
}

function parseOptions(argv: readonly string[]): { data: string; opts: Omit<SuggestOptions, 'toolInfo'>; rest: string[] } {
  let data = DEFAULT_AGENTDOJO_DATA;
  const opts: { budgetPercentile?: number; maxEnum?: number } = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--data') data = value();
    else if (a === '--budget-percentile') opts.budgetPercentile = Number(value());
    else if (a === '--max-enum') opts.maxEnum = Number(value());
    else rest.push(a);
  }
  return { data, opts, rest };
}

const pct = (a: number, b: number) => (b === 0 ? null : Math.round((10_000 * a) / b) / 100);

function runFold(suite: string, fold: string, traces: readonly ReplayTrace[], labels: ReadonlyMap<string, ModelLabel>, train: ReadonlySet<string>, test: ReadonlySet<string>, catalog: ToolCatalog, opts: Omit<SuggestOptions, 'toolInfo'>): FoldResult {
  const toolInfo = (t: string) => catalog.lookup(t);
  const trainTasks: ObservedTask[] = [];
  const testTasks: ObservedTask[] = [];
  for (const t of traces) {
    const l = labels.get(t.id);
    if (l === undefined) continue;
    const m = modelOf(l);
    if (train.has(m) && l.kind === 'clean') trainTasks.push(traceTask(t));
    else if (test.has(m)) testTasks.push(traceTask(t));
  }
  const t0 = performance.now();
  const suggestions = suggest(trainTasks, { ...opts, toolInfo });
  const learnMs = performance.now() - t0;
  const training = tally();
  evaluateSuggestions(suggestions, trainTasks, {
    toolInfo,
    onCall: (_t, _i, v) => {
      training.calls += 1;
      for (const j of JUDGES) if (v[j].length > 0 && !v[j].every((r) => r.endsWith('BUDGET_EXHAUSTED'))) training[j] += 1;
    },
  });
  const clean = tally();
  const attack = tally();
  const benign = tally();
  evaluateSuggestions(suggestions, testTasks, {
    toolInfo,
    onCall: (t, i, v) => {
      const l = labels.get(t.task) as ModelLabel;
      const kind = l.calls.find((c) => c.step === i)?.label ?? 'other';
      const into = l.kind === 'clean' ? clean : kind === 'attack' ? attack : benign;
      into.calls += 1;
      for (const j of JUDGES) if (v[j].length > 0) into[j] += 1;
      for (const r of v.template) into.templateReasons[r] = (into.templateReasons[r] ?? 0) + 1;
    },
  });
  const rules = suggestions.flatMap((s) => s.rules);
  return {
    suite,
    fold,
    trainModels: [...train],
    testModels: [...test],
    trainTasks: trainTasks.length,
    training,
    clean,
    attack,
    benignUnderAttack: benign,
    tools: suggestions.reduce((n, s) => n + (s.ceiling.tools?.length ?? 0), 0),
    constrainedArgs: rules.filter((r) => r.constrained).length,
    openArgs: rules.filter((r) => !r.constrained).length,
    clusters: suggestions.reduce((n, s) => n + s.clusters.length, 0),
    learnMs,
  };
}

function add(a: Tally, b: Tally): Tally {
  const reasons = { ...a.templateReasons };
  for (const [k, n] of Object.entries(b.templateReasons)) reasons[k] = (reasons[k] ?? 0) + n;
  return { calls: a.calls + b.calls, ceiling: a.ceiling + b.ceiling, template: a.template + b.template, cluster: a.cluster + b.cluster, templateReasons: reasons };
}

export async function runSuggestAgentdojoBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const { data, opts, rest } = parseOptions(argv);
  const args = parseBenchArgs(rest);
  const say = printer(args);
  const start = startInfo();
  const suites = suitesIn(data).filter((s) => existsSync(join(FACTS, s, 'tools.yaml')));
  if (suites.length === 0) throw new Error(`no AgentDojo traces with labels in ${data} (set --data or AGENTDOJO_DIR)`);
  const folds: FoldResult[] = [];
  for (const suite of suites) {
    const traces = await readTraces(data, suite);
    const labels = new Map(readLabels<ModelLabel>(data, suite).map((l) => [l.id, l]));
    const models = [...new Set([...labels.values()].map(modelOf))].sort();
    const a = new Set(models.filter((_, i) => i % 2 === 0));
    const b = new Set(models.filter((_, i) => i % 2 === 1));
    const catalog = new ToolCatalog(readPolicyDir(join(FACTS, suite)).catalog);
    for (const [name, train, test] of [['A→B', a, b], ['B→A', b, a]] as const) {
      const r = runFold(suite, name, traces, labels, train, test, catalog, opts);
      folds.push(r);
      say(
        `${suite} ${name}: learnt from ${r.trainTasks} clean runs of ${r.trainModels.length} models (${r.tools} tools, ${r.constrainedArgs} arguments constrained, ${r.openArgs} open, ${r.clusters} clusters) in ${r.learnMs.toFixed(0)} ms; ` +
          `clean calls denied ${JUDGES.map((j) => `${j} ${pct(r.clean[j], r.clean.calls)} %`).join(', ')} of ${r.clean.calls}; ` +
          `attack calls denied ${JUDGES.map((j) => `${j} ${pct(r.attack[j], r.attack.calls)} %`).join(', ')} of ${r.attack.calls}`,
      );
    }
  }
  const derived: Record<string, number> = {};
  const rows: Record<string, unknown>[] = [];
  for (const key of [...suites, 'ALL']) {
    const mine = folds.filter((f) => key === 'ALL' || f.suite === key);
    const sum = (pick: (f: FoldResult) => Tally) => mine.map(pick).reduce(add, tally());
    const clean = sum((f) => f.clean);
    const attack = sum((f) => f.attack);
    const benign = sum((f) => f.benignUnderAttack);
    const training = sum((f) => f.training);
    const row: Record<string, unknown> = { suite: key, clean_calls: clean.calls, attack_calls: attack.calls, benign_calls_under_attack: benign.calls, template_reasons_clean: clean.templateReasons, template_reasons_attack: attack.templateReasons };
    for (const j of JUDGES) {
      row[`clean_denied_pct_${j}`] = pct(clean[j], clean.calls);
      row[`attack_denied_pct_${j}`] = pct(attack[j], attack.calls);
      row[`benign_under_attack_denied_pct_${j}`] = pct(benign[j], benign.calls);
      row[`training_shape_denials_${j}`] = training[j];
      for (const [k, v] of [
        [`${key} clean calls denied % (${j})`, pct(clean[j], clean.calls)],
        [`${key} attack calls denied % (${j})`, pct(attack[j], attack.calls)],
        [`${key} benign calls under attack denied % (${j})`, pct(benign[j], benign.calls)],
      ] as const) {
        if (v !== null) derived[k] = v;
      }
      derived[`${key} training-window shape denials (${j})`] = training[j];
    }
    rows.push(row);
  }
  say('');
  say('suite      clean calls  denied: ceiling / template / cluster   attack calls  denied: ceiling / template / cluster');
  for (const r of rows) {
    const f = (k: string) => String(r[k] ?? '-').padStart(6);
    say(`${String(r['suite']).padEnd(10)} ${String(r['clean_calls']).padStart(11)}  ${f('clean_denied_pct_ceiling')} % ${f('clean_denied_pct_template')} % ${f('clean_denied_pct_cluster')} %   ${String(r['attack_calls']).padStart(12)}  ${f('attack_denied_pct_ceiling')} % ${f('attack_denied_pct_template')} % ${f('attack_denied_pct_cluster')} %`);
  }
  for (const r of rows) say(`${String(r['suite'])}: template denials by reason, clean ${JSON.stringify(r['template_reasons_clean'])}, attack ${JSON.stringify(r['template_reasons_attack'])}`);
  const result: BenchResult = {
    ...newResult({ name: 'suggest-agentdojo', title: 'Suggested ceilings and mandate templates on AgentDojo: learnt from half the models, judged on the other half', mode: 'full', params: { data, ...opts, folds: 'models sorted by name, alternately A and B; A→B and B→A' } }, start),
    figures: {},
    derived,
    notes: [
      'clean calls: every call of the held-out models’ clean runs; attack calls: calls labelled attack in their attacked runs',
      'cluster: the template of the task’s nearest purpose cluster (the agent’s template when none is near)',
      'training-window shape denials count denials for anything but a budget on the runs learnt from: zero by construction',
      ...folds.map((f) => `${f.suite} ${f.fold}: train ${f.trainModels.join(', ')}`),
    ],
  };
  emitResult({ ...result, rows } as BenchResult, args, say);
  return result;
}

if (import.meta.main) {
  await runSuggestAgentdojoBenchmark(process.argv.slice(2));
}
