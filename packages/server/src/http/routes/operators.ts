import { MandateError } from '@mandate/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { operatorFirst, requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';

export const createSchema = z.strictObject({ name: z.string().min(1).max(100), role: z.enum(['viewer', 'approver', 'admin']) });

export function operatorRoutes(app: FastifyInstance, rt: MandateRuntime): void {
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
