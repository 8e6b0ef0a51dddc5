import { PolicySet, isMandateError } from '@mandate/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { operatorFirst, requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';
import { shadowEvaluate } from '../../shadow.ts';
import { reloadPolicies } from '../../policy-reload.ts';

export const validateSchema = z.strictObject({
  policies: z.array(z.strictObject({ source: z.string().min(1).max(200), text: z.string().max(1024 * 1024) })).max(1000),
  tools: z.unknown().optional(),
});

export const shadowSchema = validateSchema.extend({ limit: z.number().int().min(1).max(5000).default(500) });
/** an empty set denies every call: a reload puts one in force only when asked to */
export const reloadSchema = z.strictObject({ allow_empty: z.boolean().optional() });
export const divergenceQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100), after: z.coerce.number().int().min(0).default(0) });

export function policyRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  app.get('/v1/policies', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const set = rt.policies.current;
    return {
      version: set.version,
      policies: set.policies.map((p) => ({ id: p.id, source: p.source, effect: p.effect, step_up: p.stepUp, text: p.text })),
      tools: set.catalog.entries,
      engine: { ...set.engineInfo, fallbacks: set.compiledFallbacks },
      cross_check: rt.policies.crossCheck?.stats() ?? null,
    };
  });

  /** Validates a draft policy set against the schema without loading it. */
  app.post('/v1/policies/validate', { onRequest: operatorFirst(rt, 'viewer') }, async (req) => {
    await requireOperator(rt, req, 'viewer');
    const body = parseBody(validateSchema, req.body);
    try {
      const set = PolicySet.load(body.policies, (body.tools ?? {}) as never, rt.hasher);
      return { ok: true, version: set.version, policies: set.policies.length, problems: [] };
    } catch (e) {
      if (isMandateError(e) && e.code === 'POLICY_INVALID') return { ok: false, problems: e.details?.['problems'] ?? [{ message: e.message }] };
      throw e;
    }
  });

  /**
   * Shadow mode: evaluates a draft policy set against the last `limit` audit records' decisions
   * and reports where it would have decided otherwise (see shadow.ts). Never loads the draft.
   */
  app.post('/v1/policies/shadow', { onRequest: operatorFirst(rt, 'viewer') }, async (req) => {
    await requireOperator(rt, req, 'viewer');
    const body = parseBody(shadowSchema, req.body);
    const live = rt.policies.current;
    let draft: PolicySet;
    try {
      draft = PolicySet.load(body.policies, (body.tools ?? { tools: live.catalog.entries }) as never, rt.hasher);
    } catch (e) {
      if (isMandateError(e) && e.code === 'POLICY_INVALID') return { ok: false, problems: e.details?.['problems'] ?? [{ message: e.message }] };
      throw e;
    }
    try {
      const report = await shadowEvaluate(draft, live, { audit: rt.store.audit, tasks: rt.taskState, agents: rt.agents, hasher: rt.hasher, environment: rt.config.environment }, body.limit);
      return { ok: true, ...report };
    } finally {
      draft.dispose();
    }
  });

  /** Shadow mode: what the candidate set would have decided differently, and how often. */
  app.get('/v1/policies/shadow/divergences', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const q = parseBody(divergenceQuery, req.query, 'query');
    if (!rt.shadow) return { enabled: false, candidate_version: null, evaluated: 0, divergences_total: 0, by_kind: {}, divergences: [], next: null };
    const stats = rt.shadow.stats();
    const list = rt.shadow.list(q.after, q.limit);
    return {
      enabled: true,
      candidate_version: stats.candidateVersion ?? null,
      evaluated: stats.evaluated,
      divergences_total: stats.divergences,
      by_kind: stats.byKind,
      divergences: list.map((d) => ({
        seq: d.seq,
        ts: new Date(d.ts).toISOString(),
        call_id: d.callId,
        task_id: d.taskId,
        agent_id: d.agentId,
        tool: d.tool,
        active: { effect: d.active.effect, reasons: d.active.reasons, policy_ids: d.active.policyIds, policy_version: d.active.policyVersion },
        candidate: { effect: d.candidate.effect, reasons: d.candidate.reasons, policy_ids: d.candidate.policyIds, policy_version: d.candidate.policyVersion },
      })),
      next: list.length === q.limit ? (list.at(-1)?.seq ?? null) : null,
    };
  });

  /**
   * Re-reads the policy folder (policy-reload.ts): on any problem, or an empty set without
   * `allow_empty`, the running set stays in force; either way the attempt is audited.
   */
  app.post('/v1/policies/reload', { onRequest: operatorFirst(rt, 'admin') }, async (req) => {
    const op = await requireOperator(rt, req, 'admin');
    const body = parseBody(reloadSchema, req.body);
    const r = await reloadPolicies(rt, { by: op.id, via: 'api', allowEmpty: body.allow_empty }, req.log);
    return { version: r.version, previous_version: r.previousVersion, policies: r.policies, suspended_tasks: r.suspendedTasks, ...(r.shadowVersion !== undefined ? { shadow_version: r.shadowVersion } : {}) };
  });
}
