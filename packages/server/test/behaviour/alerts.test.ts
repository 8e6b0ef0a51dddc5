/** Alert delivery: signed webhooks with retries and a bounded queue, the live stream, list and ack, the judge. */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { SignedWebhook, verifyWebhookSignature } from '../../src/webhook.ts';
import { StreamSubscriber } from '../../src/behaviour/alerts.ts';
import type { Harness } from '../support.ts';
import { behaviourHarness, call, CEILING, eventually, triageMandate } from './fixture.ts';

const SECRET = 'a-webhook-secret-of-some-length';
const quiet = { warn: () => undefined };
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Received {
  body: string;
  headers: IncomingMessage['headers'];
}

async function receiver(answer: (n: number) => number | 'hang'): Promise<{ url: string; got: Received[] }> {
  const got: Received[] = [];
  let n = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      n += 1;
      got.push({ body, headers: req.headers });
      const a = answer(n);
      if (a === 'hang') return;
      res.writeHead(a).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got };
}

function webhook(url: string, over: Partial<ConstructorParameters<typeof SignedWebhook>[0]> = {}): SignedWebhook {
  const w = new SignedWebhook({ url, secret: SECRET, maxAttempts: 4, backoffMs: 20, maxBackoffMs: 100, timeoutMs: 500, queueSize: 10, ...over }, quiet);
  cleanups.push(async () => w.close());
  return w;
}

describe('signed alert webhooks', () => {
  it('signs each delivery with HMAC-SHA256 over timestamp and body, and retries with backoff until it lands', async () => {
    const r = await receiver((n) => (n < 3 ? 500 : 204));
    const w = webhook(r.url);
    w.send({ type: 'alert', alert: { id: 'alr_1' } });
    await eventually('delivered', async () => w.stats.delivered === 1);
    expect(r.got).toHaveLength(3);
    for (const g of r.got) {
      expect(g.body).toBe('{"type":"alert","alert":{"id":"alr_1"}}');
      expect(verifyWebhookSignature(SECRET, String(g.headers['x-mandate-timestamp']), g.body, String(g.headers['x-mandate-signature']))).toBe(true);
      // another secret, or a changed body, does not verify
      expect(verifyWebhookSignature('another-secret-entirely!', String(g.headers['x-mandate-timestamp']), g.body, String(g.headers['x-mandate-signature']))).toBe(false);
      expect(verifyWebhookSignature(SECRET, String(g.headers['x-mandate-timestamp']), g.body.replace('alr_1', 'alr_2'), String(g.headers['x-mandate-signature']))).toBe(false);
    }
    expect(w.stats).toMatchObject({ delivered: 1, failed: 0, dropped: 0 });
  });

  it('gives up after max_attempts and counts the failure; a hanging receiver times out', async () => {
    const r = await receiver(() => 'hang');
    const w = webhook(r.url, { maxAttempts: 2, timeoutMs: 150 });
    w.send({ n: 1 });
    await eventually('failed', async () => w.stats.failed === 1, 5000);
    expect(r.got).toHaveLength(2);
  });

  it('keeps a bounded queue: when full, the oldest waiting event is dropped', async () => {
    const r = await receiver(() => 'hang');
    const w = webhook(r.url, { queueSize: 3, maxAttempts: 1, timeoutMs: 300 });
    for (let i = 0; i < 8; i++) w.send({ n: i });
    // one is in flight, three wait, four were dropped
    expect(w.stats.dropped).toBe(4);
    expect(w.stats.queued).toBe(3);
    await eventually('all attempted', async () => r.got.length === 4, 5000);
    expect(r.got.map((g) => (JSON.parse(g.body) as { n: number }).n)).toEqual([0, 5, 6, 7]);
  });
});

class FakeResponse extends EventEmitter {
  writes: string[] = [];
  accept = true;
  destroyed = false;
  ended = false;
  write(chunk: string): boolean {
    this.writes.push(chunk);
    return this.accept;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

describe('the live stream', () => {
  it('queues events while a subscriber is slow, flushes on drain, and drops it when its queue is full', () => {
    const raw = new FakeResponse();
    let ended: string | undefined;
    const sub = new StreamSubscriber(raw as unknown as ServerResponse, 2, (s) => (ended = s.endReason));
    raw.accept = false;
    expect(sub.push('alert', { n: 1 })).toBe(true); // written, now blocked
    expect(sub.push('alert', { n: 2 })).toBe(true);
    expect(sub.push('alert', { n: 3 })).toBe(true);
    raw.accept = true;
    raw.emit('drain');
    expect(raw.writes.map((w) => /"n":(\d)/.exec(w)?.[1])).toEqual(['1', '2', '3']);
    raw.accept = false;
    sub.push('alert', { n: 4 });
    sub.push('alert', { n: 5 });
    sub.push('alert', { n: 6 });
    expect(sub.push('alert', { n: 7 })).toBe(false);
    expect(ended).toBe('slow');
    expect(raw.destroyed).toBe(true);
    expect(sub.push('alert', { n: 8 })).toBe(false);
  });
});

describe('alerts over the API', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('streams new alerts to an operator (SSE, Authorization header), lists them with filters, and an approver acknowledges them', async () => {
    const hook = await receiver(() => 200);
    h = await behaviourHarness({ alerts: { webhooks: [{ url: hook.url, secret: SECRET, backoff_ms: 10 }] } });
    const address = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const port = new URL(address).port;
    // no credential, no stream
    const refused = await new Promise<number>((resolve) => request({ port, path: '/v1/alerts/stream', host: '127.0.0.1' }, (res) => resolve(res.statusCode ?? 0)).end());
    expect(refused).toBe(401);
    const events: string[] = [];
    const streamRes = await new Promise<IncomingMessage>((resolve) => {
      const req = request({ port, host: '127.0.0.1', path: '/v1/alerts/stream', headers: { authorization: `Bearer ${(h as Harness).admin}` } }, resolve);
      req.end();
    });
    expect(streamRes.statusCode).toBe(200);
    expect(streamRes.headers['content-type']).toMatch(/^text\/event-stream/);
    streamRes.on('data', (c: Buffer) => events.push(c.toString('utf8')));
    cleanups.push(async () => void streamRes.destroy());

    const agent = await h.registerAgent('triage', CEILING);
    const t = await h.startTask(agent, triageMandate());
    await call(h, t.token, 'vault.read_secret', { name: 'k' });
    const d = await call(h, t.token, 'http.post', { url: 'https://x.example' });
    const text = await eventually('the alert is streamed', async () => (events.join('').includes(d.call_id) ? events.join('') : undefined));
    expect(text).toMatch(/event: alert\ndata: \{/);
    await eventually('the webhook got it', async () => hook.got.some((g) => g.body.includes(d.call_id)));

    const list = (await h.op('GET', `/v1/alerts?task_id=${t.id}&min_severity=high&state=open`)).json<{ alerts: { id: string; call_id: string }[] }>().alerts;
    expect(list.map((a) => a.call_id)).toContain(d.call_id);
    expect((await h.op('GET', '/v1/alerts?min_severity=extreme')).statusCode).toBe(400);
    const id = list.find((a) => a.call_id === d.call_id)?.id as string;

    const viewer: string = (await h.op('POST', '/v1/operators/keys', { name: 'vic', role: 'viewer' })).json<{ key: string }>().key;
    expect((await h.op('POST', `/v1/alerts/${id}/ack`, { note: 'mine' }, viewer)).statusCode).toBe(403);
    const acked = await h.op('POST', `/v1/alerts/${id}/ack`, { note: 'looked into it' });
    expect(acked.statusCode).toBe(200);
    expect(acked.json()).toMatchObject({ id, state: 'acknowledged', ack_note: 'looked into it' });
    expect((await h.op('POST', `/v1/alerts/${id}/ack`, {})).statusCode).toBe(409);
    expect((await h.op('POST', '/v1/alerts/alr_nope/ack', {})).statusCode).toBe(404);
    await eventually('the acknowledgement is streamed', async () => events.join('').includes('event: alert.acknowledged'));
    // an agent's task token is not an operator credential
    expect((await h.inject({ method: 'GET', url: '/v1/alerts', headers: { authorization: `Bearer ${t.token}` } })).statusCode).toBe(403);
  });

  it('asks the judge after allowed calls; a high score becomes a signal on the next call and an alert, never an allow', async () => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ score: 0.92 })));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanups.push(async () => new Promise<void>((r) => server.close(() => r())));
    h = await behaviourHarness({
      detectors: { drift: { enabled: false }, chains: { enabled: false } },
      judge: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/judge`, timeout_ms: 1000 },
      containment: { rules: [{ detector: 'judge', severity: 'medium', min_confidence: 0.9, action: 'step_up' }] },
    });
    const agent = await h.registerAgent('triage', CEILING);
    const t = await h.startTask(agent, triageMandate());
    const first = await call(h, t.token, 'kb.search');
    expect(first.effect).toBe('allow');
    await eventually('the judge alert is stored', async () => (await (h as Harness).runtime.store.alerts.listAlerts({ limit: 10, taskId: t.id })).find((a) => a.detectors.includes('judge')));
    const next = await call(h, t.token, 'http.post', { url: 'https://x.example' });
    expect(next.signals).toEqual([expect.objectContaining({ detector: 'judge', confidence: 0.92, evidence: expect.objectContaining({ judged_call: first.call_id }) })]);
    expect(next).toMatchObject({ effect: 'approval_required', reasons: ['CONTAINMENT_STEP_UP'] });
    // a forbidden call stays forbidden whatever the judge thinks
    expect((await call(h, t.token, 'shell.exec', { cmd: 'ls' })).effect).toBe('deny');
  });

  it('ignores a judge that never answers: decisions do not wait for it', async () => {
    const hang = await receiver(() => 'hang');
    h = await behaviourHarness({ judge: { url: hang.url, timeout_ms: 5000 } });
    const agent = await h.registerAgent('triage', CEILING);
    const t = await h.startTask(agent, triageMandate());
    const started = performance.now();
    for (let i = 0; i < 5; i++) expect((await call(h, t.token, 'kb.search')).effect).toBe('allow');
    expect(performance.now() - started).toBeLessThan(2000);
    await eventually('the judge was asked', async () => hang.got.length >= 1);
  });
});
