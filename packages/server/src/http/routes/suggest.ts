import { MandateError, suggestionYaml, type ObservedTask } from '@mandate/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { parseTrace } from '../../replay.ts';
import { observeAudit, observeTraces, runSuggest } from '../../suggest.ts';
import { operatorFirst, requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';

/** audit records one request may read (a longer log is refused with LIMIT_EXCEEDED, never cut) */
export const SUGGEST_MAX_AUDIT_RECORDS = 500_000;
/** traces one request may carry, in each of `traces` and `later_traces` */
export const SUGGEST_MAX_TRACES = 1_000;

const iso = z.iso.datetime({ offset: true });
export const suggestSchema = z.strictObject({
  source: z.enum(['audit', 'traces']),
  traces: z.array(z.unknown()).max(SUGGEST_MAX_TRACES).optional(),
  later_traces: z.array(z.unknown()).max(SUGGEST_MAX_TRACES).optional(),
  since: iso.optional(),
  until: iso.optional(),
  evaluate_until: iso.optional(),
  agent: z.string().min(1).max(2048).optional(),
  options: z
    .strictObject({
      budget_percentile: z.number().min(1).max(100).optional(),
      max_enum: z.number().int().min(1).max(256).optional(),
      cluster_similarity: z.number().min(0.05).max(1).optional(),
      environment: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/).optional(),
    })
    .optional(),
});

function invalid(message: string): MandateError {
  return new MandateError('INVALID_ARGUMENT', message);
}

/**
 * Suggested ceilings and mandate templates from the audit log (allowed decisions in a window) or
 * from traces in the body; the answer holds the suggestions, what they deny of the window (and of
 * a later one) and the same as YAML. Reads audit records: viewer and up.
 */
export function suggestRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  app.post('/v1/mandates/suggest', { onRequest: operatorFirst(rt, 'viewer') }, async (req) => {
    await requireOperator(rt, req, 'viewer');
    const body = parseBody(suggestSchema, req.body);
    const o = body.options ?? {};
    const options = {
      ...(o.budget_percentile !== undefined ? { budgetPercentile: o.budget_percentile } : {}),
      ...(o.max_enum !== undefined ? { maxEnum: o.max_enum } : {}),
      ...(o.cluster_similarity !== undefined ? { clusterSimilarity: o.cluster_similarity } : {}),
      environment: o.environment ?? rt.config.environment,
    };
    let train: ObservedTask[];
    let later: ObservedTask[] | undefined;
    if (body.source === 'traces') {
      if (body.traces === undefined || body.traces.length === 0) throw invalid('source "traces" needs a non-empty traces list');
      if (body.since !== undefined || body.until !== undefined || body.evaluate_until !== undefined) throw invalid('since, until and evaluate_until window the audit log; with traces, send the later window as later_traces');
      train = observeTraces(body.traces.map((t, i) => parseTrace(t, `traces[${i}]`)), body.agent);
      if (body.later_traces !== undefined) later = observeTraces(body.later_traces.map((t, i) => parseTrace(t, `later_traces[${i}]`)), body.agent);
    } else {
      if (body.traces !== undefined || body.later_traces !== undefined) throw invalid('source "audit" reads the audit log: traces are not read');
      const since = body.since !== undefined ? Date.parse(body.since) : undefined;
      const until = body.until !== undefined ? Date.parse(body.until) : undefined;
      const evaluateUntil = body.evaluate_until !== undefined ? Date.parse(body.evaluate_until) : undefined;
      if (since !== undefined && until !== undefined && since >= until) throw invalid('since must be before until');
      if (evaluateUntil !== undefined && (until === undefined || evaluateUntil <= until)) throw invalid('evaluate_until needs until before it: the later window runs from until to evaluate_until');
      const windows = [{ since, until, agent: body.agent }, ...(evaluateUntil !== undefined ? [{ since: until, until: evaluateUntil, agent: body.agent }] : [])];
      [train = [], later] = await observeAudit(rt.store.audit, windows, SUGGEST_MAX_AUDIT_RECORDS);
    }
    const doc = runSuggest({
      train,
      later,
      tools: { tools: [...rt.policies.current.catalog.entries] },
      options,
      window: { source: body.source, ...(body.since !== undefined ? { since: body.since } : {}), ...(body.until !== undefined ? { until: body.until } : {}) },
    });
    return { ...doc, yaml: suggestionYaml(doc) };
  });
}
