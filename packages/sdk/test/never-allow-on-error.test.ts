/**
 * A guarded tool runs only after an explicit, well-formed `allow`. Against a hostile server
 * (5xx, garbage JSON, a half-sent body, silence, a redirect, a refused connection, a decision
 * for another task) the guard throws and the tool never runs.
 */
import fc from 'fast-check';
import type { ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MandateApiError} from '../src/index.ts';
import { MandateClient, MandateDeniedError, MandateSdkError, type MandateClientOptions } from '../src/index.ts';
import { closedPort, decision, fakeJwt, issued, json, startFakeServer, type FakeServer, type Handler } from './fake-server.ts';

let fake: FakeServer;

beforeEach(async () => {
  fake = await startFakeServer();
});
afterEach(async () => {
  await fake.close();
});

function clientFor(url: string, extra: Partial<MandateClientOptions> = {}): MandateClient {
  return new MandateClient({ url, workloadToken: 'workload', autoRenew: false, reportOutcomes: false, timeoutMs: 1_500, retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 5 }, ...extra });
}

/** Starts a task on the fake server, then lets `authorize` answer the guarded call. */
async function guardedCall(authorize: Handler, extra: Partial<MandateClientOptions> = {}) {
  fake.handle((req, res, raw) => {
    if (req.path === '/v1/tasks') return json(res, 201, issued('task_1', fakeJwt('a'), Date.now() + 300_000));
    return authorize(req, res, raw);
  });
  const task = await clientFor(fake.url, extra).startTask({ mandate: { purpose: 'p' } });
  let ran = 0;
  const guarded = task.guard('helpdesk.search_tickets', async (_args: { query: string }) => {
    ran += 1;
    return 'tool output';
  });
  const outcome = await guarded({ query: 'refund' }).then(
    (value) => ({ value, error: undefined }),
    (error: unknown) => ({ value: undefined, error }),
  );
  const authorizeRequests = fake.requests.filter((r) => r.path === '/v1/authorize').length;
  return { ran, ...outcome, authorizeRequests };
}

function expectCode(error: unknown, code: string): void {
  expect(error).toBeInstanceOf(MandateSdkError);
  expect((error as MandateSdkError).code).toBe(code);
}

describe('the guard never runs a tool on an error', () => {
  it('runs the tool on an explicit allow (the control case)', async () => {
    const r = await guardedCall((_q, res) => json(res, 200, decision('allow')));
    expect(r.ran).toBe(1);
    expect(r.value).toBe('tool output');
  });

  it('sends the task token, the tool and the arguments', async () => {
    await guardedCall((_q, res) => json(res, 200, decision('allow')));
    const sent = fake.requests.find((r) => r.path === '/v1/authorize');
    expect(sent?.authorization).toBe(`Bearer ${fakeJwt('a')}`);
    expect(sent?.body).toEqual({ tool: 'helpdesk.search_tickets', args: { query: 'refund' }, task_id: 'task_1' });
  });

  it('a deny throws MandateDeniedError with the reason codes and the policy ids', async () => {
    const r = await guardedCall((_q, res) => json(res, 200, decision('deny', { reasons: ['TOOL_NOT_IN_MANDATE'], policy_ids: ['mandate.tools'] })));
    expect(r.ran).toBe(0);
    expect(r.error).toBeInstanceOf(MandateDeniedError);
    expect((r.error as MandateDeniedError).reasons).toEqual(['TOOL_NOT_IN_MANDATE']);
    expect((r.error as Error).message).toBe('Mandate denied the call to helpdesk.search_tickets: TOOL_NOT_IN_MANDATE (policy mandate.tools)');
  });

  it('a 500 throws UNAVAILABLE, and an authorization is not sent twice', async () => {
    const r = await guardedCall((_q, res) => json(res, 500, { error: { code: 'INTERNAL_ERROR', message: 'boom', requestId: 'req_1' } }));
    expect(r.ran).toBe(0);
    expectCode(r.error, 'UNAVAILABLE');
    expect((r.error as MandateApiError).requestId).toBe('req_1');
    expect(r.authorizeRequests).toBe(1);
  });

  it('a 503 with an HTML page from a proxy throws', async () => {
    const r = await guardedCall((_q, res) => {
      res.writeHead(503, { 'content-type': 'text/html' });
      res.end('<html>bad gateway</html>');
    });
    expect(r.ran).toBe(0);
    expectCode(r.error, 'UNAVAILABLE');
    expect((r.error as MandateApiError).serverCode).toBe('HTTP_503');
  });

  it('a 401 envelope throws API_ERROR with the server code', async () => {
    const r = await guardedCall((_q, res) => json(res, 401, { error: { code: 'TOKEN_EXPIRED', message: 'expired', requestId: 'r' } }));
    expect(r.ran).toBe(0);
    expectCode(r.error, 'API_ERROR');
    expect((r.error as MandateApiError).serverCode).toBe('TOKEN_EXPIRED');
  });

  const garbage: [string, (res: ServerResponse) => void][] = [
    ['a body that is not JSON', (res) => json(res, 200, '{"effect":"allow",')],
    ['an empty body', (res) => json(res, 200, '')],
    ['the bare string "allow"', (res) => json(res, 200, '"allow"')],
    ['effect "Allow"', (res) => json(res, 200, decision('Allow'))],
    ['effect true', (res) => json(res, 200, decision('allow', { effect: true }))],
    ['no call id', (res) => json(res, 200, decision('allow', { call_id: undefined }))],
    ['reasons that are not a list', (res) => json(res, 200, decision('allow', { reasons: 'none' }))],
    ['a decision for another task', (res) => json(res, 200, decision('allow', { task_id: 'task_2' }))],
    ['approval_required without an approval id', (res) => json(res, 200, decision('approval_required'))],
  ];
  for (const [what, send] of garbage) {
    it(`${what} throws PROTOCOL_ERROR`, async () => {
      const r = await guardedCall((_q, res) => send(res));
      expect(r.ran).toBe(0);
      expectCode(r.error, 'PROTOCOL_ERROR');
    });
  }

  it('silence throws UNAVAILABLE after the timeout; the authorization is not re-sent', async () => {
    const started = Date.now();
    const r = await guardedCall(() => undefined);
    expect(r.ran).toBe(0);
    expectCode(r.error, 'UNAVAILABLE');
    expect((r.error as Error).message).toMatch(/within 1500 ms/);
    expect(Date.now() - started).toBeLessThan(6_000);
    expect(r.authorizeRequests).toBe(1);
  });

  it('headers then silence (a stalled body) throws UNAVAILABLE after the timeout', async () => {
    const r = await guardedCall((_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      res.write('{"effect":"allow","call_id":"c1"');
    });
    expect(r.ran).toBe(0);
    expectCode(r.error, 'UNAVAILABLE');
  });

  it('a body cut off mid-way throws', async () => {
    const r = await guardedCall((_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '500' });
      res.write('{"effect":"allow","call_id":"c1"', () => res.destroy());
    });
    expect(r.ran).toBe(0);
    expect(r.error).toBeInstanceOf(MandateSdkError);
  });

  it('an endless body is cut at the size limit', async () => {
    const r = await guardedCall((_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"effect":"allow","call_id":"c1","reasons":[],"padding":"');
      const chunk = 'x'.repeat(64 * 1024);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    }, { timeoutMs: 5_000 });
    expect(r.ran).toBe(0);
    expectCode(r.error, 'PROTOCOL_ERROR');
    expect((r.error as Error).message).toMatch(/larger than 4194304 bytes/);
  });

  it('a redirect is not followed, even to an allow', async () => {
    const r = await guardedCall((q, res) => {
      if (q.path === '/elsewhere') return json(res, 200, decision('allow'));
      res.writeHead(307, { location: `${fake.url}/elsewhere` });
      res.end();
    });
    expect(r.ran).toBe(0);
    expect(r.error).toBeInstanceOf(MandateSdkError);
    expect(fake.requests.some((q) => q.path === '/elsewhere')).toBe(false);
  });

  it('a refused connection throws UNAVAILABLE after the retries', async () => {
    const port = await closedPort();
    fake.handle((_q, res) => json(res, 201, issued('task_1', fakeJwt('a'), Date.now() + 300_000)));
    const sleeps: number[] = [];
    const client = clientFor(fake.url, { sleep: async (ms) => void sleeps.push(ms) });
    const task = await client.startTask({ mandate: {} });
    // the same task, reached through an address nothing listens on
    const offline = clientFor(`http://127.0.0.1:${port}`, { sleep: async (ms) => void sleeps.push(ms) }).resumeTask({ taskId: task.id, token: task.token, tokenExpiresAt: task.tokenExpiresAt });
    let ran = 0;
    const err = await offline.guard('helpdesk.search_tickets', (_args: object) => (ran += 1))({}).catch((e: unknown) => e);
    expect(ran).toBe(0);
    expectCode(err, 'UNAVAILABLE');
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
    expect(sleeps).toHaveLength(2);
  });

  it('an aborted call throws ABORTED and does not run', async () => {
    fake.handle((q, res) => (q.path === '/v1/tasks' ? json(res, 201, issued('task_1', fakeJwt('a'), Date.now() + 300_000)) : undefined));
    const task = await clientFor(fake.url, { timeoutMs: 5_000 }).startTask({ mandate: {} });
    const controller = new AbortController();
    let ran = 0;
    const guarded = task.guard('t', (_args: object) => (ran += 1), { signal: () => controller.signal });
    const pending = guarded({}).catch((e: unknown) => e);
    setTimeout(() => controller.abort(), 50);
    expectCode(await pending, 'ABORTED');
    expect(ran).toBe(0);
  });

  it('for any error status, even with a body that claims allow, the tool never runs', async () => {
    let status = 500;
    let body: unknown = decision('allow');
    fake.handle((q, res) => (q.path === '/v1/tasks' ? json(res, 201, issued('task_1', fakeJwt('a'), Date.now() + 300_000)) : json(res, status, body)));
    const task = await clientFor(fake.url, { retry: { retries: 0 } }).startTask({ mandate: {} });
    let ran = 0;
    const guarded = task.guard('t', (_args: object) => (ran += 1));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 300, max: 599 }).filter((s) => s !== 304), fc.oneof(fc.constant(decision('allow')), fc.json().map((t) => JSON.parse(t) as unknown)), async (s, b) => {
        status = s;
        body = b;
        const err = await guarded({}).then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(MandateSdkError);
        expect(ran).toBe(0);
      }),
      { numRuns: 60 },
    );
  });

  it('for any 200 body whose effect is not exactly "allow", the tool never runs', async () => {
    let body: unknown;
    fake.handle((q, res) => (q.path === '/v1/tasks' ? json(res, 201, issued('task_1', fakeJwt('a'), Date.now() + 300_000)) : json(res, 200, body)));
    const task = await clientFor(fake.url, { approval: { timeoutMs: 0 } }).startTask({ mandate: {} });
    let ran = 0;
    const guarded = task.guard('t', (_args: object) => (ran += 1));
    const effect = fc.oneof(fc.constantFrom('deny', 'approval_required', 'ALLOW', 'allow ', ' allow', 'allowed', 'permit', ''), fc.anything().filter((e) => e !== 'allow'));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.json().map((t) => JSON.parse(t) as unknown), effect.map((e) => decision('allow', { effect: e, approval_id: 'apr_1' }))), async (b) => {
        body = b;
        await guarded({}).then(() => undefined, (e: unknown) => e);
        expect(ran).toBe(0);
      }),
      { numRuns: 80 },
    );
  });
});
