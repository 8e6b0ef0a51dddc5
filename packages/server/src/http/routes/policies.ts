import { MandateError, PolicySet, isMandateError } from '@mandate/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';
import { shadowEvaluate } from '../../shadow.ts';

const validateSchema = z.strictObject({
  policies: z.array(z.strictObject({ source: z.string().min(1).max(200), text: z.string().max(1024 * 1024) })).max(1000),
  tools: z.unknown().optional(),
});

const shadowSchema = validateSchema.extend({ limit: z.number().int().min(1).max(5000).default(500) });

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
  app.post('/v1/policies/validate', async (req) => {
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
  app.post('/v1/policies/shadow', async (req) => {
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

  /** Re-reads the policy folder; on any problem the running set stays in force. */
  app.post('/v1/policies/reload', async (req) => {
    await requireOperator(rt, req, 'admin');
    if (rt.policies.folder === undefined) throw new MandateError('CONFLICT', 'no policy folder is configured');
    const set = rt.policies.reload();
    // live tasks were admitted by the old set: re-check them against the new one
    const suspended = await rt.supervisor.reevaluate(`policy set ${set.version} loaded`);
    return { version: set.version, policies: set.policies.length, suspended_tasks: suspended };
  });
}
