import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { agentFiles, parseDuration, suggestionYaml, type DenialReport, type ObservedTask, type SuggestOptions } from '@mandate/core';
import { observeAudit, observeTraces, readPolicyDirs, readTraceFile, runSuggest, sha256Hasher, type ReplayTrace } from '@mandate/server';
import { openSqliteStore } from '@mandate/store-sqlite';
import { writeFileAtomic } from '../atomic-file.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import type { CliIO } from '../io.ts';
import { suggestHelp } from '../help.ts';

/** audit records read at most (a window longer than this is refused, not cut) */
const MAX_RECORDS = 5_000_000;

/** An ISO date-time, or a duration back from now (`7d`, `12h`). */
export function parseWhen(text: string, now: number, flag: string): number {
  if (/^\d+(ms|s|m|h|d)$/.test(text)) return now - parseDuration(text);
  const t = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(t)) throw new CliError(EXIT.USAGE, `${flag} must be an ISO date-time (2026-12-01T00:00:00Z) or a duration back from now (7d, 12h): got ${JSON.stringify(text)}`);
  return t;
}

function numberOption(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new CliError(EXIT.USAGE, `${flag} must be a number from ${min} to ${max}: got ${JSON.stringify(v)}`);
  return n;
}

async function readTraces(paths: readonly string[]): Promise<ReplayTrace[]> {
  const out: ReplayTrace[] = [];
  for (const p of paths) {
    if (!existsSync(p)) throw new CliError(EXIT.USAGE, `no trace file at ${p}`);
    for await (const t of readTraceFile(p)) out.push(t);
  }
  return out;
}

function summary(label: string, r: DenialReport): string {
  const pct = (n: number) => (r.calls === 0 ? '-' : `${((100 * n) / r.calls).toFixed(2)} %`);
  return `${label}: ${r.tasks} task(s), ${r.calls} call(s); denied by the ceiling ${r.ceiling.denied} (${pct(r.ceiling.denied)}), by the template ${r.template.denied} (${pct(r.template.denied)}; ${r.template.budget} for a budget), by the cluster templates ${r.cluster.denied} (${pct(r.cluster.denied)})`;
}

export async function suggestCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      db: { type: 'string' },
      traces: { type: 'string', multiple: true },
      since: { type: 'string' },
      until: { type: 'string' },
      agent: { type: 'string' },
      'evaluate-until': { type: 'string' },
      'evaluate-traces': { type: 'string', multiple: true },
      policies: { type: 'string', multiple: true },
      environment: { type: 'string' },
      'budget-percentile': { type: 'string' },
      'max-enum': { type: 'string' },
      'cluster-similarity': { type: 'string' },
      out: { type: 'string' },
      'out-dir': { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new CliError(EXIT.USAGE, suggestHelp);
  const fromTraces = values.traces !== undefined;
  if (fromTraces && (values['data-dir'] !== undefined || values.db !== undefined)) throw new CliError(EXIT.USAGE, 'give either --traces or an audit log (--data-dir / --db), not both');
  if (fromTraces && (values.since !== undefined || values.until !== undefined || values['evaluate-until'] !== undefined)) throw new CliError(EXIT.USAGE, '--since, --until and --evaluate-until read the audit log; with --traces, give the later window as --evaluate-traces');
  if (!fromTraces && values['evaluate-traces'] !== undefined) throw new CliError(EXIT.USAGE, '--evaluate-traces goes with --traces; for the audit log, give the later window as --until and --evaluate-until');
  const now = Date.now();
  const options: Omit<SuggestOptions, 'toolInfo'> = {
    ...(values.environment !== undefined ? { environment: values.environment } : {}),
    ...(values['budget-percentile'] !== undefined ? { budgetPercentile: numberOption(values['budget-percentile'], '--budget-percentile', 1, 100) as number } : {}),
    ...(values['max-enum'] !== undefined ? { maxEnum: numberOption(values['max-enum'], '--max-enum', 1, 256) as number } : {}),
    ...(values['cluster-similarity'] !== undefined ? { clusterSimilarity: numberOption(values['cluster-similarity'], '--cluster-similarity', 0.05, 1) as number } : {}),
  };
  const tools = values.policies !== undefined ? readPolicyDirs(values.policies).catalog : undefined;

  let train: ObservedTask[];
  let later: ObservedTask[] | undefined;
  let window: { since?: string; until?: string; source: string };
  if (fromTraces) {
    train = observeTraces(await readTraces(values.traces ?? []), values.agent);
    if (values['evaluate-traces'] !== undefined) later = observeTraces(await readTraces(values['evaluate-traces']), values.agent);
    window = { source: (values.traces ?? []).join(', ') };
  } else {
    const db = values.db ?? join(values['data-dir'] ?? io.env['MANDATE_DATA_DIR'] ?? './.mandate', 'mandate.db');
    if (!existsSync(db)) throw new CliError(EXIT.USAGE, `no audit database at ${db}`);
    const since = values.since !== undefined ? parseWhen(values.since, now, '--since') : undefined;
    const until = values.until !== undefined ? parseWhen(values.until, now, '--until') : undefined;
    const evaluateUntil = values['evaluate-until'] !== undefined ? parseWhen(values['evaluate-until'], now, '--evaluate-until') : undefined;
    if (since !== undefined && until !== undefined && since >= until) throw new CliError(EXIT.USAGE, '--since must be before --until');
    if (evaluateUntil !== undefined && (until === undefined || evaluateUntil <= until)) throw new CliError(EXIT.USAGE, '--evaluate-until needs --until before it: the later window runs from --until to --evaluate-until');
    const store = openSqliteStore({ path: db, hasher: sha256Hasher });
    try {
      const windows = [{ since, until, agent: values.agent }, ...(evaluateUntil !== undefined ? [{ since: until, until: evaluateUntil, agent: values.agent }] : [])];
      [train = [], later] = await observeAudit(store.audit, windows, MAX_RECORDS);
    } finally {
      await store.close();
    }
    window = { source: db, ...(since !== undefined ? { since: new Date(since).toISOString() } : {}), ...(until !== undefined ? { until: new Date(until).toISOString() } : {}) };
  }
  if (train.length === 0) throw new CliError(EXIT.FAILED, 'no allowed call was observed in the window: nothing to learn from');

  const doc = runSuggest({ train, later, tools, options, window });
  const text = suggestionYaml(doc);
  if (values.out !== undefined) writeFileAtomic(values.out, text);
  else io.out(text);
  if (values['out-dir'] !== undefined) {
    mkdirSync(values['out-dir'], { recursive: true });
    for (const a of doc.agents) for (const f of agentFiles(a)) writeFileSync(join(values['out-dir'], f.name), f.text);
  }
  if (doc.training) io.err(summary('training window', doc.training));
  if (doc.evaluation) io.err(summary('later window', doc.evaluation));
  return EXIT.OK;
}
