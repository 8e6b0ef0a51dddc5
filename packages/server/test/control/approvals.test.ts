/**
 * Step-up approvals (issue 5, THREATS ASI09): bound to task, tool and the canonical argument
 * hash; given by an operator with the approver role, never an agent; single use; expiring.
 */
import { createServer, type Server } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MINUTE, errorOf, mandate, startHarness, type Harness } from '../support.ts';

interface Decision {
  effect: string;
  reasons: string[];
  approval_id: string | null;
  policy_ids: string[];
}

const MAIL = { tool: 'mail.send', args: { to: 'customer@acme.example', body: 'Your refund is on its way' } };
const withMail = () => mandate({ tools: [{ name: 'helpdesk.search_tickets' }, { name: 'mail.send', args: { to: { domains: ['acme.example'] } } }] });

describe('step-up approvals', () => {
  let h: Harness;
  let agent: string;
  let approver: string;

  beforeEach(async () => {
    h = await startHarness();
    agent = await h.registerAgent('mailer');
    approver = (await h.op('POST', '/v1/operators/keys', { name: 'alice', role: 'approver' })).json<{ key: string }>().key;
  });
  afterEach(async () => h.close());

  const call = async (token: string, body: object = MAIL) => (await h.authorize(token, body as Record<string, unknown>)).json<Decision>();
  const approve = (id: string, key = approver, verdict = 'approve') => h.op('POST', `/v1/approvals/${id}/${verdict}`, { reason: 'checked the recipient' }, key);

  it('holds the call with an approval id, then allows the same call exactly once after approval', async () => {
    const t = await h.startTask(agent, withMail());
    const held = await call(t.token);
    expect(held).toMatchObject({ effect: 'approval_required', reasons: ['APPROVAL_REQUIRED'] });
    expect(held.approval_id).toMatch(/^apr_/);
    // asking again before a decision points at the same request, not a new one
    expect((await call(t.token)).approval_id).toBe(held.approval_id);

    expect((await approve(held.approval_id as string)).statusCode).toBe(200);
    const allowed = await call(t.token);
    expect(allowed).toMatchObject({ effect: 'allow', approval_id: held.approval_id });
    expect(allowed.policy_ids).toContain(`approval:${held.approval_id}`);

    // a second use needs a new approval
    const again = await call(t.token);
    expect(again.effect).toBe('approval_required');
    expect(again.approval_id).not.toBe(held.approval_id);
    const a = (await h.op('GET', `/v1/approvals/${held.approval_id}`)).json<{ state: string; used_call_id: string }>();
    expect(a.state).toBe('used');
  });

  it('does not let an approval for some arguments allow other arguments', async () => {
    const t = await h.startTask(agent, withMail());
    const held = await call(t.token);
    await approve(held.approval_id as string);
    const other = await call(t.token, { tool: 'mail.send', args: { to: 'customer@acme.example', body: 'Send me all tickets' } });
    expect(other.effect).toBe('approval_required');
    expect(other.approval_id).not.toBe(held.approval_id);
  });

  it('does not let an approval for one task allow the same call in another task', async () => {
    const a = await h.startTask(agent, withMail());
    const b = await h.startTask(agent, withMail());
    const held = await call(a.token);
    await approve(held.approval_id as string);
    const cross = await call(b.token);
    expect(cross.effect).toBe('approval_required');
    expect(cross.approval_id).not.toBe(held.approval_id);
    // and the approval is still there, unused, for its own task
    expect((await call(a.token)).effect).toBe('allow');
  });

  it('does not allow after the approval expired, and records the expiry', async () => {
    // a token that outlives the approval, so only the approval's own expiry is tested
    await h.close();
    h = await startHarness({ config: { tokens: { ttl: '1h' } } });
    agent = await h.registerAgent('mailer');
    approver = (await h.op('POST', '/v1/operators/keys', { name: 'alice', role: 'approver' })).json<{ key: string }>().key;
    const t = await h.startTask(agent, mandate({ ttl: '1h', tools: [{ name: 'mail.send', args: { to: { domains: ['acme.example'] } } }] }));
    const held = await call(t.token);
    await approve(held.approval_id as string);
    h.clock.advance(16 * MINUTE);
    const late = await call(t.token);
    expect(late.effect).toBe('approval_required');
    expect(late.approval_id).not.toBe(held.approval_id);
    expect(await h.runtime.approvals.expireDue()).toBe(1);
    const trail = (await h.op('GET', `/v1/tasks/${t.id}/audit`)).json<{ records: { kind: string }[] }>();
    expect(trail.records.map((r) => r.kind)).toContain('approval.expired');
  });

  it('does not allow an approval decided after its expiry', async () => {
    const t = await h.startTask(agent, mandate({ ttl: '1h', tools: [{ name: 'mail.send', args: { to: { domains: ['acme.example'] } } }] }));
    const held = await call(t.token);
    h.clock.advance(16 * MINUTE);
    const late = await approve(held.approval_id as string);
    expect(late.statusCode).toBe(409);
    expect(errorOf(late).message).toMatch(/expired/);
  });

  it('refuses an approval from an agent identity', async () => {
    const t = await h.startTask(agent, withMail());
    const held = await call(t.token);
    const bySelf = await approve(held.approval_id as string, t.token);
    expect(bySelf.statusCode).toBe(403);
    const svid = await h.workloadToken(agent);
    expect((await approve(held.approval_id as string, svid)).statusCode).toBe(403);
    expect((await call(t.token)).effect).toBe('approval_required');
  });

  it('refuses an approval from a viewer', async () => {
    const viewer = (await h.op('POST', '/v1/operators/keys', { name: 'v', role: 'viewer' })).json<{ key: string }>().key;
    const t = await h.startTask(agent, withMail());
    const held = await call(t.token);
    expect((await approve(held.approval_id as string, viewer)).statusCode).toBe(403);
  });

  it('denies the call once an approver denied it', async () => {
    const t = await h.startTask(agent, withMail());
    const held = await call(t.token);
    expect((await approve(held.approval_id as string, approver, 'deny')).statusCode).toBe(200);
    expect(await call(t.token)).toMatchObject({ effect: 'deny', reasons: ['APPROVAL_DENIED'] });
  });

  it('lets exactly one of many concurrent retries use an approval', async () => {
    const t = await h.startTask(agent, withMail());
    const held = await call(t.token);
    await approve(held.approval_id as string);
    const results = await Promise.all(Array.from({ length: 12 }, () => call(t.token)));
    expect(results.filter((r) => r.effect === 'allow').length).toBe(1);
  });

  it('bounds the open requests of one task (approval fatigue)', async () => {
    const t = await h.startTask(agent, withMail());
    for (let i = 0; i < 5; i++) expect((await call(t.token, { tool: 'mail.send', args: { to: 'a@acme.example', body: `n${i}` } })).effect).toBe('approval_required');
    expect(await call(t.token, { tool: 'mail.send', args: { to: 'a@acme.example', body: 'sixth' } })).toMatchObject({ effect: 'deny', reasons: ['APPROVAL_LIMIT_REACHED'] });
  });

  it("refuses the agent owner's approval when so configured", async () => {
    await h.close();
    h = await startHarness({ config: { approvals: { forbid_owner_approval: true } } });
    agent = await h.registerAgent('mailer'); // owner team-test
    const owner = (await h.op('POST', '/v1/operators/keys', { name: 'team-test', role: 'approver' })).json<{ key: string }>().key;
    const t = await h.startTask(agent, withMail());
    const held = await call(t.token);
    expect((await approve(held.approval_id as string, owner)).statusCode).toBe(403);
  });

  it('cancels pending approvals when the task ends', async () => {
    const t = await h.startTask(agent, withMail());
    const held = await call(t.token);
    await h.inject({ method: 'POST', url: `/v1/tasks/${t.id}/complete`, headers: { authorization: `Bearer ${t.token}` }, payload: {} });
    expect((await h.op('GET', `/v1/approvals/${held.approval_id}`)).json<{ state: string }>().state).toBe('cancelled');
    expect((await approve(held.approval_id as string)).statusCode).toBe(409);
  });
});

describe('approval notifications', () => {
  let server: Server;
  let h: Harness;
  afterEach(async () => {
    await h.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('posts each new request to the configured webhook', async () => {
    const received: unknown[] = [];
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    h = await startHarness({ config: { approvals: { webhook_url: `http://127.0.0.1:${port}/hook` } } });
    const agent = await h.registerAgent('mailer');
    const t = await h.startTask(agent, withMail());
    const held = (await h.authorize(t.token, MAIL)).json<Decision>();
    for (let i = 0; i < 50 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(received).toEqual([expect.objectContaining({ type: 'approval.requested', approval: expect.objectContaining({ id: held.approval_id, tool: 'mail.send' }) })]);
  });
});
