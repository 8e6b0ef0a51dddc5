import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';

export function killHookRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  /** where each kill hook's delivery stands: delivered, pending, dropped (logged with their ids), the lease */
  app.get('/v1/kill-hooks', async (req) => {
    await requireOperator(rt, req, 'admin');
    parseBody(z.strictObject({}), req.query ?? {}, 'query');
    return rt.killHooks.status();
  });
}
