import { MandateError, parseWorkloadSpiffeId, parseDuration } from '@mandate/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { operatorFirst, requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';

export const mintSchema = z.strictObject({ spiffe_id: z.string().min(1).max(2048), ttl: z.union([z.string(), z.number()]).default('5m') });

/** Development issuer: an admin mints JWT-SVIDs for demos and tests. Absent unless enabled. */
export function devRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  const issuer = rt.devIssuer;
  if (!issuer) return;
  app.post('/v1/dev/workload-tokens', { onRequest: operatorFirst(rt, 'admin') }, async (req) => {
    await requireOperator(rt, req, 'admin');
    const body = parseBody(mintSchema, req.body);
    const id = parseWorkloadSpiffeId(body.spiffe_id);
    if (id.trustDomain !== issuer.trustDomain) throw new MandateError('INVALID_ARGUMENT', `the dev issuer only mints IDs in ${issuer.trustDomain}`);
    let ttlMs: number;
    try {
      ttlMs = parseDuration(body.ttl);
    } catch (e) {
      throw new MandateError('MALFORMED_REQUEST', (e as Error).message);
    }
    if (ttlMs <= 0 || ttlMs > rt.config.identity.max_token_lifetime) throw new MandateError('INVALID_ARGUMENT', 'ttl out of range');
    return { token: await issuer.mint(id.id, { audience: rt.config.identity.audience, ttlMs }) };
  });

  app.get('/v1/dev/bundle', async () => issuer.publicJwks());
}
