import type { KillReport, KillTarget } from '@mandate/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import { operatorFirst, requireOperator } from '../auth.ts';
import { parseBody } from '../validate.ts';

const reason = z.string().min(1).max(1000);
export const killSchema = z.union([
  z.strictObject({ agent: z.string().min(1).max(2048), reason }),
  z.strictObject({ task: z.string().min(1).max(200), reason }),
  z.strictObject({ all: z.literal(true), reason }),
]);
export const unkillSchema = z.union([z.strictObject({ agent: z.string().min(1).max(2048), reason }), z.strictObject({ all: z.literal(true), reason })]);

function reportView(r: KillReport) {
  return {
    target: r.target,
    disabled_agent: r.disabledAgent ?? null,
    killed_tasks: r.killedTasks,
    emergency_stop: r.emergencyStop,
    revoked_leases: r.revokedLeases,
    audit_seq: r.auditSeq ?? null,
  };
}

export function killRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  /** Answers only once every revocation is durable; reports what it ended. */
  app.post('/v1/kill', { onRequest: operatorFirst(rt, 'admin') }, async (req) => {
    const op = await requireOperator(rt, req, 'admin');
    const body = parseBody(killSchema, req.body);
    const target: KillTarget = 'all' in body ? { all: true } : 'agent' in body ? { agent: body.agent } : { task: body.task };
    const killed = await rt.kill.kill(target, { kind: 'operator', operatorId: op.id }, body.reason);
    // the MCP gateway's sessions of those tasks end, and their secret leases with them: the kill
    // already started that through the task-ends path (calls in flight halted with TASK_KILLED
    // first, then the sessions closed); this joins it, so the answer comes once they are gone
    const leases = 'all' in body ? await rt.mcp.endAll(body.reason) : await rt.mcp.endTasks(killed.killedTasks, 'TASK_KILLED', body.reason);
    const report = { ...killed, revokedLeases: killed.revokedLeases + leases };
    req.log.warn(
      { event: 'kill', target, reason: body.reason.slice(0, 500), by: op.id, disabledAgent: report.disabledAgent ?? null, killed: report.killedTasks.length, taskIds: report.killedTasks.slice(0, 100), emergencyStop: report.emergencyStop },
      'kill',
    );
    return reportView(report);
  });

  app.post('/v1/unkill', { onRequest: operatorFirst(rt, 'admin') }, async (req) => {
    const op = await requireOperator(rt, req, 'admin');
    const body = parseBody(unkillSchema, req.body);
    const target = 'all' in body ? { all: true as const } : { agent: body.agent };
    const released = await rt.kill.unkill(target, { kind: 'operator', operatorId: op.id }, body.reason);
    req.log.warn({ event: 'unkill', target, reason: body.reason.slice(0, 500), by: op.id }, 'unkill');
    return released;
  });

  app.get('/v1/kill', async (req) => {
    await requireOperator(rt, req, 'viewer');
    return { emergency_stop: rt.kill.stopped() };
  });

}
