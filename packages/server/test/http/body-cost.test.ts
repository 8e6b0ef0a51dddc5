/**
 * What a hostile body may cost before it is refused (THREATS.md "resource overload"): a body
 * nested or wide past the limits is refused from its text, before JSON.parse builds it, and a
 * body sent to a route that needs a credential is not read at all until the credential is checked.
 * bench/hostile-bodies.ts prints the CPU time per refused body.
 */
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { errorOf, mandate, startHarness, type Harness } from '../support.ts';

let h: Harness;
let viewer: string;
let taskId: string;
let taskToken: string;

beforeAll(async () => {
  h = await startHarness();
  const created = await h.op('POST', '/v1/operators/keys', { name: 'viewer', role: 'viewer' });
  viewer = created.json<{ key: string }>().key;
  const t = await h.startTask(await h.registerAgent('body-cost'), mandate());
  taskId = t.id;
  taskToken = t.token;
});
afterAll(async () => h.close());
afterEach(() => {
  vi.restoreAllMocks();
});

/** just under the default body limit (1 MiB) */
const SIZE = 1024 * 1024 - 64;

/** bodies that are cheap to send and were expensive to parse and refuse */
const HOSTILE: Record<string, string> = {
  'nested arrays': '['.repeat(SIZE / 2) + ']'.repeat(SIZE / 2),
  'nested objects': '{"a":'.repeat(SIZE / 6) + '1' + '}'.repeat(SIZE / 6),
  'a wide array': '[' + '0,'.repeat(SIZE / 2 - 1) + '0]',
  'a wide object': '{' + Array.from({ length: Math.floor(SIZE / 12) }, (_, i) => `"k${i.toString(36).padStart(6, '0')}":0`).join(',') + '}',
  'an array of empty objects': '[' + '{},'.repeat(SIZE / 3 - 1) + '{}]',
};

/** JSON.parse calls that were handed a text at least `min` characters long */
function bigParses(spy: { mock: { calls: unknown[][] } }, min = 100_000): number {
  return spy.mock.calls.filter((c) => typeof c[0] === 'string' && c[0].length >= min).length;
}

describe('hostile bodies near the body limit', () => {
  it.each(Object.entries(HOSTILE))('refuses %s with 400 LIMIT_EXCEEDED without parsing it', async (_what, body) => {
    expect(body.length).toBeLessThanOrEqual(1024 * 1024);
    const head = (await h.runtime.store.audit.head())?.seq ?? 0;
    const spy = vi.spyOn(JSON, 'parse');
    for (const url of ['/v1/authorize', '/v1/agents', '/v1/tasks']) {
      const res = await h.inject({ method: 'POST', url, headers: { authorization: `Bearer ${url === '/v1/agents' ? h.admin : taskToken}`, 'content-type': 'application/json' }, payload: body });
      expect(res.statusCode, url).toBe(url === '/v1/tasks' ? 401 : 400);
      if (url !== '/v1/tasks') expect(errorOf(res).code, url).toBe('LIMIT_EXCEEDED');
    }
    expect(bigParses(spy)).toBe(0);
    spy.mockRestore();
    expect((await h.runtime.store.audit.head())?.seq ?? 0).toBe(head);
  });

  it('still parses a large body inside the limits', async () => {
    const spy = vi.spyOn(JSON, 'parse');
    const args = { rows: Array.from({ length: 2000 }, (_, i) => ({ id: i, text: 'x'.repeat(200) })) };
    const res = await h.inject({ method: 'POST', url: '/v1/authorize', headers: { authorization: `Bearer ${taskToken}`, 'content-type': 'application/json' }, payload: JSON.stringify({ tool: 'helpdesk.search_tickets', args }) });
    expect(res.statusCode).toBe(200);
    expect(bigParses(spy)).toBe(1);
  });
});

/** every route that takes a body and needs a credential in the Authorization header */
const CREDENTIALED: readonly (readonly [method: 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, role: 'viewer' | 'approver' | 'admin' | 'task'])[] = [
  ['POST', '/v1/agents', 'admin'],
  ['PATCH', '/v1/agents/spiffe%3A%2F%2Ftest.local%2Fagents%2Fx', 'admin'],
  ['POST', '/v1/alerts/al_x/ack', 'approver'],
  ['POST', '/v1/approvals/ap_x/approve', 'approver'],
  ['POST', '/v1/approvals/ap_x/deny', 'approver'],
  ['POST', '/v1/authzen/entities', 'admin'],
  ['PUT', '/v1/authzen/entities', 'admin'],
  ['DELETE', '/v1/authzen/entities/App::User/alice', 'admin'],
  ['POST', '/v1/authzen/reload', 'admin'],
  ['POST', '/v1/dev/workload-tokens', 'admin'],
  ['POST', '/v1/keys/rotate', 'admin'],
  ['POST', '/v1/kill', 'admin'],
  ['POST', '/v1/unkill', 'admin'],
  ['POST', '/v1/mcp/pins/s/t/approve', 'admin'],
  ['PUT', '/v1/secrets/x', 'admin'],
  ['DELETE', '/v1/secrets/x', 'admin'],
  ['POST', '/v1/operators/keys', 'admin'],
  ['DELETE', '/v1/operators/keys/op_x', 'admin'],
  ['POST', '/v1/policies/validate', 'viewer'],
  ['POST', '/v1/policies/shadow', 'viewer'],
  ['POST', '/v1/policies/reload', 'admin'],
  ['POST', '/v1/tasks/t_x/heartbeat', 'approver'],
  ['POST', '/v1/tasks/t_x/revoke', 'admin'],
  ['POST', '/v1/tasks/t_x/complete', 'admin'],
  ['POST', '/v1/tasks', 'task'],
  ['POST', '/v1/tasks/t_x/delegate', 'task'],
  ['POST', '/v1/tasks/t_x/renew', 'task'],
];

describe('credentials before bodies', () => {
  it.each(CREDENTIALED)('%s %s answers a missing or invalid credential with 401 (403) before reading the body', async (method, url) => {
    const spy = vi.spyOn(JSON, 'parse');
    const broken = '{"not json'.padEnd(200_000, ' ');
    for (const authorization of [undefined, 'Bearer mk_' + 'x'.repeat(43), 'Bearer a.b.c', 'Basic YTpi']) {
      const res = await h.inject({ method, url, headers: { 'content-type': 'application/json', ...(authorization !== undefined ? { authorization } : {}) }, payload: broken });
      // 403 for an agent credential on an operator route
      expect([401, 403], `${authorization ?? 'no credential'}: ${res.body}`).toContain(res.statusCode);
    }
    expect(bigParses(spy)).toBe(0);
  });

  it.each(CREDENTIALED.filter(([, , role]) => role === 'admin' || role === 'approver'))('%s %s answers a key without the role with 403 before reading the body', async (method, url) => {
    const res = await h.inject({ method, url, headers: { 'content-type': 'application/json', authorization: `Bearer ${viewer}` }, payload: '{"not json' });
    expect(res.statusCode).toBe(403);
    expect(errorOf(res).code).toBe('FORBIDDEN');
  });

  it('reads the body once the credential is good', async () => {
    const res = await h.inject({ method: 'POST', url: `/v1/tasks/${taskId}/renew`, headers: { authorization: `Bearer ${taskToken}`, 'content-type': 'application/json' }, payload: '{"not json' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('MALFORMED_REQUEST');
    const op = await h.op('POST', '/v1/agents', { id: 'spiffe://test.local/agents/after', owner: 'o', type: 't', ceiling: { tools: ['helpdesk.*'] } });
    expect(op.statusCode).toBe(201);
  });
});

/**
 * Sends `rounds` rounds of sixteen hostile bodies at once from a worker thread (its own event
 * loop, so the sending costs the server nothing) and resolves with their statuses.
 */
function sendFromWorker(base: string, token: string, rounds: number): Promise<number[]> {
  const code = `
    const { request } = require('node:http');
    const { workerData, parentPort } = require('node:worker_threads');
    const SIZE = ${SIZE};
    const bodies = [
      '['.repeat(SIZE / 2) + ']'.repeat(SIZE / 2),
      '{"a":'.repeat(SIZE / 6) + '1' + '}'.repeat(SIZE / 6),
      '[' + '{},'.repeat(SIZE / 3 - 1) + '{}]',
    ].map((b) => Buffer.from(b));
    const post = (path, body, headers) => new Promise((resolve, reject) => {
      const req = request(workerData.base + path, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...headers } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end(body);
    });
    (async () => {
      const statuses = [];
      for (let round = 0; round < workerData.rounds; round++) {
        // half of them from callers without a credential
        const sent = [];
        for (let i = 0; i < 8; i++) {
          const body = bodies[i % bodies.length];
          sent.push(post('/v1/authorize', body, { authorization: 'Bearer ' + workerData.token }), post('/v1/agents', body, {}));
        }
        statuses.push(...(await Promise.all(sent)));
      }
      parentPort.postMessage(statuses);
    })().catch((e) => { throw e; });
  `;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { base, token, rounds } });
    worker.once('message', (statuses: number[]) => {
      resolve(statuses);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

describe('other callers while hostile bodies arrive', () => {
  it('answers /healthz promptly while several hostile bodies arrive at once', async () => {
    const base = await h.app.listen({ host: '127.0.0.1', port: 0 });
    let sending = true;
    const latencies: number[] = [];
    const probe = (async () => {
      while (sending) {
        const t0 = performance.now();
        const res = await fetch(`${base}/healthz`);
        expect(res.status).toBe(200);
        latencies.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const statuses = await sendFromWorker(base, taskToken, 3).finally(() => (sending = false));
    await probe;
    expect(statuses).toHaveLength(48);
    expect(statuses.every((s) => s === 400 || s === 401)).toBe(true);
    expect(latencies.length).toBeGreaterThan(0);
    // generous for a busy machine: refusing these bodies used to hold the event loop for seconds
    expect(Math.max(...latencies)).toBeLessThan(1000);
  }, 120_000);
});
