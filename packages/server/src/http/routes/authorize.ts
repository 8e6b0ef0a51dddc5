import { checkBinding, MandateError, type JsonObject, type JsonValue } from '@mandate/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { bearer } from '../auth.ts';
import { parseBody } from '../validate.ts';
import { noteAccess } from '../access-log.ts';
import { decisionView } from '../views.ts';
import { proofError, requestProof } from '../dpop.ts';

/**
 * The call shape every enforcement point maps onto: AuthZEN's subject/action/resource/context
 * become task token / tool / resource / args on the same `decide()`.
 */
export const authorizeSchema = z.strictObject({
  task_token: z.string().max(8192).optional(),
  task_id: z.string().max(200).optional(),
  call_id: z.string().max(128).optional(),
  tool: z.string().min(1).max(200),
  resource: z.string().min(1).max(1024).optional(),
  args: z.record(z.string(), z.unknown()).default({}),
});

export const outcomeSchema = z.strictObject({
  task_token: z.string().max(8192).optional(),
  call_id: z.string().min(1).max(128),
  result: z.unknown(),
  is_error: z.boolean().optional(),
});

export function authorizeRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  /** A decision is always a 200; a deny is a result, not an error. Malformed requests are a 400. */
  app.post('/v1/authorize', (req, reply) => rt.tracing.request('mandate.authorize', req.headers, { 'http.route': '/v1/authorize' }, async () => {
    const body = parseBody(authorizeSchema, req.body);
    const header = bearer(req);
    if (header !== undefined && body.task_token !== undefined && header !== body.task_token) {
      throw new MandateError('MALFORMED_REQUEST', 'two different task tokens (header and body)');
    }
    const taskToken = header ?? body.task_token;
    if (taskToken === undefined) throw new MandateError('TOKEN_MISSING', 'a task token is required (Authorization: Bearer or task_token)');
    const decision = await rt.engine.decide({
      taskToken,
      tool: body.tool,
      resource: body.resource,
      args: body.args as JsonObject,
      callId: body.call_id,
      taskId: body.task_id,
      proof: await requestProof(rt, req, reply, taskToken),
    });
    noteAccess(req, { effect: decision.effect, taskId: decision.taskId, agentId: decision.agentId, callId: decision.callId });
    if (decision.effect !== 'allow') req.log.info({ callId: decision.callId, reasons: decision.reasons }, 'call not allowed');
    return decisionView(decision);
  }));

  /**
   * The result of an allowed call, reported by the enforcement point that forwarded it: its digest
   * is audited (linked to the call) and its values feed the task's provenance, so a later call
   * whose arguments came only from untrusted output is seen as such.
   */
  app.post('/v1/outcomes', async (req, reply) => {
    const body = parseBody(outcomeSchema, req.body);
    const header = bearer(req);
    if (header !== undefined && body.task_token !== undefined && header !== body.task_token) {
      throw new MandateError('MALFORMED_REQUEST', 'two different task tokens (header and body)');
    }
    const taskToken = header ?? body.task_token;
    if (taskToken === undefined) throw new MandateError('TOKEN_MISSING', 'a task token is required (Authorization: Bearer or task_token)');
    if (body.result === undefined) throw new MandateError('MALFORMED_REQUEST', 'result is required');
    // a key-bound task's outcomes are reported with its proof too: a stolen token cannot poison provenance
    const proof = await requestProof(rt, req, reply, taskToken);
    const bad = proofError(proof) ?? proofError(checkBinding((await rt.tokens.verify(taskToken)).cnf?.jkt, proof));
    if (bad) throw bad;
    const r = await rt.engine.recordOutcome({ taskToken, callId: body.call_id, result: body.result as JsonValue, isError: body.is_error });
    noteAccess(req, { taskId: r.taskId, callId: r.callId });
    return { call_id: r.callId, task_id: r.taskId, tool: r.tool, trust: r.trust, result_digest: r.resultDigest, audit_seq: r.auditSeq ?? null };
  });
}
