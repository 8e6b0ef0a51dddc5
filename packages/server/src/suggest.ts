/**
 * Suggestions from the two sources the learner reads: an audit log (a store's reader, paged, up
 * to a bound on records) and recorded traces. The learner itself is pure (core/suggest); this
 * file reads, bounds and runs it.
 */
import {
  AuditObserver,
  MandateError,
  ToolCatalog,
  evaluateSuggestions,
  suggest,
  traceTask,
  type AuditRecord,
  type AuditWindow,
  type ObservedTask,
  type SuggestOptions,
  type SuggestionDocument,
  type ToolCatalogInput,
} from '@mandate/core';
import type { ReplayTrace } from './replay.ts';

export interface AuditRangeReader {
  readRange(fromSeq: number, limit: number): Promise<AuditRecord[]>;
}

const PAGE = 1000;
/** records of several nodes reach the log a little out of time order: read this far past a window's end */
const SKEW_MS = 5 * 60_000;

/**
 * Tasks and their allowed calls from the audit log, one list per window, in one pass over at
 * most `maxRecords` records (a log longer than that throws LIMIT_EXCEEDED naming the bound: a
 * suggestion from part of a window would deny the rest of it). Reading stops once a page starts
 * well past the last window's end.
 */
export async function observeAudit(reader: AuditRangeReader, windows: readonly AuditWindow[], maxRecords: number): Promise<ObservedTask[][]> {
  const observers = windows.map((w) => new AuditObserver(w));
  const ends = windows.map((w) => w.until);
  const end = ends.some((u) => u === undefined) ? undefined : Math.max(...(ends as number[]));
  let from = 1;
  let read = 0;
  for (;;) {
    const page = await reader.readRange(from, PAGE);
    const first = page[0];
    if (first === undefined || (end !== undefined && first.ts >= end + SKEW_MS)) break;
    read += page.length;
    if (read > maxRecords) throw new MandateError('LIMIT_EXCEEDED', `the audit log holds more than ${maxRecords} records: narrow the window or raise the bound`, { limit: maxRecords });
    for (const o of observers) o.fold(page);
    from = (page[page.length - 1] as AuditRecord).seq + 1;
    if (page.length < PAGE) break;
  }
  return observers.map((o) => o.result());
}

export function observeTraces(traces: readonly ReplayTrace[], agent?: string): ObservedTask[] {
  return traces.map((t) => traceTask(t)).filter((t) => agent === undefined || t.agent === agent);
}

export interface SuggestRun {
  readonly train: readonly ObservedTask[];
  /** a later window to measure the suggestions on */
  readonly later?: readonly ObservedTask[] | undefined;
  readonly tools?: ToolCatalogInput | undefined;
  readonly options?: Omit<SuggestOptions, 'toolInfo'> | undefined;
  readonly window?: SuggestionDocument['window'];
}

/** Learns from `train`, reports what the result denies of `train` and of `later`. */
export function runSuggest(run: SuggestRun): SuggestionDocument {
  const catalog = run.tools !== undefined ? new ToolCatalog(run.tools) : undefined;
  const toolInfo = catalog !== undefined ? (t: string) => catalog.lookup(t) : undefined;
  const opts = { ...run.options, toolInfo };
  const agents = suggest(run.train, opts);
  const judge = { toolInfo, ...(run.options?.environment !== undefined ? { environment: run.options.environment } : {}), ...(run.options?.clusterSimilarity !== undefined ? { clusterSimilarity: run.options.clusterSimilarity } : {}) };
  return {
    window: run.window,
    agents,
    training: evaluateSuggestions(agents, run.train, judge),
    ...(run.later !== undefined ? { evaluation: evaluateSuggestions(agents, run.later, judge) } : {}),
  };
}
