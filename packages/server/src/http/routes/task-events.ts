import { MandateError, TASK_STATE_REASON, type Task, type TaskState } from '@mandate/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { MandateRuntime } from '../../compose.ts';
import type { TaskEnd } from '../../task-ends.ts';
import { TaskStreams, type TaskStream } from '../../task-streams.ts';
import { noteAccess } from '../access-log.ts';
import { bearer, requireOperator } from '../auth.ts';
import { requestProof } from '../dpop.ts';
import { endSse, openSse, SSE_HEARTBEAT, sseFrame } from '../sse.ts';
import { parseBody } from '../validate.ts';

export const paramsSchema = z.strictObject({
  id: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[A-Za-z0-9_.:-]+$/, 'a task id is letters, digits and _ . : -'),
});

/** Who reads the stream: the task's own agent (its task token), or an operator key (viewer or above). */
type Reader = { readonly kind: 'agent' } | { readonly kind: 'operator'; readonly key: string | undefined };

async function readerOf(rt: MandateRuntime, req: FastifyRequest, reply: FastifyReply, taskId: string): Promise<Reader> {
  const cred = bearer(req);
  if (cred !== undefined && cred.split('.').length === 3) {
    // a killed or completed task's token still proves whose task it is (until it expires): its
    // agent may learn how its task ended, which is all this stream ever says
    const claims = await rt.tasks.authenticateTaskToken(cred, await requestProof(rt, req, reply, cred));
    if (claims.task_id !== taskId) throw new MandateError('TOKEN_TASK_MISMATCH', 'the token was issued for another task');
    return { kind: 'agent' };
  }
  await requireOperator(rt, req, 'viewer');
  return { kind: 'operator', key: cred };
}

/** What the stream says of a task that is no longer active. */
function endView(taskId: string, agentId: string, state: Exclude<TaskState, 'active'>, detail: string, at: number) {
  return { task_id: taskId, agent_id: agentId, state, code: TASK_STATE_REASON[state], reason: detail.slice(0, 500), at: new Date(at).toISOString() };
}

/** The task as the stream reports it now: an end (or a suspension), or undefined while it runs. */
function stateOf(task: Task, now: number): ReturnType<typeof endView> | undefined {
  if (task.state === 'active') return now >= task.expiresAt ? endView(task.id, task.agentId, 'expired', 'ttl elapsed', task.expiresAt) : undefined;
  return endView(task.id, task.agentId, task.state, task.endReason ?? '', task.endedAt ?? now);
}

/**
 * GET /v1/tasks/:id/events: server-sent events for one task. Its agent (the task token, with its
 * DPoP proof when the token is key-bound) or an operator (viewer) hears `ready`, then
 * `suspended` when the task is suspended (the stream stays open: a suspension can be lifted) and
 * one `end` when it is killed, revoked, completed or expires (its own kill, its agent's, an
 * ancestor's or an emergency stop's end of it), at once from the task-ends path, after which the
 * stream closes. A task that has already ended when the stream opens gets its `end` at once.
 * Heartbeats (comment lines) come every `tasks.events.heartbeat`, each with a re-check of the
 * task's state (a backstop for expiry) and of an operator's key.
 */
export function taskEventRoutes(app: FastifyInstance, rt: MandateRuntime): void {
  const cfg = rt.config.tasks.events;
  const streams = new TaskStreams({ perTask: cfg.max_streams_per_task, perAgent: cfg.max_streams_per_agent });

  app.get<{ Params: { id: string } }>('/v1/tasks/:id/events', async (req, reply) => {
    const { id } = parseBody(paramsSchema, req.params, 'path');
    const reader = await readerOf(rt, req, reply, id);
    let finished = false;
    let raw: ReturnType<typeof openSse> | undefined;
    /** what was said before the stream opened (an end heard while the task was being read) */
    let early = '';
    let unwatch: () => void = () => undefined;
    let heartbeat: ReturnType<typeof setInterval> | undefined;
    let entry: TaskStream | undefined;
    let suspendedSent = false;

    const say = (event: string, data: unknown) => {
      if (raw === undefined) early += sseFrame(event, data);
      else if (!raw.writableEnded && !raw.destroyed) raw.write(sseFrame(event, data));
    };
    const finish = (event: string, data: unknown) => {
      if (finished) return;
      finished = true;
      unwatch();
      if (heartbeat) clearInterval(heartbeat);
      if (entry) streams.remove(entry);
      if (raw === undefined) early += sseFrame(event, data);
      else endSse(raw, event, data);
    };
    const suspended = (view: ReturnType<typeof endView>) => {
      if (!suspendedSent && !finished) say('suspended', view);
      suspendedSent = true;
    };
    /** an end heard from the task-ends path (this node's transition, or another node's through the change feed) */
    const heard = (e: TaskEnd) => {
      // TaskEnds tells only of moves out of `active`
      const view = endView(e.taskId, e.agentId, e.state as Exclude<TaskState, 'active'>, e.detail, rt.clock.now());
      if (e.state !== 'suspended') {
        finish('end', view);
        return;
      }
      suspended(view);
      // still watched: a suspended task is killed or revoked later, or resumed
      unwatch = rt.taskEnds.watch(id, heard);
    };
    /** the task as read from the store: the backstop for what was not heard (expiry, a resumption) */
    const report = (task: Task) => {
      const now = stateOf(task, rt.clock.now());
      if (now === undefined) suspendedSent = false;
      else if (now.state === 'suspended') suspended(now);
      else finish('end', now);
    };

    // watch before reading, so an end that commits in between is heard, not lost
    unwatch = rt.taskEnds.watch(id, heard);
    let task: Task | undefined;
    try {
      task = await rt.taskState.getTask(id);
    } catch (e) {
      unwatch();
      throw new MandateError('STORE_UNAVAILABLE', `the task could not be read: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!task) {
      unwatch();
      throw new MandateError('TASK_NOT_FOUND', 'task not found');
    }
    noteAccess(req, { taskId: task.id, agentId: task.agentId });
    const agentId = task.agentId;
    if (!finished) report(task);
    const ready = sseFrame('ready', { task_id: id, agent_id: agentId, state: task.state, heartbeat_ms: cfg.heartbeat });
    raw = openSse(reply, `retry: 3000\n${ready}${early}`);
    if (finished) {
      raw.end();
      return;
    }

    const stream: TaskStream = { taskId: id, agentId, replaced: (why) => finish('replaced', { message: `a newer stream took this one's place: ${why}` }) };
    entry = stream;
    streams.add(stream);
    heartbeat = setInterval(() => {
      void (async () => {
        if (reader.kind === 'operator') {
          try {
            await rt.operators.require(reader.key, 'viewer');
          } catch {
            finish('unauthorized', { message: 'the operator key is no longer valid' });
            return;
          }
        }
        const current = await rt.taskState.getTask(id).catch(() => undefined);
        if (current) report(current);
        if (!finished && raw && !raw.writableEnded) raw.write(SSE_HEARTBEAT);
      })();
    }, cfg.heartbeat);
    heartbeat.unref();
    raw.on('close', () => {
      finished = true;
      unwatch();
      if (heartbeat) clearInterval(heartbeat);
      streams.remove(stream);
    });
  });
}
