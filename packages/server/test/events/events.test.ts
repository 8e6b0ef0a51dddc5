/**
 * The live event bus and `GET /v1/events` (issue 7): bounded per-subscriber queues, slow
 * subscribers dropped, operator auth by header only, events published only for what committed.
 */
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events.ts';
import { errorOf, mandate, startHarness, type Harness } from '../support.ts';

describe('the event bus', () => {
  it('delivers to each subscriber only the types it asked for, in order', async () => {
    const bus = new EventBus({ maxSubscribers: 4, queueLength: 10 });
    const got: string[] = [];
    const sub = bus.subscribe({ types: new Set(['kill']), onReady: () => got.push(...sub.take().map((e) => `${e.type}:${String(e.data['n'])}`)), onDrop: () => undefined });
    bus.publish('decision', { n: 1 });
    bus.publish('kill', { n: 2 });
    bus.publish('kill', { n: 3 });
    await Promise.resolve();
    expect(got).toEqual(['kill:2', 'kill:3']);
  });

  it('drops a subscriber whose queue overflows, and keeps at most queueLength events for it', async () => {
    const bus = new EventBus({ maxSubscribers: 4, queueLength: 3 });
    const drops: string[] = [];
    // never drains: a stalled client
    const slow = bus.subscribe({ onReady: () => undefined, onDrop: (r) => drops.push(r) });
    const fast = bus.subscribe({ onReady: () => fast.take(), onDrop: (r) => drops.push(`fast:${r}`) });
    for (let i = 0; i < 3; i++) bus.publish('decision', { i });
    await Promise.resolve(); // the fast one drains in a microtask
    expect(slow.pending).toBe(3);
    expect(drops).toEqual([]);
    bus.publish('decision', { i: 3 });
    expect(drops).toEqual(['slow']);
    expect(slow.closed).toBe(true);
    expect(slow.pending).toBe(0);
    expect(bus.subscribers).toBe(1);
    expect(bus.droppedSlow).toBe(1);
    // publishing after the drop costs the dropped subscriber nothing
    for (let i = 0; i < 1000; i++) {
      bus.publish('decision', { i });
      if (i % 2 === 0) await Promise.resolve();
    }
    expect(slow.pending).toBe(0);
    expect(fast.closed).toBe(false);
  });

  it('refuses a subscriber over the limit with RATE_LIMITED, and makes room when one leaves', () => {
    const bus = new EventBus({ maxSubscribers: 2, queueLength: 3 });
    const a = bus.subscribe({ onReady: () => undefined, onDrop: () => undefined });
    bus.subscribe({ onReady: () => undefined, onDrop: () => undefined });
    expect(() => bus.subscribe({ onReady: () => undefined, onDrop: () => undefined })).toThrow(expect.objectContaining({ code: 'RATE_LIMITED' }));
    a.close();
    expect(() => bus.subscribe({ onReady: () => undefined, onDrop: () => undefined })).not.toThrow();
  });

  it('ends every stream on close', () => {
    const bus = new EventBus();
    const drops: string[] = [];
    bus.subscribe({ onReady: () => undefined, onDrop: (r) => drops.push(r) });
    bus.subscribe({ onReady: () => undefined, onDrop: (r) => drops.push(r) });
    bus.close();
    expect(drops).toEqual(['closed', 'closed']);
    expect(bus.subscribers).toBe(0);
  });
});

interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

/** Reads an SSE stream over a real socket until `until` holds for the events seen. */
async function readEvents(url: string, key: string, until: (seen: SseEvent[]) => boolean, query = ''): Promise<{ res: Response; events: SseEvent[] }> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 5000);
  const res = await fetch(`${url}/v1/events${query}`, { headers: { authorization: `Bearer ${key}` }, signal: ctl.signal });
  const events: SseEvent[] = [];
  if (!res.ok || !res.body) {
    clearTimeout(timer);
    return { res, events };
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    while (!until(events)) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i: number;
      while ((i = buf.indexOf('\n\n')) !== -1) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = /^event: (.+)$/m.exec(block)?.[1];
        const data = /^data: (.+)$/m.exec(block)?.[1];
        if (ev !== undefined && data !== undefined) events.push({ event: ev, data: JSON.parse(data) as Record<string, unknown> });
      }
    }
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
  return { res, events };
}

describe('GET /v1/events', () => {
  let h: Harness;
  let url: string;

  beforeEach(async () => {
    h = await startHarness();
    url = await h.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterEach(async () => h.close());

  it('refuses a request without an operator key, and a key in the query string', async () => {
    const res = await fetch(`${url}/v1/events`);
    expect(res.status).toBe(401);
    const q = await fetch(`${url}/v1/events?key=${h.admin}`);
    expect(q.status).toBe(401);
    const agent = await h.registerAgent('sse');
    const t = await h.startTask(agent);
    const asAgent = await h.op('GET', '/v1/events', undefined, t.token);
    expect(asAgent.statusCode).toBe(403);
    expect(errorOf(asAgent).code).toBe('FORBIDDEN');
  });

  it('rejects an unknown event type with MALFORMED_REQUEST', async () => {
    const res = await h.op('GET', '/v1/events?types=decision,secrets');
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('MALFORMED_REQUEST');
  });

  it('streams a decision with agent, task, tool, effect, reasons and latency, then the task and kill events', async () => {
    const agent = await h.registerAgent('sse');
    const t = await h.startTask(agent, mandate());
    const reading = readEvents(url, h.admin, (seen) => seen.some((e) => e.event === 'kill'));
    // wait until the stream is subscribed
    for (let i = 0; i < 100 && h.runtime.events.subscribers === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await h.authorize(t.token, { tool: 'helpdesk.search_tickets', args: { query: 'refund' } });
    await h.authorize(t.token, { tool: 'shell.exec', args: { cmd: 'id' } });
    expect((await h.op('POST', '/v1/kill', { task: t.id, reason: 'test' })).statusCode).toBe(200);
    const { res, events } = await reading;
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(events[0]?.event).toBe('ready');
    const decisions = events.filter((e) => e.event === 'decision').map((e) => e.data);
    expect(decisions).toHaveLength(2);
    expect(decisions[0]).toMatchObject({ agent_id: agent, task_id: t.id, tool: 'helpdesk.search_tickets', effect: 'allow', reasons: [] });
    expect(decisions[1]).toMatchObject({ tool: 'shell.exec', effect: 'deny', reasons: ['TOOL_NOT_IN_MANDATE'] });
    for (const d of decisions) {
      expect(typeof d['latency_ms']).toBe('number');
      expect(d['call_id']).toMatch(/^call_/);
    }
    expect(events.find((e) => e.event === 'task')?.data).toMatchObject({ kind: 'killed', task_id: t.id });
    expect(events.find((e) => e.event === 'kill')?.data).toMatchObject({ kind: 'kill', killed_tasks: [t.id] });
  });

  it('streams approvals as they are requested and decided, and only the types asked for', async () => {
    const agent = await h.registerAgent('mailer');
    const t = await h.startTask(agent, mandate({ tools: [{ name: 'mail.send', args: { to: { domains: ['acme.example'] } } }] }));
    const reading = readEvents(url, h.admin, (seen) => seen.some((e) => e.data['kind'] === 'approved'), '?types=approval');
    for (let i = 0; i < 100 && h.runtime.events.subscribers === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const held = (await h.authorize(t.token, { tool: 'mail.send', args: { to: 'a@acme.example', body: 'hi' } })).json<{ approval_id: string }>();
    await h.op('POST', `/v1/approvals/${held.approval_id}/approve`, { reason: 'ok' });
    const { events } = await reading;
    expect(events.filter((e) => e.event !== 'ready').every((e) => e.event === 'approval')).toBe(true);
    expect(events.filter((e) => e.event === 'approval').map((e) => e.data['kind'])).toEqual(['requested', 'approved']);
    expect(events.find((e) => e.data['kind'] === 'requested')?.data).toMatchObject({ approval_id: held.approval_id, task_id: t.id, tool: 'mail.send' });
  });

  it('lets the stream go when the client disconnects', async () => {
    await readEvents(url, h.admin, (seen) => seen.length > 0);
    for (let i = 0; i < 100 && h.runtime.events.subscribers > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(h.runtime.events.subscribers).toBe(0);
  });

  it('drops a client that stops reading, with bounded memory, while a reading client keeps its stream', async () => {
    const { port } = new URL(url);
    // a raw client that sends the request and then never reads: its socket buffers fill up
    const stalled = connect(Number(port), '127.0.0.1');
    await new Promise<void>((r) => stalled.once('connect', () => r()));
    stalled.pause();
    stalled.write(`GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${h.admin}\r\n\r\n`);
    const reading = readEvents(url, h.admin, (seen) => seen.some((e) => e.event === 'kill'));
    for (let i = 0; i < 200 && h.runtime.events.subscribers < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(h.runtime.events.subscribers).toBe(2);
    // one shared 8 KiB payload: queues hold references, frames are only built when written.
    // Publish until the stalled socket's buffers and then its 1024-event queue overflow.
    const big = { kind: 'load', pad: 'x'.repeat(8 * 1024) };
    let published = 0;
    while (h.runtime.events.droppedSlow === 0 && published < 20_000) {
      h.runtime.events.publish('task', big);
      published += 1;
      if (published % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(h.runtime.events.droppedSlow).toBe(1);
    expect(published).toBeGreaterThan(1024);
    h.runtime.events.publish('kill', { kind: 'marker' });
    const { events } = await reading;
    // the reading client lost nothing
    expect(events.filter((e) => e.event === 'task')).toHaveLength(published);
    await expect.poll(() => h.runtime.events.subscribers).toBe(0);
    stalled.destroy();
  });
});
