/**
 * Hostile input over every HTTP entry point (issue 9): random JSON with prototype-pollution keys,
 * unicode tricks, wrong types, deep nesting, duplicate keys and broken JSON. Each request gets a
 * clear error code (never a 5xx), and a refused request changes no state: the audit chain, the
 * agents and the tasks are as they were, and valid calls still decide correctly afterwards.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mandate, startHarness, type DecisionBody, type Harness } from './support.ts';

let h: Harness;
let agent: string;
let token: string;
let taskId: string;
let workload: string;

beforeAll(async () => {
  h = await startHarness();
  agent = await h.registerAgent('hostile');
  const t = await h.startTask(agent, mandate({ budgets: { calls: 1000 } }));
  token = t.token;
  taskId = t.id;
  workload = await h.workloadToken(agent);
});
afterAll(async () => h.close());

const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '', ' ', 'tool\u0000', 'to\u200b', 'ＴＯＯＬ', 'a'.repeat(300)];
const HOSTILE_STRINGS = [
  '',
  '\u0000',
  '\ud800',
  '\u202e/srv/kb/../../etc/passwd',
  '../../../../etc/shadow',
  '/srv/kb/%2e%2e/%2e%2e/etc/passwd',
  'helpdesk.search_tickets\u0000shell.exec',
  'shell.exec',
  'spiffe://test.local/agents/../admin',
  '{"__proto__":{"admin":true}}',
  'x'.repeat(70_000),
  '𝕒𝕕𝕞𝕚𝕟',
];

const hostileString = fc.oneof(fc.constantFrom(...HOSTILE_STRINGS), fc.string({ unit: 'binary', maxLength: 40 }));
const hostileValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    hostileString,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ maxLength: 8 })), tie('v'), { maxKeys: 4 }),
  ),
})).v;

/** A body: a random object shaped like the endpoint's (so it gets past the first checks) with hostile parts. */
function bodyFor(fields: string[]): fc.Arbitrary<unknown> {
  return fc.oneof(
    hostileValue,
    fc.record(Object.fromEntries(fields.map((f) => [f, hostileValue])), { requiredKeys: [] }),
    fc.record(Object.fromEntries(fields.map((f) => [f, hostileValue])), { requiredKeys: [] }).map((o) => ({ ...o, __proto__: { polluted: true } })),
  );
}

function nested(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** Raw texts no parser should accept, or that mean two things. */
const RAW_BODIES = [
  '{"tool": "helpdesk.search_tickets", "tool": "shell.exec", "args": {}}',
  '{"tool": "helpdesk.search_tickets", "t\\u006fol": "shell.exec", "args": {}}',
  '{"tool": "x", "args": {"a": 1, "a": 2}}',
  '{"__proto__": {"admin": true}}',
  '{"constructor": {"prototype": {"admin": true}}}',
  '{"tool": "x"',
  '{tool: "x"}',
  "{'tool': 'x'}",
  '[1, 2,]',
  'NaN',
  '\ufeff{"tool": "x"}',
  nested(200),
  '"' + 'a'.repeat(10) + '"',
  'null',
  '',
  ' ',
];

interface Endpoint {
  readonly method: 'POST' | 'PATCH' | 'PUT';
  readonly url: () => string;
  readonly auth: () => string | undefined;
  readonly fields: string[];
}

const ENDPOINTS: Endpoint[] = [
  { method: 'POST', url: () => '/v1/authorize', auth: () => token, fields: ['tool', 'args', 'resource', 'call_id', 'task_id', 'task_token'] },
  { method: 'POST', url: () => '/v1/outcomes', auth: () => token, fields: ['call_id', 'result', 'is_error', 'task_token'] },
  { method: 'POST', url: () => '/v1/tasks', auth: () => workload, fields: ['mandate'] },
  { method: 'POST', url: () => `/v1/tasks/${taskId}/delegate`, auth: () => token, fields: ['workload_token', 'mandate'] },
  { method: 'POST', url: () => '/v1/agents', auth: () => h.admin, fields: ['id', 'owner', 'type', 'ceiling'] },
  { method: 'PATCH', url: () => `/v1/agents/${encodeURIComponent(agent)}`, auth: () => h.admin, fields: ['status', 'owner', 'type', 'ceiling'] },
  { method: 'POST', url: () => '/v1/approvals/apr_nope/approve', auth: () => h.admin, fields: ['reason'] },
  { method: 'POST', url: () => '/v1/kill', auth: () => h.admin, fields: ['agent', 'task', 'all', 'reason'] },
  { method: 'POST', url: () => '/v1/policies/validate', auth: () => h.admin, fields: ['policies', 'tools'] },
  { method: 'POST', url: () => '/v1/operators/keys', auth: () => h.admin, fields: ['name', 'role'] },
  { method: 'POST', url: () => '/v1/keys/rotate', auth: () => h.admin, fields: ['purpose'] },
  { method: 'POST', url: () => '/access/v1/evaluation', auth: () => token, fields: ['subject', 'action', 'resource', 'context'] },
  { method: 'POST', url: () => '/access/v1/evaluations', auth: () => token, fields: ['subject', 'action', 'resource', 'context', 'evaluations', 'options'] },
];

/** what a refused request may append: the record of its own refusal */
const REFUSAL_RECORDS = ['decision', 'action', 'task.start_denied'];

interface Snapshot {
  readonly head: number;
  readonly agents: number;
  readonly tasks: number;
  readonly keys: number;
  readonly agentStatus: string;
}

async function snapshot(): Promise<Snapshot> {
  const agents = await h.runtime.store.agents.listAgents({ limit: 1000 });
  const tasks = await h.runtime.store.tasks.listTasks({ limit: 1000 });
  const keys = (await h.op('GET', '/v1/operators/keys')).json<{ keys: unknown[] }>().keys.length;
  return { head: (await h.runtime.store.audit.head())?.seq ?? 0, agents: agents.length, tasks: tasks.length, keys, agentStatus: agents.find((a) => a.id === agent)?.status ?? 'gone' };
}

async function send(e: Endpoint, payload: string, contentType = 'application/json') {
  const auth = e.auth();
  return h.inject({ method: e.method, url: e.url(), headers: { 'content-type': contentType, ...(auth ? { authorization: `Bearer ${auth}` } : {}) }, payload });
}

function expectCleanError(res: { statusCode: number; body: string }, where: string): void {
  expect(res.statusCode, `${where}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
  if (res.statusCode >= 400) {
    const err = (JSON.parse(res.body) as { error: { code: string; message: string } }).error;
    expect(err.code, where).toMatch(/^[A-Z][A-Z0-9_]+$/);
    expect(typeof err.message).toBe('string');
  }
}

describe('hostile input on every entry point', () => {
  it('never answers 5xx and changes nothing when it refuses', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ENDPOINTS).chain((e) => bodyFor(e.fields).map((b) => ({ e, b }))), async ({ e, b }) => {
        const before = await snapshot();
        let text: string;
        try {
          text = JSON.stringify(b) ?? 'null';
        } catch {
          return;
        }
        const res = await send(e, text);
        expectCleanError(res, `${e.method} ${e.url()}`);
        if (res.statusCode >= 400) {
          const after = await snapshot();
          expect({ ...after, head: 0 }, `${e.method} ${e.url()} ${res.body.slice(0, 200)}`).toEqual({ ...before, head: 0 });
          // an authenticated refusal is itself audited; nothing else is written
          const written = after.head > before.head ? await h.runtime.store.audit.readRange(before.head + 1, 100) : [];
          for (const r of written) expect(REFUSAL_RECORDS, `${e.url()} wrote ${r.kind}`).toContain(r.kind);
        }
        expect(Object.prototype).not.toHaveProperty('polluted');
        expect(Object.prototype).not.toHaveProperty('admin');
      }),
      { numRuns: 300, seed: 20261123 },
    );
  });

  it('refuses broken, ambiguous and duplicate-key JSON on every endpoint with MALFORMED_REQUEST', async () => {
    for (const e of ENDPOINTS) {
      for (const raw of RAW_BODIES) {
        const before = await snapshot();
        const res = await send(e, raw);
        expectCleanError(res, `${e.url()} ${raw.slice(0, 40)}`);
        // the only bodies that parse are valid JSON without duplicates: those must still be refused by the schema
        expect(res.statusCode, `${e.url()} accepted ${raw.slice(0, 40)}`).toBeGreaterThanOrEqual(400);
        expect(await snapshot()).toEqual(before);
      }
    }
    const dup = await send(ENDPOINTS[0]!, RAW_BODIES[0]!);
    expect(dup.json<{ error: { code: string; message: string } }>().error).toMatchObject({ code: 'MALFORMED_REQUEST' });
    expect(dup.body).toContain('duplicate key');
  });

  it('refuses wrong content types and garbage headers cleanly', async () => {
    const e = ENDPOINTS[0]!;
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/xml']) {
      const res = await send(e, '{"tool":"helpdesk.search_tickets","args":{}}', ct);
      expectCleanError(res, ct);
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
    }
    for (const authorization of ['Bearer', 'Bearer ' + 'x'.repeat(9000), 'Basic YWRtaW46YWRtaW4=', 'Bearer a.b.c', 'Bearer \u0000', `Bearer ${token} ${token}`]) {
      const res = await h.inject({ method: 'POST', url: '/v1/authorize', headers: { 'content-type': 'application/json', authorization }, payload: '{"tool":"helpdesk.search_tickets","args":{}}' });
      expectCleanError(res, authorization.slice(0, 30));
      if (res.statusCode === 200) expect(res.json<DecisionBody>().effect).toBe('deny');
    }
  });

  it('still decides valid calls correctly and keeps an intact chain afterwards', async () => {
    const ok = (await h.authorize(token, { tool: 'helpdesk.search_tickets', args: { query: 'refund' } })).json<DecisionBody>();
    expect(ok.effect).toBe('allow');
    const no = (await h.authorize(token, { tool: 'shell.exec', args: { cmd: 'id' } })).json<DecisionBody>();
    expect(no.effect).toBe('deny');
    expect((await h.verifyAudit()).ok).toBe(true);
  });
});
