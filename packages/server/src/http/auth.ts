import { MandateError, type OperatorKey, type OperatorRole } from '@mandate/core';
import type { FastifyRequest } from 'fastify';
import type { MandateRuntime } from '../compose.ts';
import { roleAtLeast } from '../operators.ts';
import { noteAccess } from './access-log.ts';

/** The bearer credential of a request, or undefined. Only the `Bearer` scheme is accepted. */
export function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^Bearer ([^\s]+)$/i.exec(h);
  if (!m) throw new MandateError('UNAUTHENTICATED', 'Authorization must be "Bearer <credential>"');
  return m[1];
}

/** operators authenticated by an `operatorFirst` hook, for the handler of the same request */
const authenticated = new WeakMap<FastifyRequest, OperatorKey>();

export async function requireOperator(rt: MandateRuntime, req: FastifyRequest, role: OperatorRole): Promise<OperatorKey> {
  const known = authenticated.get(req);
  if (known !== undefined && roleAtLeast(known.role, role)) return known;
  const op = await rt.operators.require(bearer(req), role);
  noteAccess(req, { operator: op.id });
  return op;
}

/*
 * onRequest hooks for the routes that take a body: the credential is checked before the body is
 * read, so a caller without one is answered 401 (or 403) and never costs a parse. The handler
 * checks again (for operators, from the hook's result; for tokens, from the verified-token cache).
 */

/** The operator key must have `role`. */
export function operatorFirst(rt: MandateRuntime, role: OperatorRole): (req: FastifyRequest) => Promise<void> {
  return async (req) => {
    const op = await rt.operators.require(bearer(req), role);
    authenticated.set(req, op);
    noteAccess(req, { operator: op.id });
  };
}

/** A valid task token in the Authorization header; `missing` says what it is when it is absent. */
export function taskTokenFirst(rt: MandateRuntime, missing: string): (req: FastifyRequest) => Promise<void> {
  return async (req) => {
    const token = bearer(req);
    if (token === undefined) throw new MandateError('TOKEN_MISSING', missing);
    await rt.tokens.verify(token);
  };
}

/** A valid workload token (JWT-SVID or OIDC) in the Authorization header. */
export function workloadTokenFirst(rt: MandateRuntime, missing: string): (req: FastifyRequest) => Promise<void> {
  return async (req) => {
    const token = bearer(req);
    if (token === undefined) throw new MandateError('TOKEN_MISSING', missing);
    await rt.workload.verify(token);
  };
}

/** A task token (a JWT) or else an operator key with `role`. */
export function taskTokenOrOperatorFirst(rt: MandateRuntime, role: OperatorRole): (req: FastifyRequest) => Promise<void> {
  const operator = operatorFirst(rt, role);
  return async (req) => {
    const cred = bearer(req);
    if (cred !== undefined && cred.split('.').length === 3) await rt.tokens.verify(cred);
    else await operator(req);
  };
}
