import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, mandate, startHarness, type DecisionBody, type Harness } from '../support.ts';

// THREATS.md "resource overload" and the traps paragraph: a body over a size limit or a
// compressed one must not bypass inspection, and hostile input must not harm other agents.

const BODY_LIMIT = 4096;
const MAX_JSON_DEPTH = 8;
const ARGS_MAX_DEPTH = 3;

let h: Harness;
let token: string;
let taskId: string;
let otherToken: string;

beforeAll(async () => {
  h = await startHarness({
    config: {
      server: { body_limit_bytes: BODY_LIMIT, max_json_depth: MAX_JSON_DEPTH },
      limits: { args_max_depth: ARGS_MAX_DEPTH, args_max_entries: 16, args_max_string: 64, args_max_nodes: 64 },
    },
  });
  const t = await h.startTask(await h.registerAgent('limits'), mandate({ budgets: { calls: 1000 } }));
  token = t.token;
  taskId = t.id;
  otherToken = (await h.startTask(await h.registerAgent('limits-bystander'), mandate({ budgets: { calls: 1000 } }))).token;
});

afterAll(async () => {
  await h.close();
});

const validCall = { tool: 'helpdesk.search_tickets', args: { query: 'refund' } };

function nested(depth: number): unknown {
  let v: unknown = 'leaf';
  for (let i = 0; i < depth; i++) v = { n: v };
  return v;
}

async function auditHead(): Promise<number> {
  return (await h.runtime.store.audit.head())?.seq ?? 0;
}

async function budgetUsed(): Promise<number> {
  return (await h.runtime.store.budgets.usage(taskId, validCall.tool)).calls;
}

/** After a hostile request the server still decides valid calls correctly and the chain is intact. */
async function expectStillHealthy(): Promise<void> {
  for (const t of [token, otherToken]) {
    const res = await h.authorize(t, validCall);
    expect(res.statusCode).toBe(200);
    expect(res.json<DecisionBody>().effect).toBe('allow');
  }
  const denied = await h.authorize(token, { tool: 'shell.exec', args: {} });
  expect(denied.json<DecisionBody>().effect).toBe('deny');
  const v = await h.verifyAudit();
  expect(v.ok).toBe(true);
  expect(v.problem).toBeNull();
}

function raw(payload: string | Buffer, headers: Record<string, string>) {
  return h.inject({ method: 'POST', url: '/v1/authorize', headers: { authorization: `Bearer ${token}`, ...headers }, payload });
}

describe('hostile request bodies', () => {
  it('refuses a body over body_limit_bytes with 413 PAYLOAD_TOO_LARGE and decides nothing', async () => {
    const head = await auditHead();
    const used = await budgetUsed();
    const big = JSON.stringify({ ...validCall, args: { query: 'x'.repeat(BODY_LIMIT) } });
    const res = await raw(big, { 'content-type': 'application/json' });
    expect(res.statusCode).toBe(413);
    expect(errorOf(res).code).toBe('PAYLOAD_TOO_LARGE');
    expect(await auditHead()).toBe(head);
    expect(await budgetUsed()).toBe(used);
    await expectStillHealthy();
  });

  it('refuses an over-limit body on operator endpoints too', async () => {
    const res = await h.inject({
      method: 'POST',
      url: '/v1/agents',
      headers: { authorization: `Bearer ${h.admin}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ id: 'spiffe://test.local/agents/big', owner: 'x'.repeat(BODY_LIMIT), type: 't' }),
    });
    expect(res.statusCode).toBe(413);
    expect(errorOf(res).code).toBe('PAYLOAD_TOO_LARGE');
    await expectStillHealthy();
  });

  it.each([
    ['gzip', (b: Buffer) => gzipSync(b)],
    ['deflate', (b: Buffer) => deflateSync(b)],
    ['br', (b: Buffer) => brotliCompressSync(b)],
    ['GZIP', (b: Buffer) => gzipSync(b)],
    ['identity, gzip', (b: Buffer) => gzipSync(b)],
  ])('refuses a %s-encoded body with 415 UNSUPPORTED_MEDIA_TYPE and makes no decision', async (encoding, compress) => {
    const head = await auditHead();
    const used = await budgetUsed();
    // a valid call that would be allowed if it were decompressed and decided
    const body = compress(Buffer.from(JSON.stringify(validCall)));
    const res = await raw(body, { 'content-type': 'application/json', 'content-encoding': encoding });
    expect(res.statusCode).toBe(415);
    expect(errorOf(res).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(res.body).not.toContain('"effect"');
    expect(await auditHead()).toBe(head);
    expect(await budgetUsed()).toBe(used);
    await expectStillHealthy();
  });

  it('refuses a compression bomb before reading it', async () => {
    const head = await auditHead();
    const bomb = gzipSync(Buffer.from(JSON.stringify({ ...validCall, args: { query: 'a'.repeat(50 * BODY_LIMIT) } })));
    expect(bomb.length).toBeLessThan(BODY_LIMIT);
    const res = await raw(bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(res.statusCode).toBe(415);
    expect(await auditHead()).toBe(head);
    await expectStillHealthy();
  });

  it('accepts an explicit identity encoding', async () => {
    const res = await raw(JSON.stringify(validCall), { 'content-type': 'application/json', 'content-encoding': 'identity' });
    expect(res.statusCode).toBe(200);
    expect(res.json<DecisionBody>().effect).toBe('allow');
  });

  it.each([
    ['text/plain', JSON.stringify(validCall)],
    ['application/x-www-form-urlencoded', 'tool=helpdesk.search_tickets'],
    ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="tool"\r\n\r\nhelpdesk.search_tickets\r\n--x--'],
    ['application/xml', '<tool>helpdesk.search_tickets</tool>'],
    ['application/jsonx', JSON.stringify(validCall)],
  ])('refuses content-type %s with 415 UNSUPPORTED_MEDIA_TYPE', async (contentType, payload) => {
    const head = await auditHead();
    const res = await raw(payload, { 'content-type': contentType });
    expect(res.statusCode).toBe(415);
    expect(errorOf(res).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(await auditHead()).toBe(head);
    await expectStillHealthy();
  });

  it('accepts JSON with a charset parameter', async () => {
    const res = await raw(JSON.stringify(validCall), { 'content-type': 'application/json; charset=utf-8' });
    expect(res.statusCode).toBe(200);
    expect(res.json<DecisionBody>().effect).toBe('allow');
  });

  it.each([
    ['truncated JSON', '{"tool": "helpdesk.search_tickets", "args": {'],
    ['a trailing comma', '{"tool": "helpdesk.search_tickets",}'],
    ['single quotes', "{'tool': 'helpdesk.search_tickets'}"],
    ['an empty body', ''],
    ['whitespace only', '   \n'],
    ['NaN', '{"tool": "helpdesk.search_tickets", "args": {"n": NaN}}'],
  ])('refuses %s with 400 MALFORMED_REQUEST', async (_what, payload) => {
    const head = await auditHead();
    const res = await raw(payload, { 'content-type': 'application/json' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('MALFORMED_REQUEST');
    expect(await auditHead()).toBe(head);
    await expectStillHealthy();
  });

  it.each([
    ['an array', [validCall]],
    ['a string', 'helpdesk.search_tickets'],
    ['null', null],
    ['a number', 42],
  ])('refuses a JSON body that is %s with 400 MALFORMED_REQUEST', async (_what, body) => {
    const res = await raw(JSON.stringify(body), { 'content-type': 'application/json' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('MALFORMED_REQUEST');
  });

  it('refuses JSON nested deeper than max_json_depth with 400 before deciding', async () => {
    const head = await auditHead();
    const res = await raw(JSON.stringify({ ...validCall, extra: nested(MAX_JSON_DEPTH + 2) }), { 'content-type': 'application/json' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('LIMIT_EXCEEDED');
    expect(await auditHead()).toBe(head);
    // deep nesting of arrays, the cheapest form, is refused the same way
    const arrays = '['.repeat(1000) + ']'.repeat(1000);
    const res2 = await raw(arrays, { 'content-type': 'application/json' });
    expect(res2.statusCode).toBe(400);
    expect(errorOf(res2).code).toBe('LIMIT_EXCEEDED');
    await expectStillHealthy();
  });

  it.each([
    ['__proto__ at the top', `{"tool":"helpdesk.search_tickets","__proto__":{"polluted":true}}`],
    ['__proto__ inside args', `{"tool":"helpdesk.search_tickets","args":{"__proto__":{"polluted":true}}}`],
    ['constructor inside args', `{"tool":"helpdesk.search_tickets","args":{"constructor":{"prototype":{"polluted":true}}}}`],
    ['prototype inside args', `{"tool":"helpdesk.search_tickets","args":{"q":{"prototype":1}}}`],
  ])('refuses %s with 400 MALFORMED_REQUEST and pollutes nothing', async (_what, payload) => {
    const head = await auditHead();
    const res = await raw(payload, { 'content-type': 'application/json' });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('MALFORMED_REQUEST');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(await auditHead()).toBe(head);
    await expectStillHealthy();
  });

  it('refuses __proto__ keys on operator endpoints too', async () => {
    const res = await h.inject({
      method: 'POST',
      url: '/v1/agents',
      headers: { authorization: `Bearer ${h.admin}`, 'content-type': 'application/json' },
      payload: '{"id":"spiffe://test.local/agents/proto","owner":"o","type":"t","ceiling":{"__proto__":{"tools":["*"]}}}',
    });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('MALFORMED_REQUEST');
  });

  it.each([
    ['an unknown top-level field', { ...validCall, effect: 'allow' }],
    ['a misspelt field', { tool: 'helpdesk.search_tickets', arguments: {} }],
    ['a missing tool', { args: {} }],
    ['args that are not an object', { tool: 'helpdesk.search_tickets', args: ['a'] }],
    ['an over-long tool name', { tool: 'a'.repeat(201), args: {} }],
  ])('refuses %s in /v1/authorize with 400 MALFORMED_REQUEST', async (_what, body) => {
    const head = await auditHead();
    const res = await h.authorize(token, body);
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('MALFORMED_REQUEST');
    expect(await auditHead()).toBe(head);
    await expectStillHealthy();
  });

  it.each([
    ['nested deeper than the args limit', { q: nested(ARGS_MAX_DEPTH + 1) }],
    ['with more keys than the args limit', Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i]))],
    ['with a string longer than the args limit', { q: 'x'.repeat(65) }],
    ['with an array longer than the args limit', { q: Array.from({ length: 17 }, (_, i) => i) }],
  ])('denies args %s with LIMIT_EXCEEDED, never allows', async (_what, args) => {
    const used = await budgetUsed();
    const res = await h.authorize(token, { tool: 'helpdesk.search_tickets', args });
    // bounds are checked inside decide(): a 200 decision, always a deny
    expect(res.statusCode).toBe(200);
    const d = res.json<DecisionBody>();
    expect(d.effect).toBe('deny');
    expect(d.final).toBe('blocked');
    expect(d.reasons).toEqual(['LIMIT_EXCEEDED']);
    expect(await budgetUsed()).toBe(used);
    await expectStillHealthy();
  });

  it('refuses two different task tokens (header and body) with 400', async () => {
    const head = await auditHead();
    const res = await h.authorize(token, { ...validCall, task_token: otherToken });
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('MALFORMED_REQUEST');
    expect(await auditHead()).toBe(head);
    const same = await h.authorize(token, { ...validCall, task_token: token });
    expect(same.statusCode).toBe(200);
    expect(same.json<DecisionBody>().effect).toBe('allow');
    await expectStillHealthy();
  });

  it('survives a burst of hostile requests interleaved with valid ones', async () => {
    const hostile = [
      () => raw(gzipSync(Buffer.from(JSON.stringify(validCall))), { 'content-type': 'application/json', 'content-encoding': 'gzip' }),
      () => raw('{"tool":', { 'content-type': 'application/json' }),
      () => raw(JSON.stringify({ ...validCall, x: 'y'.repeat(BODY_LIMIT) }), { 'content-type': 'application/json' }),
      () => raw('[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]', { 'content-type': 'application/json' }),
      () => raw(JSON.stringify(validCall), { 'content-type': 'text/plain' }),
    ];
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? (hostile[(i / 2) % hostile.length] as () => ReturnType<typeof raw>)() : h.authorize(otherToken, validCall))));
    results.forEach((res, i) => {
      if (i % 2 === 0) expect(res.statusCode).toBeGreaterThanOrEqual(400);
      else expect(res.json<DecisionBody>().effect).toBe('allow');
    });
    await expectStillHealthy();
  });
});
