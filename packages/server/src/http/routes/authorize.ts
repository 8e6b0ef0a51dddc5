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

type AuthorizeBody = z.output<typeof authorizeSchema>;

const AUTHORIZE_KEYS = new Set(['task_token', 'task_id', 'call_id', 'tool', 'resource', 'args']);

function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function optionalText(v: unknown, min: number, max: number): boolean {
  return v === undefined || (typeof v === 'string' && v.length >= min && v.length <= max);
}

/**
 * `authorizeSchema`'s parse, for the body nearly every call sends: a JSON object with only the
 * schema's keys, each of its type and within its bounds, is taken as it is (zod's parse built the
 * body and its arguments again, with an issue list per field: ~2 % of the bytes a decision
 * request allocated). Anything else is handed to zod, which refuses it with the same message as
 * before. The result equals zod's (a property test holds them together).
 */
export function parseAuthorizeBody(value: unknown): AuthorizeBody {
  if (isJsonObject(value)) {
    let known = true;
    for (const k in value) {
      if (!AUTHORIZE_KEYS.has(k)) {
        known = false;
        break;
      }
    }
    const { task_token, task_id, call_id, tool, resource, args } = value;
    if (
      known &&
      typeof tool === 'string' &&
      tool.length >= 1 &&
      tool.length <= 200 &&
      optionalText(task_token, 0, 8192) &&
      optionalText(task_id, 0, 200) &&
      optionalText(call_id, 0, 128) &&
      optionalText(resource, 1, 1024) &&
      (args === undefined || (isJsonObject(args) && !Object.hasOwn(args, '__proto__')))
    ) {
      // zod's output: the schema's keys in its order, the absent optional ones left out
      const body: Partial<{ -readonly [K in keyof AuthorizeBody]: AuthorizeBody[K] }> = {};
      if (task_token !== undefined) body.task_token = task_token as string;
      if (task_id !== undefined) body.task_id = task_id as string;
      if (call_id !== undefined) body.call_id = call_id as string;
      body.tool = tool;
      if (resource !== undefined) body.resource = resource as string;
      body.args = args ?? {};
      return body as AuthorizeBody;
    }
  }
  return parseBody(authorizeSchema, value);
}

export const outcomeSchema = z.strictObject({
  task_token: z.string().max(8192).optional(),
  call_id: z.string().min(1).max(128),
  result: z.unknown(),
  is_error: z.boolean().optional(),
});

export function authorizeRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  /** A decision is always a 200; a deny is a result, not an error. Malformed requests are a 400. */
  app.post('/v1/authorize', (req, reply) => rt.tracing.request('mandate.authorize', req.headers, { 'http.route': '/v1/authorize' }, async () => {
    const body = parseAuthorizeBody(req.body);
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
