import { MandateError, verifyAuditLog } from '@mandate/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';
import { auditView, checkpointView } from '../views.ts';

const rangeSchema = z.strictObject({
  from: z.coerce.number().int().min(1).default(1),
  limit: z.coerce.number().int().min(1).max(10_000).default(500),
  /** only the records of one task (its intent, calls, decisions, actions and outcomes), oldest first */
  task_id: z.string().min(1).max(200).optional(),
  /** only the records of one call of that task (call ids are the agent's, unique only within a task) */
  call_id: z.string().min(1).max(128).optional(),
  /** the last `limit` records instead of those from `from` */
  tail: z.enum(['true', 'false']).optional(),
});

export function auditRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  app.get('/v1/audit', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const q = parseBody(rangeSchema, req.query, 'query');
    if (q.call_id !== undefined && q.task_id === undefined) throw new MandateError('INVALID_ARGUMENT', 'call_id needs task_id: a call id names a call only within its task');
    if (q.task_id !== undefined) {
      const all = await rt.store.audit.readByTask(q.task_id, q.from > 1 || q.call_id !== undefined ? 10_000 : q.limit);
      const page = all.filter((r) => r.seq >= q.from && (q.call_id === undefined || r.callId === q.call_id)).slice(0, q.limit);
      return { records: page.map(auditView), next: page.length === q.limit ? (page.at(-1)?.seq ?? 0) + 1 : null };
    }
    const head = q.tail === 'true' ? await rt.store.audit.head() : undefined;
    const from = head ? Math.max(1, head.seq - q.limit + 1) : q.from;
    const records = await rt.store.audit.readRange(from, q.limit);
    return { records: records.map(auditView), next: records.length === q.limit ? (records.at(-1)?.seq ?? 0) + 1 : null };
  });

  app.get('/v1/audit/checkpoints', async (req) => {
    await requireOperator(rt, req, 'viewer');
    return { checkpoints: (await rt.checkpoints.listCheckpoints()).map(checkpointView) };
  });

  /** Walks the whole chain against the signed checkpoints and reports the first broken link. */
  app.get('/v1/audit/verify', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const verdict = await verifyAuditLog(rt.store.audit, await rt.checkpoints.listCheckpoints(), rt.auditKeys.publicKeys(), rt.hasher);
    return {
      ok: verdict.ok,
      records: verdict.records,
      checkpoints_verified: verdict.checkpointsVerified,
      head_hash: verdict.headHash,
      problem: verdict.problem ?? null,
    };
  });
}
