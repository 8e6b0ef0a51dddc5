import { MandateError, type ApprovalState } from '@mandate/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { operatorFirst, requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';
import { approvalView } from '../views.ts';

const STATES = ['pending', 'approved', 'denied', 'used', 'expired', 'cancelled'] as const satisfies readonly ApprovalState[];
export const listSchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.string().max(200).optional(),
  state: z.enum(STATES).optional(),
  task_id: z.string().max(200).optional(),
});
export const decideSchema = z.strictObject({ reason: z.string().min(1).max(1000) });

/**
 * Approval fatigue on the approver's side: so many decisions per approver per window. An
 * approver whose last decision left the window is forgotten (a sweep at most once a window), so
 * the list holds only those who decided within the last two windows.
 */
export class ApproverWindow {
  private readonly seen = new Map<string, number[]>();
  private readonly max: number;
  private readonly windowMs: number;
  private lastSweep = Number.NEGATIVE_INFINITY;

  constructor(max: number, windowMs: number) {
    this.max = max;
    this.windowMs = windowMs;
  }

  take(operatorId: string, now: number): void {
    this.sweep(now);
    const recent = (this.seen.get(operatorId) ?? []).filter((t) => now - t < this.windowMs);
    if (recent.length >= this.max) {
      throw new MandateError('RATE_LIMITED', `at most ${this.max} approval decisions per ${this.windowMs / 60_000} minutes per approver`);
    }
    recent.push(now);
    this.seen.set(operatorId, recent);
  }

  /** approvers remembered */
  get size(): number {
    return this.seen.size;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    for (const [id, times] of this.seen) if (now - (times.at(-1) ?? Number.NEGATIVE_INFINITY) >= this.windowMs) this.seen.delete(id);
  }
}

export function approvalRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  const window = new ApproverWindow(rt.config.approvals.max_decisions_per_approver, rt.config.approvals.approver_window);

  app.get('/v1/approvals', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const q = parseBody(listSchema, req.query, 'query');
    const list = await rt.approvals.list({ limit: q.limit, after: q.after, state: q.state, taskId: q.task_id });
    const now = rt.clock.now();
    return { approvals: list.map((a) => approvalView(a, now)), next: list.length === q.limit ? (list.at(-1)?.id ?? null) : null };
  });

  app.get<{ Params: { id: string } }>('/v1/approvals/:id', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const a = await rt.approvals.get(req.params.id);
    if (!a) throw new MandateError('NOT_FOUND', 'approval not found');
    return approvalView(a, rt.clock.now());
  });

  for (const verdict of ['approve', 'deny'] as const) {
    // an approver, never an agent: operator keys only, and agent JWTs are refused outright
    app.post<{ Params: { id: string } }>(`/v1/approvals/:id/${verdict}`, { onRequest: operatorFirst(rt, 'approver') }, async (req) => {
      const op = await requireOperator(rt, req, 'approver');
      const body = parseBody(decideSchema, req.body);
      window.take(op.id, rt.clock.now());
      return approvalView(await rt.approvals.decide(req.params.id, op, verdict, body.reason), rt.clock.now());
    });
  }
}
