/**
 * The AgentDojo data folder as bench/agentdojo.ts and bench/suggest-agentdojo.ts read it:
 * traces/<suite>.jsonl[.gz] (recorded runs, read and checked by the server's replay reader) and
 * labels/<suite>.jsonl[.gz] (which run is clean or attacked, which calls were attacks).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readTraceFile, type ReplayTrace } from '@mandate/server';
import { readJsonl, type Label } from './agentdojo-score.ts';

export const DEFAULT_AGENTDOJO_DATA = process.env['AGENTDOJO_DIR'] ?? '/work/shared/benchmarks/agentdojo';

/** `<dir>/<suite>.jsonl.gz` or `<dir>/<suite>.jsonl`, whichever exists */
export function dataFile(dir: string, suite: string): string | undefined {
  for (const ext of ['.jsonl.gz', '.jsonl']) if (existsSync(join(dir, suite + ext))) return join(dir, suite + ext);
  return undefined;
}

/** the suites with both traces and labels in the data folder, sorted */
export function suitesIn(data: string): string[] {
  if (!existsSync(join(data, 'traces'))) return [];
  const names = readdirSync(join(data, 'traces'))
    .map((f) => /^(.+?)\.jsonl(?:\.gz)?$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined);
  return [...new Set(names)].filter((s) => dataFile(join(data, 'labels'), s) !== undefined).sort();
}

function need(data: string, kind: 'traces' | 'labels', suite: string): string {
  const f = dataFile(join(data, kind), suite);
  if (f === undefined) throw new Error(`no ${kind}/${suite}.jsonl[.gz] in ${data}`);
  return f;
}

/** A suite's traces, streamed; every `every`-th only (1: all). */
export async function* traces(data: string, suite: string, every = 1): AsyncGenerator<ReplayTrace> {
  let i = 0;
  for await (const t of readTraceFile(need(data, 'traces', suite))) if (i++ % every === 0) yield t;
}

/** A suite's traces, all in memory. */
export async function readTraces(data: string, suite: string): Promise<ReplayTrace[]> {
  const out: ReplayTrace[] = [];
  for await (const t of traces(data, suite)) out.push(t);
  return out;
}

/** A suite's labels. */
export function readLabels<L extends Label = Label>(data: string, suite: string): L[] {
  return readJsonl<L>(need(data, 'labels', suite));
}
