import { MandateError, SEVERITIES } from '@mandate/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { operatorFirst, requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';
import { alertView } from '../views.ts';

export const listSchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.string().max(200).optional(),
  state: z.enum(['open', 'acknowledged']).optional(),
  task_id: z.string().max(200).optional(),
  agent_id: z.string().max(2048).optional(),
  min_severity: z.enum(SEVERITIES).optional(),
});
export const ackSchema = z.strictObject({ note: z.string().min(1).max(1000).optional() });

export function alertRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  // hijacked stream responses would otherwise hold the server open
  app.addHook('preClose', async () => rt.alerts.closeStreams());
  app.get('/v1/alerts', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const q = parseBody(listSchema, req.query, 'query');
    const list = await rt.store.alerts.listAlerts({ limit: q.limit, after: q.after, state: q.state, taskId: q.task_id, agentId: q.agent_id, minSeverity: q.min_severity });
    return { alerts: list.map(alertView), next: list.length === q.limit ? (list.at(-1)?.id ?? null) : null };
  });

  /** where each webhook's delivery stands: delivered, pending, dropped (logged with their ids), the lease */
  app.get('/v1/alerts/delivery', async (req) => {
    await requireOperator(rt, req, 'admin');
    parseBody(z.strictObject({}), req.query ?? {}, 'query');
    return rt.alerts.deliveryStatus();
  });

  app.get<{ Params: { id: string } }>('/v1/alerts/:id', async (req) => {
    await requireOperator(rt, req, 'viewer');
    const a = await rt.store.alerts.getAlert(req.params.id);
    if (!a) throw new MandateError('NOT_FOUND', 'alert not found');
    return alertView(a);
  });

  app.post<{ Params: { id: string } }>('/v1/alerts/:id/ack', { onRequest: operatorFirst(rt, 'approver') }, async (req) => {
    const op = await requireOperator(rt, req, 'approver');
    const body = parseBody(ackSchema, req.body ?? {});
    return alertView(await rt.alerts.ack(req.params.id, op, body.note));
  });

  /**
   * Server-sent events: `alert` and `alert.acknowledged`, each with the alert's view as data.
   * Operators only (viewer), authenticated by the Authorization header. A subscriber that cannot
   * keep up (its queue full) is dropped; it reconnects and lists what it missed.
   */
  app.get('/v1/alerts/stream', async (req, reply) => {
    await requireOperator(rt, req, 'viewer');
    parseBody(z.strictObject({}), req.query ?? {}, 'query');
    const sub = rt.alerts.subscribe(reply.raw);
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'x-request-id': req.id,
      connection: 'keep-alive',
    });
    reply.raw.flushHeaders();
    sub.comment('connected');
  });
}
