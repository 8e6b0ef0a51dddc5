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

/**
 * Tasks and their allowed calls from the audit log, oldest first, over at most `maxRecords`
 * records (a log longer than that throws LIMIT_EXCEEDED naming the bound: a suggestion from part
 * of a window would deny the rest of it).
 */
export async function observeAudit(reader: AuditRangeReader, window: AuditWindow, maxRecords: number): Promise<ObservedTask[]> {
  const observer = new AuditObserver(window);
  let from = 1;
  let read = 0;
  for (;;) {
    const page = await reader.readRange(from, PAGE);
    if (page.length === 0) break;
    read += page.length;
    if (read > maxRecords) throw new MandateError('LIMIT_EXCEEDED', `the audit log holds more than ${maxRecords} records: narrow the window or raise the bound`, { limit: maxRecords });
    observer.fold(page);
    from = (page[page.length - 1] as AuditRecord).seq + 1;
    // records past the window's end are not read further: the log is in time order
    if (window.until !== undefined && (page[page.length - 1] as AuditRecord).ts >= window.until) break;
    if (page.length < PAGE) break;
  }
  return observer.result();
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
