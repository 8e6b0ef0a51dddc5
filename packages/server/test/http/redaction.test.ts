/**
 * Secrets in a call's arguments stay out of what is written down (audit records, the access
 * log), found by name and by shape, while policy still decides on the real arguments.
 */
import { canonicalJson } from '@mandate/core';
import { buildHttpApp, sha256Hasher } from '@mandate/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allAuditRecords, mandate, startHarness, WIDE_CEILING, type DecisionBody, type Harness } from '../support.ts';

const JWT = 'eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJzcGlmZmU6Ly9hY21lL2EifQ.MEUCIQDx4vG1nN8l3rS0kq2Zb7yWf9pYt5hJm3cV8eLr6uA';
const ACCESS_TOKEN = 'AT9f8e7d6c5b4a39281706';
const PASSWORD = 'hunter2-correct-horse';

let h: Harness;
let token: string;

beforeAll(async () => {
  h = await startHarness();
  const agent = await h.registerAgent('redaction', WIDE_CEILING);
  token = (await h.startTask(agent, mandate({ tools: [{ name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } }, { name: 'helpdesk.search_tickets' }] }))).token;
});

afterAll(() => h.close());

describe('audit redaction at the HTTP edge', () => {
  it('records auth, pwd, a JWT under q and an access_token query parameter redacted, and the hash of the real arguments', async () => {
    const args = { path: `/srv/kb/guide.md?access_token=${ACCESS_TOKEN}&lang=en`, auth: 'Basic c3ZjOnB3', pwd: PASSWORD, q: JWT };
    const res = await h.authorize(token, { tool: 'fs.read_file', args, call_id: 'call-redacted' });
    expect(res.json<DecisionBody>()).toMatchObject({ effect: 'allow' });
    const all = await h.op('GET', '/v1/audit?limit=10000');
    for (const secret of [ACCESS_TOKEN, PASSWORD, JWT, 'c3ZjOnB3']) expect(all.body).not.toContain(secret);
    const decision = (await allAuditRecords(h)).find((r) => r.call_id === 'call-redacted' && r.kind === 'decision');
    expect(decision?.data['args']).toEqual({ path: '/srv/kb/guide.md?access_token=[REDACTED]&lang=en', auth: '[REDACTED]', pwd: '[REDACTED]', q: '[REDACTED]' });
    expect(decision?.data['args_hash']).toBe('sha256:' + sha256Hasher.sha256Hex(canonicalJson(args)));
  });

  it('decides on the real arguments: a path outside the prefix is refused though its record is redacted', async () => {
    const res = await h.authorize(token, { tool: 'fs.read_file', args: { path: `/etc/shadow?token=${ACCESS_TOKEN}` }, call_id: 'call-outside' });
    expect(res.json<DecisionBody>()).toMatchObject({ effect: 'deny', reasons: ['ARG_CONSTRAINT_FAILED'] });
    const decision = (await allAuditRecords(h)).find((r) => r.call_id === 'call-outside' && r.kind === 'decision');
    expect(decision?.data['args']).toEqual({ path: '/etc/shadow?token=[REDACTED]' });
  });

  it('keeps secret query parameters out of the access log line', async () => {
    const lines: string[] = [];
    const app = buildHttpApp(h.runtime, { logger: { level: 'info', stream: { write: (l) => void lines.push(l) } } });
    try {
      await app.inject({ method: 'GET', url: `/v1/audit?access_token=${ACCESS_TOKEN}&api_key=${PASSWORD}&from=1`, headers: { authorization: `Bearer ${h.admin}`, 'x-request-id': 'log-redact-1' } });
      await app.inject({ method: 'GET', url: `/v1/nowhere?sig=${ACCESS_TOKEN}`, headers: { 'x-request-id': 'log-redact-2' } });
    } finally {
      await app.close();
    }
    const text = lines.join('\n');
    expect(text).not.toContain(ACCESS_TOKEN);
    expect(text).not.toContain(PASSWORD);
    const completed = lines.map((l) => JSON.parse(l) as { reqId?: string; msg: string; req?: { url: string } }).filter((e) => e.msg === 'request completed');
    // the path only: a query string is never logged, whatever it holds
    expect(completed.find((e) => e.reqId === 'log-redact-1')?.req?.url).toBe('/v1/audit');
    expect(completed.find((e) => e.reqId === 'log-redact-2')?.req?.url).toBe('/v1/nowhere');
  });
});
