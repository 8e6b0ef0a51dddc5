import { MandateError, type OperatorRole } from '@mandate/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { roleAtLeast } from '../../operators.ts';
import { operatorFirst, requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';

export const createSchema = z.strictObject({ name: z.string().min(1).max(100), role: z.enum(['viewer', 'approver', 'admin']) });
export const meQuery = z.strictObject({});

/**
 * The operator actions a client (the dashboard) offers, each named by the route that takes it:
 * `GET /v1/operators/me` says which of them the caller's role may take, from the least role each
 * route requires (the OpenAPI table), so a client never keeps its own copy of who may do what.
 */
export const OPERATOR_ACTIONS = {
  kill: 'POST /v1/kill',
  unkill: 'POST /v1/unkill',
  approve: 'POST /v1/approvals/{id}/approve',
  deny: 'POST /v1/approvals/{id}/deny',
  acknowledge_alert: 'POST /v1/alerts/{id}/ack',
  lift_containment: 'POST /v1/tasks/{id}/containment/lift',
  reload_policies: 'POST /v1/policies/reload',
  manage_keys: 'POST /v1/operators/keys',
} as const;

/**
 * `leastRole`: the least operator role a route ("METHOD /path") requires, undefined when no
 * operator key may call it (then no role may take the action: a client hides it).
 */
export function operatorRoutes(app: FastifyInstance, rt: MandateRuntime, leastRole: (route: string) => OperatorRole | undefined): void {
  // who the caller is and what its role may do: for a client to hide what it would be refused
  app.get('/v1/operators/me', async (req) => {
    const op = await requireOperator(rt, req, 'viewer');
    parseBody(meQuery, req.query ?? {}, 'query');
    const can: Record<string, boolean> = {};
    for (const [action, route] of Object.entries(OPERATOR_ACTIONS)) {
      const need = leastRole(route);
      can[action] = need !== undefined && roleAtLeast(op.role, need);
    }
    return { id: op.id, name: op.name, role: op.role, can };
  });

  app.post('/v1/operators/keys', { onRequest: operatorFirst(rt, 'admin') }, async (req, reply) => {
    const op = await requireOperator(rt, req, 'admin');
    const body = parseBody(createSchema, req.body);
    const now = rt.clock.now();
    const { key, secret } = await rt.operators.create(body.name, body.role, now);
    await rt.audit.append([{ kind: 'operator.key_created', ts: now, data: { id: key.id, name: key.name, role: key.role, by: op.id } }]);
    // the secret is shown once, here, and never stored
    return reply.code(201).send({ id: key.id, name: key.name, role: key.role, key: secret });
  });

  app.get('/v1/operators/keys', async (req) => {
    await requireOperator(rt, req, 'admin');
    const keys = await rt.store.operators.listOperatorKeys();
    return {
      keys: keys.map((k) => ({ id: k.id, name: k.name, role: k.role, created_at: new Date(k.createdAt).toISOString(), revoked_at: k.revokedAt === undefined ? null : new Date(k.revokedAt).toISOString() })),
    };
  });

  app.delete<{ Params: { id: string } }>('/v1/operators/keys/:id', { onRequest: operatorFirst(rt, 'admin') }, async (req, reply) => {
    const op = await requireOperator(rt, req, 'admin');
    if (op.id === req.params.id) throw new MandateError('CONFLICT', 'an operator cannot revoke the key it is using');
    const now = rt.clock.now();
    if (!(await rt.store.operators.revokeOperatorKey(req.params.id, now))) throw new MandateError('NOT_FOUND', 'no such active key');
    await rt.audit.append([{ kind: 'operator.key_revoked', ts: now, data: { id: req.params.id, by: op.id } }]);
    return reply.code(204).send();
  });
}
