/**
 * What the access line knows about a request beyond HTTP: the decision's effect, the task and
 * agent, the operator key. Routes note them as they learn them; the line is written once, when
 * the request completes (app.ts). Only ids and closed-set values: never a token, an argument or
 * a query string.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

export interface AccessFields {
  effect?: string;
  taskId?: string;
  agentId?: string;
  callId?: string;
  /** the operator key's id (never the key) */
  operator?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** the access line's fields noted so far (noteAccess), or null */
    mandateAccess: AccessFields | null;
  }
}

/**
 * Gives every request of `app` its access fields slot, declared up front so each request object
 * has the same shape. A field on the request, written in place, instead of a WeakMap entry and
 * a merged copy per note: that was ~2 % of the bytes a decision request allocated.
 */
export function accessFieldsSlot(app: FastifyInstance): void {
  app.decorateRequest('mandateAccess', null);
}

const KEYS = ['effect', 'taskId', 'agentId', 'callId', 'operator'] as const;

export function noteAccess(req: FastifyRequest, fields: { [K in keyof AccessFields]?: string | undefined }): void {
  let known = req.mandateAccess;
  for (const k of KEYS) {
    const v = fields[k];
    if (v === undefined || v === null) continue;
    if (known === null || known === undefined) req.mandateAccess = known = {};
    known[k] = v;
  }
}

export function accessFields(req: FastifyRequest): AccessFields | undefined {
  return req.mandateAccess ?? undefined;
}
