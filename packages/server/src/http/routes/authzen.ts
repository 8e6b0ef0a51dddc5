/**
 * AuthZEN Authorization API 1.0, HTTPS binding (§10):
 *
 *   POST /access/v1/evaluation                one decision            (§6)
 *   POST /access/v1/evaluations               a batch of decisions    (§7)
 *   GET  /.well-known/authzen-configuration   PDP metadata            (§9)
 *
 * and the operator API of the generic domain's entity store (`/v1/authzen/...`). Routes only
 * translate; decisions are made by AuthzenService (core). A deny is a 200 with
 * `"decision": false`; 400 is for a malformed request, 401 (with WWW-Authenticate) for a missing
 * or bad enforcement-point credential. X-Request-ID is echoed exactly as the PEP sent it.
 */
import {
  MandateError,
  parseEvaluationRequest,
  parseEvaluationsRequest,
  type AuthzenCaller,
  type AuthzenResult,
  type ErrorCode,
  type JsonObject,
} from '@mandate/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { trustsHostHeader } from '../../config.ts';
import { PepAuthError, type Pep } from '../../authzen/pep-auth.ts';
import { operatorFirst, requireOperator } from '../auth.ts';
import { STATUS_BY_CODE } from '../errors.ts';
import { parseBody } from '../validate.ts';

export const WELL_KNOWN = '/.well-known/authzen-configuration';
export const EVALUATION_PATH = '/access/v1/evaluation';
export const EVALUATIONS_PATH = '/access/v1/evaluations';

/**
 * One result as an AuthZEN Decision (§5.5). A generic permit is `{"decision": true}` alone (a
 * PEP MAY reject a permit whose context it does not understand); a deny carries Mandate's
 * reasons in `context`, and an item that could not be evaluated its `error` there (§7.2.1).
 * Agent decisions always carry the context (call id, task, audit sequence): their PEPs speak
 * Mandate's vocabulary.
 */
export function decisionView(r: AuthzenResult): { decision: boolean; context?: JsonObject } {
  const allow = r.effect === 'allow';
  if (allow && r.agent === undefined) return { decision: true };
  const context: JsonObject = {
    id: r.id,
    effect: r.effect,
    reasons: [...r.reasons],
    policy_ids: [...r.policyIds],
    policy_version: r.policyVersion,
  };
  if (r.details.length > 0) context['details'] = [...r.details];
  if (r.errors.length > 0) context['errors'] = r.errors.map((e) => ({ policy_id: e.policyId, message: e.message }));
  if (r.failure !== undefined) context['error'] = { status: STATUS_BY_CODE[r.failure.code as ErrorCode] ?? 500, code: r.failure.code, message: r.failure.message };
  if (r.agent !== undefined) {
    if (r.agent.taskId !== undefined) context['task_id'] = r.agent.taskId;
    if (r.agent.auditSeq !== undefined) context['audit_seq'] = r.agent.auditSeq;
    if (r.agent.approvalId !== undefined) context['approval_id'] = r.agent.approvalId;
  }
  return { decision: allow, context };
}

export const entitiesQuery = z.strictObject({
  type: z.string().min(1).max(256).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(1000),
  offset: z.coerce.number().int().min(0).default(0),
});

export const entityParams = z.strictObject({ type: z.string().min(1).max(256), id: z.string().max(1024) });

/** A body that is a Cedar entities array, or `{"entities": [...]}`. */
function entityList(body: unknown): unknown {
  if (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.hasOwn(body, 'entities')) return (body as Record<string, unknown>)['entities'];
  return body;
}

export function authzenRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  const az = rt.authzen;
  if (!az.config.enabled) return;
  const peps = new WeakMap<FastifyRequest, Pep>();

  /** runs before the body is read: an unauthenticated request learns nothing about its body */
  const authenticate = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const given = req.headers['x-request-id'];
    if (typeof given === 'string' && given !== '') reply.header('x-request-id', given);
    try {
      peps.set(req, await az.auth.authenticate(req.headers.authorization));
    } catch (e) {
      if (e instanceof PepAuthError) reply.header('www-authenticate', e.challenge);
      throw e;
    }
  };

  const caller = (req: FastifyRequest): AuthzenCaller => {
    const given = req.headers['x-request-id'];
    return { requestId: typeof given === 'string' && given !== '' ? given : req.id, pep: peps.get(req)?.name ?? 'unknown' };
  };

  /**
   * The metadata names the configured URL, never the request's Host: a forged Host must not end up
   * in a document caches keep and PEPs follow. Without one, only development builds it from the
   * request, and then it is not cacheable.
   */
  const configured = az.config.pdp_url ?? rt.config.server.public_url;
  app.get(WELL_KNOWN, async (req, reply) => {
    if (configured === undefined && !trustsHostHeader(rt.config)) {
      throw new MandateError('NOT_FOUND', 'PDP metadata is published only when authzen.pdp_url or server.public_url is set: the Host header is not trusted to name this server');
    }
    const base = (configured ?? `${req.protocol}://${req.host}`).replace(/\/+$/, '');
    reply.header('cache-control', configured !== undefined ? 'public, max-age=300' : 'no-store');
    return {
      policy_decision_point: base,
      access_evaluation_endpoint: base + EVALUATION_PATH,
      access_evaluations_endpoint: base + EVALUATIONS_PATH,
    };
  });

  app.post(EVALUATION_PATH, { onRequest: authenticate }, async (req) => {
    const item = parseEvaluationRequest(req.body);
    const [result] = await az.service.evaluate([item], 'execute_all', caller(req));
    return decisionView(result as AuthzenResult);
  });

  app.post(EVALUATIONS_PATH, { onRequest: authenticate }, async (req) => {
    const parsed = parseEvaluationsRequest(req.body, { maxEvaluations: az.config.max_evaluations });
    if (parsed.evaluations === undefined) {
      // §7.1: no (or an empty) evaluations array answers as a single evaluation
      const [result] = await az.service.evaluate([parsed.single as NonNullable<typeof parsed.single>], 'execute_all', caller(req));
      return decisionView(result as AuthzenResult);
    }
    const results = await az.service.evaluate(parsed.evaluations, parsed.semantic, caller(req));
    // §7.2: one Decision per evaluated item, in request order; no top-level decision
    return { evaluations: results.map(decisionView) };
  });

  // --- operators: the generic domain and its entity store -------------------------------------

  app.get('/v1/authzen', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const d = az.domain.current;
    return {
      enabled: true,
      policy_version: d.policies.version,
      policies: d.policies.policies.map((p) => ({ id: p.id, source: p.source, effect: p.effect, step_up: p.stepUp })),
      schema: d.schema !== undefined,
      namespace: d.types.namespace,
      agent_type: az.config.agent_type,
      entities: d.entities.size,
      api_entities: d.entities.apiLayer().length,
    };
  });

  app.get('/v1/authzen/entities', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const q = parseBody(entitiesQuery, req.query, 'query');
    const d = az.domain.current;
    const all = d.entities.list().filter((e) => q.type === undefined || e.uid.type === q.type);
    const page = all.slice(q.offset, q.offset + q.limit);
    return { entities: page, total: all.length, next: q.offset + page.length < all.length ? q.offset + page.length : null };
  });

  app.post('/v1/authzen/entities', { onRequest: operatorFirst(rt, 'admin') }, async (req) => {
    const op = await requireOperator(rt, req, 'admin');
    const held = az.domain.upsert(entityList(req.body));
    req.log.info({ operator: op.id, api_entities: held }, 'AuthZEN entities upserted');
    return { api_entities: held, entities: az.domain.current.entities.size };
  });

  app.put('/v1/authzen/entities', { onRequest: operatorFirst(rt, 'admin') }, async (req) => {
    const op = await requireOperator(rt, req, 'admin');
    const held = az.domain.replace(entityList(req.body));
    req.log.info({ operator: op.id, api_entities: held }, 'AuthZEN API entities replaced');
    return { api_entities: held, entities: az.domain.current.entities.size };
  });

  app.delete('/v1/authzen/entities/:type/:id', { onRequest: operatorFirst(rt, 'admin') }, async (req) => {
    const op = await requireOperator(rt, req, 'admin');
    const p = parseBody(entityParams, req.params, 'path');
    const held = az.domain.remove({ type: p.type, id: p.id });
    req.log.info({ operator: op.id, type: p.type, id: p.id }, 'AuthZEN entity removed');
    return { api_entities: held, entities: az.domain.current.entities.size };
  });

  app.post('/v1/authzen/reload', { onRequest: operatorFirst(rt, 'admin') }, async (req) => {
    const op = await requireOperator(rt, req, 'admin');
    const d = az.domain.reload();
    req.log.info({ operator: op.id, version: d.policies.version }, 'AuthZEN policy domain reloaded');
    return { policy_version: d.policies.version, policies: d.policies.policies.length, entities: d.entities.size };
  });
}
