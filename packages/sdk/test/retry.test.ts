/**
 * Retries: exponential backoff with full jitter. Reads are retried on network errors,
 * timeouts, 429 and 5xx; writes (an authorization spends budget, a renewal revokes the old
 * token) only when the connection was refused, so the server never saw the first attempt.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HttpClient } from '../src/http.ts';
import { MandateClient } from '../src/index.ts';
import { closedPort, decision, fakeJwt, issued, json, startFakeServer, type FakeServer } from './fake-server.ts';

let fake: FakeServer;
beforeEach(async () => {
  fake = await startFakeServer();
});
afterEach(async () => {
  await fake.close();
});

describe('backoff', () => {
  it('doubles from the base up to the cap, scaled by the jitter', () => {
    const http = new HttpClient({ baseUrl: 'http://127.0.0.1:1', retry: { retries: 6, baseDelayMs: 100, maxDelayMs: 1_000 }, random: () => 0.999999 });
    expect([0, 1, 2, 3, 4, 5].map((n) => http.backoffMs(n))).toEqual([99, 199, 399, 799, 999, 999]);
    const jitter = [0, 0.5, 0.25];
    const jittered = new HttpClient({ baseUrl: 'http://127.0.0.1:1', retry: { baseDelayMs: 100, maxDelayMs: 1_000 }, random: () => jitter.shift() ?? 0 });
    expect([0, 1, 2].map((n) => jittered.backoffMs(n))).toEqual([0, 100, 100]);
  });

  it('rejects nonsense options', () => {
    expect(() => new HttpClient({ baseUrl: 'ftp://x' })).toThrow(TypeError);
    expect(() => new HttpClient({ baseUrl: 'not a url' })).toThrow(TypeError);
    expect(() => new HttpClient({ baseUrl: 'http://x', timeoutMs: 0 })).toThrow(TypeError);
    expect(() => new HttpClient({ baseUrl: 'http://x', retry: { retries: -1 } })).toThrow(TypeError);
  });
});

describe('retrying a read', () => {
  function client(sleeps: number[], retries = 3) {
    return new HttpClient({ baseUrl: fake.url, timeoutMs: 200, retry: { retries, baseDelayMs: 50, maxDelayMs: 1_000 }, random: () => 0.5, sleep: async (ms) => void sleeps.push(ms) });
  }

  it('retries 500, 503 and 429 with growing delays, then returns the answer', async () => {
    const answers = [500, 503, 429];
    fake.handle((_q, res) => {
      const s = answers.shift();
      return s === undefined ? json(res, 200, { ok: true }) : json(res, s, { error: { code: 'X', message: 'x', requestId: 'r' } });
    });
    const sleeps: number[] = [];
    const r = await client(sleeps).send({ method: 'GET', path: '/readyz', kind: 'read' });
    expect(r.json).toEqual({ ok: true });
    expect(fake.requests).toHaveLength(4);
    expect(sleeps).toEqual([25, 50, 100]);
  });

  it('retries a timeout and a garbled connection', async () => {
    let n = 0;
    fake.handle((_q, res) => {
      n += 1;
      if (n === 1) return; // silence: the client times out
      if (n === 2) return void res.destroy(); // connection dropped
      json(res, 200, { ok: n });
    });
    const sleeps: number[] = [];
    const r = await client(sleeps).send({ method: 'GET', path: '/readyz', kind: 'read' });
    expect(r.json).toEqual({ ok: 3 });
    expect(sleeps).toHaveLength(2);
  });

  it('gives up after the retries with the last error', async () => {
    fake.handle((_q, res) => json(res, 503, { error: { code: 'NOT_READY', message: 'starting', requestId: 'r' } }));
    const sleeps: number[] = [];
    await expect(client(sleeps, 2).send({ method: 'GET', path: '/readyz', kind: 'read' })).rejects.toMatchObject({ code: 'UNAVAILABLE', serverCode: 'NOT_READY' });
    expect(fake.requests).toHaveLength(3);
  });

  it('does not retry a 4xx', async () => {
    fake.handle((_q, res) => json(res, 403, { error: { code: 'FORBIDDEN', message: 'no', requestId: 'r' } }));
    const sleeps: number[] = [];
    await expect(client(sleeps).send({ method: 'GET', path: '/v1/x', kind: 'read' })).rejects.toMatchObject({ code: 'API_ERROR', serverCode: 'FORBIDDEN' });
    expect(fake.requests).toHaveLength(1);
  });
});

describe('retrying a write', () => {
  it('does not resend a POST that reached the server, whatever the answer', async () => {
    fake.handle((_q, res) => json(res, 503, { error: { code: 'STORE_UNAVAILABLE', message: 'x', requestId: 'r' } }));
    const sleeps: number[] = [];
    const http = new HttpClient({ baseUrl: fake.url, retry: { retries: 3 }, sleep: async (ms) => void sleeps.push(ms) });
    await expect(http.send({ method: 'POST', path: '/v1/authorize', kind: 'write', body: {} })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(fake.requests).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('retries an authorization whose connection was refused, and it goes through once the server is up', async () => {
    const port = await closedPort();
    let server: FakeServer | undefined;
    const sleeps: number[] = [];
    const client = new MandateClient({
      url: `http://127.0.0.1:${port}`,
      autoRenew: false,
      reportOutcomes: false,
      retry: { retries: 4, baseDelayMs: 10, maxDelayMs: 100 },
      random: () => 1,
      // the server comes up during the second backoff
      sleep: async (ms) => {
        sleeps.push(ms);
        if (sleeps.length === 2) {
          server = await startFakeServer(port);
          server.handle((_q, res) => json(res, 200, decision('allow')));
        }
      },
    });
    const task = client.resumeTask({ taskId: 'task_1', token: fakeJwt('a'), tokenExpiresAt: Date.now() + 300_000 });
    let ran = 0;
    try {
      const out = await task.guard('helpdesk.search_tickets', (_args: object) => (ran += 1))({});
      expect(out).toBe(1);
      expect(sleeps).toEqual([10, 20]);
      expect(server?.requests.filter((r) => r.path === '/v1/authorize')).toHaveLength(1);
    } finally {
      await server?.close();
    }
  });

  it('starting a task is a write too: a 500 is not retried', async () => {
    fake.handle((_q, res) => json(res, 500, { error: { code: 'INTERNAL_ERROR', message: 'x', requestId: 'r' } }));
    const client = new MandateClient({ url: fake.url, workloadToken: 'w', autoRenew: false, retry: { retries: 3, baseDelayMs: 1 } });
    await expect(client.startTask({ mandate: {} })).rejects.toMatchObject({ code: 'UNAVAILABLE', status: 500 });
    expect(fake.requests).toHaveLength(1);
  });

  it('a renewal answered for another task is refused', async () => {
    fake.handle((q, res) => json(res, 200, q.path.endsWith('/renew') ? issued('task_other', fakeJwt('b'), Date.now() + 300_000) : decision('allow')));
    const task = new MandateClient({ url: fake.url, autoRenew: false }).resumeTask({ taskId: 'task_1', token: fakeJwt('a'), tokenExpiresAt: Date.now() + 300_000 });
    await expect(task.renew()).rejects.toMatchObject({ code: 'PROTOCOL_ERROR' });
    expect(task.token).toBe(fakeJwt('a'));
  });
});

describe('background renewal', () => {
  it('tries again after an outage while the token lives, but not after a refusal', async () => {
    const other = await startFakeServer();
    try {
      fake.handle((_q, res) => json(res, 503, { error: { code: 'STORE_UNAVAILABLE', message: 'x', requestId: 'r' } }));
      other.handle((_q, res) => json(res, 409, { error: { code: 'TASK_COMPLETED', message: 'the task is completed', requestId: 'r' } }));
      const errors: { outage: unknown[]; refusal: unknown[] } = { outage: [], refusal: [] };
      const expiresAt = Date.now() + 1_600; // lead: half of 1.6 s; the timer waits at least 1 s
      const outage = new MandateClient({ url: fake.url, retry: { retries: 0 }, onError: (e) => errors.outage.push(e) }).resumeTask({ taskId: 'task_1', token: fakeJwt('a'), tokenExpiresAt: expiresAt });
      const refusal = new MandateClient({ url: other.url, retry: { retries: 0 }, onError: (e) => errors.refusal.push(e) }).resumeTask({ taskId: 'task_1', token: fakeJwt('a'), tokenExpiresAt: expiresAt });
      await new Promise((resolve) => setTimeout(resolve, 2_600));
      outage.close();
      refusal.close();
      expect(fake.requests.filter((r) => r.path === '/v1/tasks/task_1/renew')).toHaveLength(2);
      expect(other.requests.filter((r) => r.path === '/v1/tasks/task_1/renew')).toHaveLength(1);
      expect(errors.refusal).toEqual([expect.objectContaining({ serverCode: 'TASK_COMPLETED' })]);
      expect(errors.outage).toHaveLength(2);
    } finally {
      await other.close();
    }
  });
});
