import { foldRestrictions, MandateError, type Actor, type TaskState } from '@mandate/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { mcpResource, type MandateRuntime } from '../../compose.ts';
import { bearer, operatorFirst, requireOperator, taskTokenFirst, taskTokenOrOperatorFirst, workloadTokenFirst } from '../auth.ts';
import { parseBody } from '../validate.ts';
import { auditView, containmentView, restrictionView, taskView } from '../views.ts';
import { requestProof } from '../dpop.ts';
import { noteAccess } from '../access-log.ts';

/** `resource` (RFC 8707): the MCP gateway the token is for; it must be this server's (`server.public_url` + /mcp) */
export const startSchema = z.strictObject({ mandate: z.unknown(), resource: z.string().max(2048).optional() });
export const delegateSchema = z.strictObject({ workload_token: z.string().min(1).max(16 * 1024), mandate: z.unknown() });
/** `state`: the agent's signed task state (supervision.ts), a compact JWS made with its DPoP key */
export const renewSchema = z.strictObject({ state: z.string().min(1).max(4096).optional() });
export const revokeSchema = z.strictObject({ reason: z.string().min(1).max(500).default('revoked by an operator') });
const STATES = ['active', 'completed', 'expired', 'suspended', 'revoked', 'killed'] as const satisfies readonly TaskState[];
export const listSchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.string().max(200).optional(),
  agent_id: z.string().max(2048).optional(),
  state: z.enum(STATES).optional(),
});
/** why an operator lifts a containment: required, bounded, one printable line (it goes into the audit chain) */
export const liftSchema = z.strictObject({
  reason: z
    .string()
    .trim()
    .min(3, 'a reason of at least 3 characters is required')
    .max(500)
    .regex(/^[^\p{Cc}]*$/u, 'the reason must not contain control characters'),
});
export const auditQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(10_000).default(1000) });

function issued(r: { task: Parameters<typeof taskView>[0]; token: string; claims: { exp: number; jti: string } }) {
  return { task: taskView(r.task), token: r.token, token_expires_at: new Date(r.claims.exp * 1000).toISOString() };
}

/** Who is ending a task: its own agent (task token, with its DPoP proof when key-bound) or an admin operator (API key). */
async function actorFor(rt: MandateRuntime, req: FastifyRequest, reply: FastifyReply, taskId: string): Promise<Actor> {
  const cred = bearer(req);
  if (cred !== undefined && cred.split('.').length === 3) {
    const claims = await rt.tasks.authenticateTaskToken(cred, await requestProof(rt, req, reply, cred));
    if (claims.task_id !== taskId) throw new MandateError('TOKEN_TASK_MISMATCH', 'the token was issued for another task');
    return { kind: 'agent', agentId: claims.sub };
  }
  const op = await rt.operators.require(cred, 'admin');
  return { kind: 'operator', operatorId: op.id };
}

/** behavioural containment: stored restrictions (and, on this node, what is not stored yet) */
async function containmentOf(rt: MandateRuntime, taskId: string) {
  return rt.behaviour ? rt.behaviour.containmentOf(taskId) : rt.store.containment.listRestrictions(taskId).then((rows) => ({ state: foldRestrictions(rows), restrictions: rows }));
}

export function taskRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  /** An agent starts a task: workload token in Authorization, the mandate in the body. */
  app.post('/v1/tasks', { onRequest: workloadTokenFirst(rt, 'a workload token (JWT-SVID or OIDC) is required') }, async (req, reply) => {
    const token = bearer(req);
    if (token === undefined) throw new MandateError('TOKEN_MISSING', 'a workload token (JWT-SVID or OIDC) is required');
    const body = parseBody(startSchema, req.body);
    const mcp = mcpResource(rt.config).resource;
    if (body.resource !== undefined && body.resource !== mcp) throw new MandateError('MALFORMED_REQUEST', `invalid_target: resource must be this server's MCP gateway, ${mcp}`);
    // a DPoP proof over this request (ath = the workload token's hash) binds the task to its key
    const r = await rt.tasks.start(token, body.mandate, { proof: await requestProof(rt, req, reply, token), resource: body.resource });
    noteAccess(req, { taskId: r.task.id, agentId: r.task.agentId });
    return reply.code(201).send(issued(r));
  });

  /** A task hands a narrower mandate to a sub-agent: parent's task token, child's workload token. */
  app.post<{ Params: { id: string } }>('/v1/tasks/:id/delegate', { onRequest: taskTokenFirst(rt, "the parent task's token is required") }, async (req, reply) => {
    const token = bearer(req);
    if (token === undefined) throw new MandateError('TOKEN_MISSING', "the parent task's token is required");
    const body = parseBody(delegateSchema, req.body);
    const proof = await requestProof(rt, req, reply, token);
    const claims = await rt.tasks.authenticateTaskToken(token, proof);
    if (claims.task_id !== req.params.id) throw new MandateError('TOKEN_TASK_MISMATCH', 'the token was issued for another task');
    const r = await rt.tasks.delegate(token, body.workload_token, body.mandate, { proof });
    noteAccess(req, { taskId: r.task.id, agentId: r.task.agentId });
    return reply.code(201).send(issued(r));
  });

  app.post<{ Params: { id: string } }>('/v1/tasks/:id/renew', { onRequest: taskTokenFirst(rt, 'the current task token is required') }, async (req, reply) => {
    const token = bearer(req);
    if (token === undefined) throw new MandateError('TOKEN_MISSING', 'the current task token is required');
    const body = parseBody(renewSchema, req.body ?? {});
    const proof = await requestProof(rt, req, reply, token);
    const claims = await rt.tasks.authenticateTaskToken(token, proof);
    if (claims.task_id !== req.params.id) throw new MandateError('TOKEN_TASK_MISMATCH', 'the token was issued for another task');
    return issued(await rt.tasks.renew(token, { proof, signedState: body.state }));
  });

  /** A supervisor says the task is still watched: an operator key with the approver (or admin) role. */
  app.post<{ Params: { id: string } }>('/v1/tasks/:id/heartbeat', { onRequest: operatorFirst(rt, 'approver') }, async (req) => {
    const op = await requireOperator(rt, req, 'approver');
    parseBody(z.strictObject({}), req.body ?? {});
    const r = await rt.supervisor.heartbeat(req.params.id, { operatorId: op.id });
    const lapse = rt.supervisor.lapseMs;
    return {
      task_id: r.task.id,
      supervised_at: new Date(r.supervisedAt).toISOString(),
      next_heartbeat_before: new Date(r.supervisedAt + rt.supervisor.settings.heartbeatIntervalMs).toISOString(),
      suspended_if_silent_until: new Date(r.supervisedAt + lapse).toISOString(),
    };
  });

  app.post<{ Params: { id: string } }>('/v1/tasks/:id/complete', { onRequest: taskTokenOrOperatorFirst(rt, 'admin') }, async (req, reply) => {
    parseBody(z.strictObject({}), req.body ?? {});
    const actor = await actorFor(rt, req, reply, req.params.id);
    return taskView(await rt.tasks.complete(req.params.id, actor));
  });

  app.post<{ Params: { id: string } }>('/v1/tasks/:id/revoke', { onRequest: operatorFirst(rt, 'admin') }, async (req) => {
    const op = await requireOperator(rt, req, 'admin');
    const body = parseBody(revokeSchema, req.body ?? {});
    return taskView(await rt.tasks.revoke(req.params.id, { kind: 'operator', operatorId: op.id }, body.reason));
  });

  /**
   * An admin lifts the task's behavioural restrictions (step-up, narrow, a containment
   * suspension), audited; never a kill, a policy deny or a budget (behaviour/lift.ts).
   */
  app.post<{ Params: { id: string } }>('/v1/tasks/:id/containment/lift', async (req) => {
    const op = await requireOperator(rt, req, 'admin');
    const body = parseBody(liftSchema, req.body ?? {});
    const r = await rt.containment.lift(req.params.id, op.id, body.reason);
    req.log.warn({ task: r.task.id, lifted: r.lifted.map((x) => x.action), resumed: r.resumed, by: op.id }, 'containment lifted');
    const c = await containmentOf(rt, r.task.id);
    return {
      task: taskView(r.task),
      lifted: r.lifted.map(restrictionView),
      resumed: r.resumed,
      kept: r.kept.map(restrictionView),
      audit_seq: r.auditSeq ?? null,
      containment: containmentView(c.state, c.restrictions),
    };
  });

  app.get('/v1/tasks', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const q = parseBody(listSchema, req.query, 'query');
    const tasks = await rt.taskState.listTasks({ limit: q.limit, after: q.after, agentId: q.agent_id, state: q.state });
    return { tasks: tasks.map(taskView), next: tasks.length === q.limit ? (tasks.at(-1)?.id ?? null) : null };
  });

  app.get<{ Params: { id: string } }>('/v1/tasks/:id', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const task = await rt.taskState.getTask(req.params.id);
    if (!task) throw new MandateError('NOT_FOUND', 'task not found');
    const c = await containmentOf(rt, task.id);
    return { ...taskView(task), containment: containmentView(c.state, c.restrictions) };
  });

  app.get<{ Params: { id: string } }>('/v1/tasks/:id/audit', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const q = parseBody(auditQuery, req.query, 'query');
    const records = await rt.store.audit.readByTask(req.params.id, q.limit);
    return { records: records.map(auditView) };
  });
}
