import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { operatorFirst, requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';

export const rotateSchema = z.strictObject({ purpose: z.enum(['task-token', 'audit-checkpoint']) });

export function keyRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  /** Task-token verification keys, for enforcement points that verify tokens themselves. */
  app.get('/.well-known/jwks.json', async (_req, reply) => reply.header('cache-control', 'public, max-age=60').send(rt.taskKeys.jwks()));

  /** Audit checkpoint keys: pin these to verify an exported log independently. */
  app.get('/v1/audit/jwks', async () => rt.auditKeys.jwks());

  app.post('/v1/keys/rotate', { onRequest: operatorFirst(rt, 'admin') }, async (req) => {
    const op = await requireOperator(rt, req, 'admin');
    const body = parseBody(rotateSchema, req.body);
    const ring = body.purpose === 'task-token' ? rt.taskKeys : rt.auditKeys;
    const key = await ring.rotate();
    await rt.audit.append([{ kind: 'key.rotated', ts: rt.clock.now(), data: { purpose: body.purpose, kid: key.kid, by: op.id } }]);
    return { purpose: body.purpose, kid: key.kid };
  });
}
