/**
 * GET /v1/tasks/:id/events: one task's end, told to its agent (or an operator) over server-sent
 * events the moment the task-ends path hears it, over a real socket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, mandate, MINUTE, startHarness, type Harness, type StartedTask } from '../support.ts';

interface SseEvent {
  readonly event: string;
  readonly data: Record<string, unknown>;
}

interface Stream {
  readonly status: number;
  readonly events: SseEvent[];
  /** comment lines (heartbeats) seen */
  heartbeats: number;
  /** resolves when the server ends the stream */
  readonly ended: Promise<void>;
  close(): void;
}

/** Opens a task event stream and reads it in the background. */
async function open(url: string, taskId: string, credential: string | undefined): Promise<Stream> {
  const ctl = new AbortController();
  const res = await fetch(`${url}/v1/tasks/${encodeURIComponent(taskId)}/events`, { headers: credential === undefined ? {} : { authorization: `Bearer ${credential}` }, signal: ctl.signal });
  const events: SseEvent[] = [];
  const stream: Stream = { status: res.status, events, heartbeats: 0, ended: Promise.resolve(), close: () => ctl.abort() };
  if (!res.ok || !res.body) {
    events.push({ event: 'error', data: (await res.json()) as Record<string, unknown> });
    return stream;
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const ended = (async () => {
    let buf = '';
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) return;
      buf += value;
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (block.startsWith(':')) stream.heartbeats += 1;
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
      }
    }
  })();
  return { ...stream, ended, get heartbeats() { return stream.heartbeats; } };
}

/** Waits for `ok` (generously: the machine is busy). */
async function until(ok: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const ended = (s: Stream) => s.events.find((e) => e.event === 'end')?.data;

describe('GET /v1/tasks/:id/events', () => {
  let h: Harness;
  let url: string;
  let agent: string;
  beforeAll(async () => {
    h = await startHarness({ config: { tasks: { events: { heartbeat: '200ms', max_streams_per_task: 2, max_streams_per_agent: 256 } } } });
    url = await h.app.listen({ host: '127.0.0.1', port: 0 });
    agent = await h.registerAgent('watched');
  });
  afterAll(async () => h?.close());

  it('refuses a missing credential, another task\'s token, a malformed id and an unknown task, with stable codes', async () => {
    const t = await h.startTask(agent);
    const other = await h.startTask(agent);
    const none = await open(url, t.id, undefined);
    expect(none.status).toBe(401);
    const mismatch = await open(url, t.id, other.token);
    expect([mismatch.status, (mismatch.events[0]?.data['error'] as { code: string }).code]).toEqual([403, 'TOKEN_TASK_MISMATCH']);
    const badKey = await open(url, t.id, 'not-a-key');
    expect(badKey.status).toBe(401);
    const malformed = await h.op('GET', `/v1/tasks/${encodeURIComponent('task with spaces')}/events`);
    expect([malformed.statusCode, errorOf(malformed).code]).toEqual([400, 'MALFORMED_REQUEST']);
    const control = await h.op('GET', '/v1/tasks/task%0Aid/events');
    expect([control.statusCode, errorOf(control).code]).toEqual([400, 'MALFORMED_REQUEST']);
    const unknown = await h.op('GET', '/v1/tasks/task_does_not_exist/events');
    expect([unknown.statusCode, errorOf(unknown).code]).toEqual([404, 'TASK_NOT_FOUND']);
  });

  it("tells the task's own agent at once when its task is killed, then closes", async () => {
    const t = await h.startTask(agent);
    const s = await open(url, t.id, t.token);
    expect(s.status).toBe(200);
    await until(() => s.events.some((e) => e.event === 'ready'), 'ready');
    expect(s.events[0]).toMatchObject({ event: 'ready', data: { task_id: t.id, state: 'active', heartbeat_ms: 200 } });
    expect((await h.op('POST', '/v1/kill', { task: t.id, reason: 'runaway spend' })).statusCode).toBe(200);
    await s.ended;
    expect(ended(s)).toMatchObject({ task_id: t.id, state: 'killed', code: 'TASK_KILLED', reason: 'runaway spend' });
    expect(s.events.map((e) => e.event)).toEqual(['ready', 'end']);
  });

  it("ends the stream of every task of an agent that is killed, and of a task whose parent is killed", async () => {
    const parentAgent = await h.registerAgent('parent');
    const childAgent = await h.registerAgent('child');
    const parent = await h.startTask(parentAgent, mandate({ delegation: { allowed: true, max_depth: 1, max_children: 2 } }));
    const svid = await h.workloadToken(childAgent);
    const res = await h.inject({ method: 'POST', url: `/v1/tasks/${parent.id}/delegate`, headers: { authorization: `Bearer ${parent.token}` }, payload: { workload_token: svid, mandate: mandate({ tools: [{ name: 'helpdesk.search_tickets' }], budgets: { calls: 5 } }) } });
    expect(res.statusCode).toBe(201);
    const child: StartedTask = { id: res.json<StartedTask['body']>().task.id, token: res.json<StartedTask['body']>().token, body: res.json() };
    const childStream = await open(url, child.id, child.token);
    await until(() => childStream.events.length > 0, 'ready');
    await h.op('POST', '/v1/kill', { task: parent.id, reason: 'parent went rogue' });
    await childStream.ended;
    expect(ended(childStream)).toMatchObject({ task_id: child.id, state: 'killed', code: 'TASK_KILLED', reason: 'parent task killed' });

    const a = await h.startTask(agent);
    const b = await h.startTask(agent);
    const sa = await open(url, a.id, a.token);
    const sb = await open(url, b.id, h.admin);
    await until(() => sa.events.length > 0 && sb.events.length > 0, 'ready');
    await h.op('POST', '/v1/kill', { agent, reason: 'compromised' });
    await Promise.all([sa.ended, sb.ended]);
    expect(ended(sa)).toMatchObject({ task_id: a.id, code: 'TASK_KILLED', reason: 'compromised' });
    expect(ended(sb)).toMatchObject({ task_id: b.id, code: 'TASK_KILLED', reason: 'compromised' });
    await h.op('POST', '/v1/unkill', { agent, reason: 'test over' });
  });

  it('sends the end at once to a stream opened after the task ended', async () => {
    const t = await h.startTask(agent);
    expect((await h.inject({ method: 'POST', url: `/v1/tasks/${t.id}/complete`, headers: { authorization: `Bearer ${t.token}` }, payload: {} })).statusCode).toBe(200);
    const s = await open(url, t.id, t.token);
    await s.ended;
    expect(s.events.map((e) => e.event)).toEqual(['ready', 'end']);
    expect(ended(s)).toMatchObject({ state: 'completed', code: 'TASK_COMPLETED' });
  });

  it('sends heartbeats, and ends the stream with TASK_EXPIRED once the task has run out of time', async () => {
    const t = await h.startTask(agent);
    const s = await open(url, t.id, t.token);
    await until(() => s.heartbeats >= 2, 'two heartbeats');
    expect(ended(s)).toBeUndefined();
    h.clock.advance(16 * MINUTE);
    await s.ended;
    expect(ended(s)).toMatchObject({ state: 'expired', code: 'TASK_EXPIRED' });
  });

  it('bounds the streams of one task: the oldest gives way to a new one', async () => {
    const t = await h.startTask(agent);
    const first = await open(url, t.id, t.token);
    const second = await open(url, t.id, t.token);
    await until(() => first.events.length > 0 && second.events.length > 0, 'ready');
    const third = await open(url, t.id, t.token);
    await first.ended;
    expect(first.events.at(-1)).toMatchObject({ event: 'replaced' });
    await until(() => third.events.length > 0, 'ready');
    await h.op('POST', '/v1/tasks/' + t.id + '/revoke', { reason: 'done with it' });
    await Promise.all([second.ended, third.ended]);
    expect(ended(second)).toMatchObject({ code: 'TASK_REVOKED', reason: 'done with it' });
    expect(ended(third)).toMatchObject({ code: 'TASK_REVOKED' });
  });

  it('tells a suspension and keeps the stream open for the end that follows', async () => {
    const t = await h.startTask(agent);
    const s = await open(url, t.id, t.token);
    await until(() => s.events.length > 0, 'ready');
    await h.runtime.tasks.suspend(t.id, 'looks odd', { kind: 'operator', operatorId: 'test' });
    await until(() => s.events.some((e) => e.event === 'suspended'), 'suspended');
    expect(s.events.find((e) => e.event === 'suspended')?.data).toMatchObject({ state: 'suspended', code: 'TASK_SUSPENDED' });
    await h.op('POST', '/v1/kill', { task: t.id, reason: 'confirmed' });
    await s.ended;
    expect(ended(s)).toMatchObject({ code: 'TASK_KILLED', reason: 'confirmed' });
  });
});
