/**
 * The task lifecycle against a real Mandate server (embedded SQLite, example policies, the
 * development issuer): start, token renewal (on the way to a call, shared by concurrent calls,
 * and in the background), complete, delegate; outcome reports learn that this server has no
 * endpoint for them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MandateClient, MandateDeniedError, type MandateClientOptions } from '../src/index.ts';
import { startExampleServer, SUPPORT_MANDATE, type ExampleServer } from '../../../examples/support/mandate-server.ts';

let server: ExampleServer;
beforeAll(async () => {
  server = await startExampleServer();
});
afterAll(async () => {
  await server?.close();
});

/** fetch, counted by path */
function countingFetch(counts: Map<string, number>): typeof fetch {
  return async (input, init) => {
    const path = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url).pathname;
    const key = path.replace(/task_[A-Za-z0-9_-]+/, ':id');
    counts.set(key, (counts.get(key) ?? 0) + 1);
    return fetch(input, init);
  };
}

function client(extra: Partial<MandateClientOptions> = {}): MandateClient {
  return new MandateClient({ url: server.url, workloadToken: () => server.workloadToken(), autoRenew: false, ...extra });
}

async function rawAuthorize(token: string, tool: string, args: Record<string, unknown>) {
  const res = await fetch(`${server.url}/v1/authorize`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ tool, args }) });
  return (await res.json()) as { effect: string; reasons: string[] };
}

describe('token renewal', () => {
  it('renews a token close to expiry before the call; the old token is revoked', async () => {
    let skew = 0;
    const counts = new Map<string, number>();
    const task = await client({ now: () => Date.now() + skew, fetch: countingFetch(counts) }).startTask({ mandate: SUPPORT_MANDATE });
    const first = task.token;
    expect(task.tokenExpiresAt - Date.now()).toBeGreaterThan(4 * 60_000);
    // the client's clock says the token has 30 s left: under the 60 s lead
    skew = task.tokenExpiresAt - Date.now() - 30_000;
    const out = await task.guard('helpdesk.search_tickets', (a: { query: string }) => `found ${a.query}`)({ query: 'refund' });
    expect(out).toBe('found refund');
    expect(counts.get('/v1/tasks/:id/renew')).toBe(1);
    expect(task.token).not.toBe(first);
    expect(await rawAuthorize(first, 'helpdesk.search_tickets', { query: 'x' })).toMatchObject({ effect: 'deny', reasons: ['TOKEN_REVOKED'] });
    await task.complete();
  });

  it('concurrent calls share one renewal, and all of them are allowed', async () => {
    let skew = 0;
    const counts = new Map<string, number>();
    const task = await client({ now: () => Date.now() + skew, fetch: countingFetch(counts) }).startTask({ mandate: SUPPORT_MANDATE });
    skew = task.tokenExpiresAt - Date.now() - 10_000;
    const search = task.guard('helpdesk.search_tickets', (a: { query: string }) => a.query);
    const results = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((q) => search({ query: q })));
    expect(results).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(counts.get('/v1/tasks/:id/renew')).toBe(1);
    await task.complete();
  });

  it('renews in the background before expiry while no call is made', async () => {
    const short = await startExampleServer({ 'tokens.ttl': '3s' });
    try {
      const c = new MandateClient({ url: short.url, workloadToken: () => short.workloadToken(), autoRenew: true });
      const task = await c.startTask({ mandate: SUPPORT_MANDATE });
      const first = task.token;
      const firstExpiry = task.tokenExpiresAt;
      // lead = half the 3 s lifetime: the timer fires about 1.5 s in
      await expect.poll(() => task.token, { timeout: 4_000, interval: 100 }).not.toBe(first);
      expect(task.tokenExpiresAt).toBeGreaterThan(firstExpiry);
      // past the first token's expiry, calls still go through on the renewed one
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, firstExpiry + 100 - Date.now())));
      expect(await task.guard('helpdesk.search_tickets', (_args: object) => 'ok')({ query: 'x' })).toBe('ok');
      expect((await rawAuthorize(first, 'helpdesk.search_tickets', {})).effect).toBe('deny');
      await task.complete();
    } finally {
      await short.close();
    }
  });
});

describe('completing and delegating', () => {
  it('after complete, a guarded call is denied TASK_COMPLETED and the tool does not run', async () => {
    const task = await client().startTask({ mandate: SUPPORT_MANDATE });
    const token = task.token;
    await task.complete();
    let ran = 0;
    const err = await task.guard('helpdesk.search_tickets', (_args: object) => (ran += 1))({ query: 'x' }).catch((e: unknown) => e);
    expect(ran).toBe(0);
    expect(err).toBeInstanceOf(MandateDeniedError);
    expect((err as MandateDeniedError).reasons).toContain('TASK_COMPLETED');
    expect(await rawAuthorize(token, 'helpdesk.search_tickets', {})).toMatchObject({ effect: 'deny' });
  });

  it('delegates a narrower mandate to a sub-agent; the child can do only what it was handed', async () => {
    const parent = await client().startTask({ mandate: { ...SUPPORT_MANDATE, delegation: { allowed: true, max_depth: 1, max_children: 2 } } });
    const childAgent = await server.registerAgent('researcher');
    const child = await parent.delegate({
      workloadToken: () => server.workloadToken(childAgent),
      mandate: { purpose: 'Search tickets about the refund', environment: 'prod', ttl: '5m', tools: [{ name: 'helpdesk.search_tickets' }], data_classes: ['internal'], budgets: { calls: 5 } },
    });
    expect(child.id).not.toBe(parent.id);
    expect(child.agentId).toBe(childAgent);
    expect(await child.guard('helpdesk.search_tickets', (_args: object) => 'ok')({ query: 'refund' })).toBe('ok');
    const err = await child.guard('mail.send', (_args: object) => 'sent')({ to: 'customer@acme.example', body: 'x' }).catch((e: unknown) => e);
    expect((err as MandateDeniedError).reasons).toEqual(['TOOL_NOT_IN_MANDATE']);
    // completing the parent ends the child
    await parent.complete();
    const after = await child.guard('helpdesk.search_tickets', (_args: object) => 'ok')({ query: 'refund' }).catch((e: unknown) => e);
    expect(after).toBeInstanceOf(MandateDeniedError);
    child.close();
  });

  it('a delegation the parent may not make is refused with the server code', async () => {
    const parent = await client().startTask({ mandate: SUPPORT_MANDATE });
    const childAgent = await server.registerAgent('helper');
    await expect(parent.delegate({ workloadToken: () => server.workloadToken(childAgent), mandate: { ...SUPPORT_MANDATE, ttl: '5m' } })).rejects.toMatchObject({ code: 'API_ERROR', serverCode: 'DELEGATION_NOT_ALLOWED' });
    await parent.complete();
  });
});

describe('approval wait', () => {
  it('fails with MandateApprovalRequiredError carrying the approval id when nobody approves in time', async () => {
    const pending: string[] = [];
    const task = await client({ approval: { timeoutMs: 300, pollIntervalMs: 50, onPending: (p) => pending.push(p.approvalId) } }).startTask({ mandate: SUPPORT_MANDATE });
    let ran = 0;
    const err = await task.guard('mail.send', (_args: object) => (ran += 1))({ to: 'customer@acme.example', body: 'hi' }).catch((e: unknown) => e);
    expect(ran).toBe(0);
    expect(err).toMatchObject({ name: 'MandateApprovalRequiredError', code: 'APPROVAL_REQUIRED', reasons: ['APPROVAL_REQUIRED'] });
    const approvalId = (err as { approvalId: string }).approvalId;
    expect(approvalId).toMatch(/^apr_/);
    // the same request was polled, not re-filed: one approval, announced once
    expect(pending).toEqual([approvalId]);
    expect((await server.approval(approvalId)).state).toBe('pending');
    await task.complete();
  });

  it('an operator who denies the request ends the wait with APPROVAL_DENIED', async () => {
    const task = await client({ approval: { timeoutMs: 10_000, pollIntervalMs: 50 } }).startTask({ mandate: SUPPORT_MANDATE });
    let ran = 0;
    const call = task.guard('mail.send', (_args: object) => (ran += 1))({ to: 'customer@acme.example', body: 'hi' }).catch((e: unknown) => e);
    const list = async () => ((await server.op('GET', `/v1/approvals?state=pending&task_id=${task.id}`)).json as { approvals: { id: string }[] }).approvals;
    await expect.poll(async () => (await list()).length, { timeout: 5_000, interval: 20 }).toBe(1);
    const [first] = await list();
    expect((await server.op('POST', `/v1/approvals/${first?.id}/deny`, { reason: 'not this customer' })).status).toBe(200);
    const err = await call;
    expect(ran).toBe(0);
    expect((err as MandateDeniedError).reasons).toContain('APPROVAL_DENIED');
    await task.complete();
  });
});

describe('outcome reports', () => {
  it("reports each allowed call's result where the server takes reports, and stops after a 'no route' where it does not", async () => {
    const counts = new Map<string, number>();
    const task = await client({ fetch: countingFetch(counts) }).startTask({ mandate: SUPPORT_MANDATE });
    const probe = await fetch(`${server.url}/v1/outcomes`, { method: 'POST', headers: { authorization: `Bearer ${task.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ call_id: 'call_none', result: 'x' }) });
    const routeExists = !((await probe.text()).includes('no route'));
    const search = task.guard('helpdesk.search_tickets', (_args: object) => 'ok');
    expect(await search({ query: 'a' })).toBe('ok');
    expect(await search({ query: 'b' })).toBe('ok');
    expect(counts.get('/v1/outcomes')).toBe(routeExists ? 2 : 1);
    if (routeExists) expect((await server.taskAudit(task.id)).filter((r) => r.kind === 'outcome')).toHaveLength(2);
    await task.complete();
  });
});
