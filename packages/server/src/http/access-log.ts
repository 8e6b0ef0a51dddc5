/**
 * What the access line knows about a request beyond HTTP: the decision's effect, the task and
 * agent, the operator key. Routes note them as they learn them; the line is written once, when
 * the request completes (app.ts). Only ids and closed-set values: never a token, an argument or
 * a query string.
 */
import type { FastifyRequest } from 'fastify';

export interface AccessFields {
  effect?: string;
  taskId?: string;
  agentId?: string;
  callId?: string;
  /** the operator key's id (never the key) */
  operator?: string;
}

const noted = new WeakMap<FastifyRequest, AccessFields>();

export function noteAccess(req: FastifyRequest, fields: { [K in keyof AccessFields]?: string | undefined }): void {
  const prior = noted.get(req);
  const clean: AccessFields = {};
  for (const [k, v] of Object.entries(fields) as [keyof AccessFields, string | undefined][]) if (v !== undefined && v !== null) clean[k] = v;
  noted.set(req, prior === undefined ? clean : { ...prior, ...clean });
}

export function accessFields(req: FastifyRequest): AccessFields | undefined {
  return noted.get(req);
}
