import { MandateError, type OperatorKey, type OperatorRole } from '@mandate/core';
import type { FastifyRequest } from 'fastify';
import type { MandateRuntime } from '../compose.ts';

/** The bearer credential of a request, or undefined. Only the `Bearer` scheme is accepted. */
export function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^Bearer ([^\s]+)$/i.exec(h);
  if (!m) throw new MandateError('UNAUTHENTICATED', 'Authorization must be "Bearer <credential>"');
  return m[1];
}

export async function requireOperator(rt: MandateRuntime, req: FastifyRequest, role: OperatorRole): Promise<OperatorKey> {
  return rt.operators.require(bearer(req), role);
}
