import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, mandate, startHarness, type DecisionBody, type Harness } from '../support.ts';

// A mandate is the agent's own declaration, so its constraints are hostile input: a pattern made
// to backtrack must not freeze the server, and a recipient list must not pass as one recipient.

let h: Harness;
let agent: string;
let url: string;

beforeAll(async () => {
  h = await startHarness();
  agent = await h.registerAgent('hostile-mandate');
  url = await h.app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await h.close();
});

describe('a hostile regex in a mandate', () => {
  it('decides a call against (a+)+b with 65,536 characters while /healthz keeps answering', { timeout: 120_000 }, async () => {
    const t = await h.startTask(agent, mandate({ tools: [{ name: 'helpdesk.draft_reply', args: { ticket_id: { regex: '(a+)+b' } } }] }));

    let settled = false;
    const decision = fetch(`${url}/v1/authorize`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tool: 'helpdesk.draft_reply', args: { ticket_id: 'a'.repeat(65_536) } }),
    }).finally(() => {
      settled = true;
    });

    // /healthz, asked again and again while the decision is made (and once after it)
    const latencies: number[] = [];
    do {
      const sent = performance.now();
      const res = await fetch(`${url}/healthz`);
      expect(res.status).toBe(200);
      latencies.push(performance.now() - sent);
    } while (!settled);

    const res = await decision;
    expect(res.status).toBe(200);
    const d = (await res.json()) as DecisionBody;
    expect(d).toMatchObject({ effect: 'deny', reasons: ['ARG_CONSTRAINT_FAILED'] });
    expect(d.details).toEqual(['argument "ticket_id": does not match the pattern']);
    // a backtracking engine took 7 s at 30 characters, doubling with each one; a generous bound
    // for a busy machine, far below what a frozen event loop would show
    expect(Math.max(...latencies)).toBeLessThan(5_000);
  });

  it('refuses, at task start, a pattern RE2 cannot run in linear time, and says which', async () => {
    const svid = await h.workloadToken(agent);
    const res = await h.inject({
      method: 'POST',
      url: '/v1/tasks',
      headers: { authorization: `Bearer ${svid}` },
      payload: { mandate: mandate({ tools: [{ name: 'helpdesk.draft_reply', args: { ticket_id: { regex: '(T-[0-9]+)\\1' } } }] }) },
    });
    expect(res.statusCode).toBe(400);
    const e = errorOf(res);
    expect(e.code).toBe('MANDATE_INVALID');
    expect(e.message).toMatch(/tools\.helpdesk\.draft_reply\.args\.ticket_id: regex "\(T-\[0-9\]\+\)\\\\1" is not supported: backreferences/);
    expect(e.details).toEqual({ path: 'tools.helpdesk.draft_reply.args.ticket_id', pattern: '(T-[0-9]+)\\1', problem: 'unsupported' });
  });
});

describe('a recipient list against a domains constraint', () => {
  it.each(['attacker@evil.example,x@acme.example', 'attacker@evil.example\r\nCc: x@acme.example', 'https://acme.example\\@evil.example/'])(
    'denies %j with domains [acme.example]',
    async (to) => {
      const t = await h.startTask(agent, mandate({ tools: [{ name: 'mail.send', args: { to: { domains: ['acme.example'] } } }] }));
      const res = await h.authorize(t.token, { tool: 'mail.send', args: { to, body: 'hello' } });
      expect(res.statusCode).toBe(200);
      const d = res.json<DecisionBody>();
      expect(d).toMatchObject({ effect: 'deny', reasons: ['ARG_CONSTRAINT_FAILED'] });
      expect(d.details[0]).toMatch(/^argument "to": no single host could be read: /);
    },
  );
});
