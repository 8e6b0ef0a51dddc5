import { MandateError, parseCeiling, parseWorkloadSpiffeId, type Agent, type JsonObject } from '@mandate/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { operatorFirst, requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';
import { agentView } from '../views.ts';

const text = z.string().min(1).max(200);
export const createSchema = z.strictObject({
  id: z.string().min(1).max(2048),
  owner: text,
  type: text,
  status: z.enum(['active', 'disabled']).default('active'),
  ceiling: z.unknown().optional(),
});
export const patchSchema = z.strictObject({
  owner: text.optional(),
  type: text.optional(),
  status: z.enum(['active', 'disabled']).optional(),
  ceiling: z.unknown().optional(),
});
export const listSchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100), after: z.string().max(2048).optional() });

export function agentRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  app.post('/v1/agents', { onRequest: operatorFirst(rt, 'admin') }, async (req, reply) => {
    const op = await requireOperator(rt, req, 'admin');
    const body = parseBody(createSchema, req.body);
    let id: string;
    try {
      id = parseWorkloadSpiffeId(body.id).id;
    } catch (e) {
      // an operator's bad input, not a failed authentication
      throw new MandateError('INVALID_ARGUMENT', (e as Error).message, { reason: 'SPIFFE_ID_INVALID' });
    }
    const now = rt.clock.now();
    const agent: Agent = { id, owner: body.owner, type: body.type, status: body.status, ceiling: parseCeiling(body.ceiling ?? {}), createdAt: now, updatedAt: now };
    await rt.agents.createAgent(agent);
    await rt.audit.append([{ kind: 'agent.created', ts: now, agentId: id, data: { ...(agentView(agent) as unknown as JsonObject), by: op.id } }]);
    return reply.code(201).send(agentView(agent));
  });

  app.get('/v1/agents', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const q = parseBody(listSchema, req.query, 'query');
    const agents = await rt.agents.listAgents({ limit: q.limit, after: q.after });
    return { agents: agents.map(agentView), next: agents.length === q.limit ? (agents.at(-1)?.id ?? null) : null };
  });

  app.get<{ Params: { id: string } }>('/v1/agents/:id', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const agent = await rt.agents.getAgent(req.params.id);
    if (!agent) throw new MandateError('NOT_FOUND', 'agent not found');
    return agentView(agent);
  });

  app.patch<{ Params: { id: string } }>('/v1/agents/:id', { onRequest: operatorFirst(rt, 'admin') }, async (req) => {
    const op = await requireOperator(rt, req, 'admin');
    const body = parseBody(patchSchema, req.body);
    const patch: Parameters<MandateRuntime['agents']['updateAgent']>[1] = {};
    if (body.owner !== undefined) patch.owner = body.owner;
    if (body.type !== undefined) patch.type = body.type;
    if (body.status !== undefined) patch.status = body.status;
    if (body.ceiling !== undefined) patch.ceiling = parseCeiling(body.ceiling);
    if (Object.keys(patch).length === 0) throw new MandateError('MALFORMED_REQUEST', 'nothing to change');
    const now = rt.clock.now();
    const agent = await rt.agents.updateAgent(req.params.id, patch, now);
    await rt.audit.append([{ kind: 'agent.updated', ts: now, agentId: agent.id, data: { change: patch as unknown as JsonObject, by: op.id } }]);
    // NHI1: a disabled agent's tasks die with it, so enabling it again revives nothing
    if (patch.status === 'disabled') await rt.tasks.revokeAgentTasks(agent.id, { kind: 'operator', operatorId: op.id }, 'agent disabled');
    // a narrower ceiling may no longer admit the agent's live tasks
    else if (patch.ceiling !== undefined) await rt.supervisor.reevaluate(`ceiling of ${agent.id} changed`, { agentId: agent.id });
    return agentView(agent);
  });
}
