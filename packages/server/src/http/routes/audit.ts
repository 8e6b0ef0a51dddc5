import { existsSync } from 'node:fs';
import { describeError, MandateError, type Checkpoint } from '@mandate/core';
import { readAnchorFile } from '../../anchor-file.ts';
import { verifyAudit } from '../../audit-verify.ts';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';
import { auditView, checkpointView } from '../views.ts';

export const rangeSchema = z.strictObject({
  from: z.coerce.number().int().min(1).default(1),
  limit: z.coerce.number().int().min(1).max(10_000).default(500),
  /** only the records of one task (its intent, calls, decisions, actions and outcomes), oldest first */
  task_id: z.string().min(1).max(200).optional(),
  /** only the records of one call of that task (call ids are the agent's, unique only within a task) */
  call_id: z.string().min(1).max(128).optional(),
  /** the last `limit` records instead of those from `from` */
  tail: z.enum(['true', 'false']).optional(),
});

/** beyond checkpoint_interval, what signing a checkpoint may take on a busy node */
const OVERDUE_SLACK_MS = 5_000;

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

  /**
   * Walks the whole chain against the signed checkpoints (and the anchor file, when one is
   * configured) and reports the first broken link, or the unanchored tail after the newest
   * checkpoint: how many records, since when, and whether it is older than the checkpointer
   * allows (then checkpoints are failing).
   */
  app.get('/v1/audit/verify', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const anchorFile = rt.anchorFile;
    let anchored: Checkpoint[] = [];
    let unreadable: string | undefined;
    try {
      if (anchorFile !== undefined && existsSync(anchorFile)) anchored = readAnchorFile(anchorFile);
    } catch (e) {
      unreadable = describeError(e);
    }
    let report = await verifyAudit({
      reader: rt.store.audit,
      checkpoints: await rt.checkpoints.listCheckpoints(),
      anchors: anchorFile === undefined ? undefined : { source: anchorFile, checkpoints: anchored },
      publicKeys: rt.auditKeys.publicKeys(),
      hasher: rt.hasher,
    });
    // a damaged anchor file is a finding about the log's protection, not a request error
    if (unreadable !== undefined) report = { ...report, ok: false, status: 'broken', problem: { code: 'ANCHORS_UNREADABLE', seq: 0, message: unreadable } };
    const a = rt.config.audit;
    const status = rt.audit.status();
    // a record waits at most checkpoint_interval for a checkpoint; a slack for the signing itself
    const overdue = report.unanchored !== null && rt.clock.now() - Date.parse(report.unanchored.since) > a.checkpoint_interval + OVERDUE_SLACK_MS;
    return {
      ...report,
      checkpointer: {
        every: a.checkpoint_every,
        interval_ms: a.checkpoint_interval,
        overdue,
        last_signed_at: status.lastSignedAt === undefined ? null : new Date(status.lastSignedAt).toISOString(),
        last_error: status.lastError ?? null,
      },
      anchor_sinks: rt.anchors.status().map((s) => ({ name: s.name, anchored_seq: s.anchoredSeq, pending: s.pending, delivered: s.delivered, skipped: s.skipped, last_error: s.lastError ?? null })),
    };
  });
}
