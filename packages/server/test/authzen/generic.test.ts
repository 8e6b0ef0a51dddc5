/**
 * The generic PDP behind AuthZEN (Mandate's own rules, beside the specification's): how
 * subjects and resources become Cedar entities, fail-closed evaluation, schema handling, audit,
 * and who may call the endpoints.
 */
import { createRuntime, parseConfig } from '@mandate/server';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { allAuditRecords, errorOf, mandate } from '../support.ts';
import { ALICE, BOB, PEP_TOKEN, sha256, startAuthzen, writeDomain, type AuthzenHarness } from './fixture.ts';

type Decision = { decision: boolean; context?: Record<string, unknown> };

let h: AuthzenHarness;

beforeAll(async () => {
  h = await startAuthzen();
});

afterAll(async () => {
  await h.close();
});

const alice = { type: 'user', id: ALICE };
const doc = (id: string) => ({ type: 'document', id });

async function decide(x: AuthzenHarness, body: unknown): Promise<Decision> {
  const res = await x.evaluation(body);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Decision>();
}

async function withDomain<T>(files: Parameters<typeof writeDomain>[0], extra: Record<string, unknown>, fn: (x: AuthzenHarness) => Promise<T>): Promise<T> {
  const x = await startAuthzen(writeDomain(files, extra));
  try {
    return await fn(x);
  } finally {
    await x.close();
  }
}

describe('decisions and their context', () => {
  it('answers a permit with the decision alone and a deny with its reasons, policy ids and policy version', async () => {
    expect(await decide(h, { subject: alice, action: { name: 'read' }, resource: doc('1') })).toEqual({ decision: true });
    const version = (await h.op('GET', '/v1/authzen')).json<{ policy_version: string }>().policy_version;
    expect(await decide(h, { subject: alice, action: { name: 'read' }, resource: doc('2') })).toEqual({
      decision: false,
      context: {
        id: expect.stringMatching(/^dec_/) as unknown,
        effect: 'deny',
        reasons: ['NO_PERMITTING_POLICY'],
        policy_ids: [],
        policy_version: version,
        details: ['no policy permits this request'],
      },
    });
    expect(version).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('audits every decision before answering: one decision record per item, naming subject, action, resource, PEP and request id', async () => {
    const before = (await allAuditRecords(h)).length;
    const res = await h.evaluations(
      { subject: alice, action: { name: 'read' }, evaluations: [{ resource: doc('1') }, { resource: doc('2') }] },
      { 'x-request-id': 'audit-me-1' },
    );
    expect(res.statusCode).toBe(200);
    const records = (await allAuditRecords(h)).slice(before);
    expect(records.map((r) => r.kind)).toEqual(['decision', 'decision']);
    expect(records[0]?.data).toMatchObject({
      api: 'authzen',
      pep: 'client:test-pep',
      request_id: 'audit-me-1',
      item: 0,
      subject: { type: 'user', id: ALICE },
      action: 'read',
      resource: { type: 'document', id: '1' },
      effect: 'allow',
      decision: true,
      policy_ids: ['docs.read'],
      request_hash: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) as unknown,
    });
    expect(records[1]?.data).toMatchObject({ item: 1, effect: 'deny', decision: false, reasons: ['NO_PERMITTING_POLICY'] });
    expect(records[1]?.call_id).toBe((res.json<{ evaluations: Decision[] }>().evaluations[1]?.context as { id: string }).id);
    expect((await h.verifyAudit()).ok).toBe(true);
  });

  it('keeps properties and context out of the audit log (bound by the request hash instead)', async () => {
    const before = (await allAuditRecords(h)).length;
    await decide(h, { subject: { ...alice, properties: { ssn: '123-45-6789' } }, action: { name: 'read' }, resource: doc('1'), context: { secret: 'do-not-log' } });
    const text = JSON.stringify((await allAuditRecords(h)).slice(before));
    expect(text).not.toContain('123-45-6789');
    expect(text).not.toContain('do-not-log');
  });
});

describe('fail closed', () => {
  const guarded = `
    @id("del.all") permit (principal, action == App::Action::"delete", resource);
    @id("del.locked") forbid (principal, action == App::Action::"delete", resource) when { resource.locked };
  `;

  it('denies with POLICY_EVALUATION_ERROR when a forbid fails to evaluate, even though a permit matched', async () => {
    await withDomain({ policies: { 'd.cedar': guarded }, entities: [] }, {}, async (x) => {
      const errored = await decide(x, { subject: alice, action: { name: 'delete' }, resource: { type: 'file', id: 'f' } });
      expect(errored.decision).toBe(false);
      expect(errored.context).toMatchObject({ reasons: ['POLICY_EVALUATION_ERROR'], policy_ids: ['del.locked'] });
      expect((await decide(x, { subject: alice, action: { name: 'delete' }, resource: { type: 'file', id: 'f', properties: { locked: false } } })).decision).toBe(true);
      const forbidden = await decide(x, { subject: alice, action: { name: 'delete' }, resource: { type: 'file', id: 'f', properties: { locked: true } } });
      expect(forbidden.context).toMatchObject({ reasons: ['POLICY_FORBID'], policy_ids: ['del.locked'] });
    });
  });

  it('answers false to every item of a batch whose audit records cannot be committed (AUDIT_UNAVAILABLE)', async () => {
    const spy = vi.spyOn(h.runtime.audit, 'append').mockRejectedValueOnce(new Error('disk full'));
    try {
      const res = await h.evaluations({ subject: alice, action: { name: 'read' }, evaluations: [{ resource: doc('1') }, { resource: doc('2') }] });
      expect(res.statusCode).toBe(200);
      const body = res.json<{ evaluations: Decision[] }>();
      expect(body.evaluations.map((e) => e.decision)).toEqual([false, false]);
      expect(body.evaluations[0]?.context).toMatchObject({ reasons: ['AUDIT_UNAVAILABLE'], error: { status: 503, code: 'AUDIT_UNAVAILABLE' } });
      expect(body.evaluations[1]?.context).toMatchObject({ reasons: ['NO_PERMITTING_POLICY', 'AUDIT_UNAVAILABLE'] });
    } finally {
      spy.mockRestore();
    }
    expect((await decide(h, { subject: alice, action: { name: 'read' }, resource: doc('1') })).decision).toBe(true);
  });

  it('denies everything when the generic domain has no policies', async () => {
    const x = await startAuthzen({ dir: '', config: { clients: [{ name: 'p', token_sha256: sha256(PEP_TOKEN) }] }, cleanup: () => undefined });
    try {
      const d = await decide(x, { subject: alice, action: { name: 'read' }, resource: doc('1') });
      expect(d.decision).toBe(false);
      expect(d.context?.['reasons']).toEqual(['NO_PERMITTING_POLICY']);
    } finally {
      await x.close();
    }
  });

  it('answers a @step_up forbid with decision false and effect approval_required', async () => {
    const text = `
      @id("pay.ok") permit (principal, action == App::Action::"pay", resource);
      @id("pay.big") @step_up("") forbid (principal, action == App::Action::"pay", resource) when { context has amount && context.amount > 1000 };
    `;
    await withDomain({ policies: { 'p.cedar': text }, entities: [] }, {}, async (x) => {
      expect((await decide(x, { subject: alice, action: { name: 'pay' }, resource: { type: 'invoice', id: 'i1' }, context: { amount: 10 } })).decision).toBe(true);
      const held = await decide(x, { subject: alice, action: { name: 'pay' }, resource: { type: 'invoice', id: 'i1' }, context: { amount: 5000 } });
      expect(held).toMatchObject({ decision: false, context: { effect: 'approval_required', reasons: ['APPROVAL_REQUIRED'], policy_ids: ['pay.big'] } });
    });
  });
});

describe('from AuthZEN to Cedar entities', () => {
  it("merges request properties over the entity store's attributes", async () => {
    const report = { type: 'report', id: 'q3' };
    // bob is in Engineering in the store; a PEP that says Sales is believed (AuthZEN §11.4: the PDP trusts the PEP)
    expect((await decide(h, { subject: { type: 'user', id: BOB }, action: { name: 'can_view_report' }, resource: report })).decision).toBe(false);
    expect((await decide(h, { subject: { type: 'user', id: BOB, properties: { department: 'Sales' } }, action: { name: 'can_view_report' }, resource: report })).decision).toBe(true);
  });

  it('keeps the store parents of an entity, transitively, whatever the request properties say', async () => {
    const policies = { 'g.cedar': '@id("admins") permit (principal in App::Group::"admins", action == App::Action::"manage", resource);' };
    const entities = [
      { uid: { type: 'App::User', id: 'dana' }, attrs: {}, parents: [{ type: 'App::Group', id: 'oncall' }] },
      { uid: { type: 'App::Group', id: 'oncall' }, attrs: {}, parents: [{ type: 'App::Group', id: 'admins' }] },
      { uid: { type: 'App::Group', id: 'admins' }, attrs: {}, parents: [] },
    ];
    await withDomain({ policies, entities }, {}, async (x) => {
      const server = { type: 'server', id: 's1' };
      expect((await decide(x, { subject: { type: 'user', id: 'dana' }, action: { name: 'manage' }, resource: server })).decision).toBe(true);
      expect((await decide(x, { subject: { type: 'user', id: 'dana', properties: { note: 'x' } }, action: { name: 'manage' }, resource: server })).decision).toBe(true);
      expect((await decide(x, { subject: { type: 'user', id: 'eve' }, action: { name: 'manage' }, resource: server })).decision).toBe(false);
    });
  });

  it('maps types by the explicit table, a Cedar path as it is, and otherwise <namespace>::<PascalCase>', async () => {
    const policies = { 'm.cedar': '@id("svc") permit (principal is Corp::ServiceAccount, action == Corp::Action::"invoke", resource is Corp::ApiRoute);' };
    await withDomain({ policies, entities: [] }, { namespace: 'Corp', types: { workload: 'Corp::ServiceAccount' } }, async (x) => {
      const route = { type: 'api-route', id: '/v1/x' };
      expect((await decide(x, { subject: { type: 'service_account', id: 'a' }, action: { name: 'invoke' }, resource: route })).decision).toBe(true);
      expect((await decide(x, { subject: { type: 'workload', id: 'b' }, action: { name: 'invoke' }, resource: route })).decision).toBe(true);
      expect((await decide(x, { subject: { type: 'Corp::ServiceAccount', id: 'c' }, action: { name: 'invoke' }, resource: route })).decision).toBe(true);
      expect((await decide(x, { subject: { type: 'user', id: 'd' }, action: { name: 'invoke' }, resource: route })).decision).toBe(false);
      const bad = await decide(x, { subject: { type: 'action', id: 'e' }, action: { name: 'invoke' }, resource: route });
      expect(bad.context?.['error']).toMatchObject({ status: 400, code: 'MALFORMED_REQUEST' });
    });
  });

  it('turns a fractional property into a Cedar decimal, and refuses one Cedar cannot hold', async () => {
    const policies = { 'n.cedar': '@id("cheap") permit (principal, action == App::Action::"buy", resource) when { resource.price.lessThan(decimal("10.0")) };' };
    await withDomain({ policies, entities: [] }, {}, async (x) => {
      const item = (price: number) => ({ subject: alice, action: { name: 'buy' }, resource: { type: 'item', id: 'i', properties: { price } } });
      expect((await decide(x, item(9.99))).decision).toBe(true);
      expect((await decide(x, item(10.5))).decision).toBe(false);
      expect((await decide(x, item(1.23456))).context?.['error']).toMatchObject({ status: 400 });
    });
  });
});

describe('with a Cedar schema', () => {
  const schema = `namespace App {
    entity User = { email: String };
    entity Document = { readers: Set<String> };
    action view;
    action read in [view] appliesTo { principal: User, resource: Document, context: { channel?: String } };
  }`;
  const entities = [
    { uid: { type: 'App::User', id: ALICE }, attrs: { email: ALICE }, parents: [] },
    { uid: { type: 'App::Document', id: '1' }, attrs: { readers: [ALICE] }, parents: [] },
  ];
  const policies = { 's.cedar': '@id("view") permit (principal, action in App::Action::"view", resource is App::Document) when { resource.readers.contains(principal.email) };' };

  it('ignores properties and context attributes the schema does not declare, instead of failing the request', async () => {
    await withDomain({ policies, entities, schema }, {}, async (x) => {
      const d = await decide(x, {
        subject: { ...alice, properties: { department: 'Sales', ip_address: '10.0.0.1' } },
        action: { name: 'read' },
        resource: { ...doc('1'), properties: { ownerID: 'x' } },
        context: { channel: 'web', headers: { 'user-agent': 'curl' } },
      });
      expect(d.decision).toBe(true);
    });
  });

  it('evaluates a policy scoped to an action group for an action in that group', async () => {
    // narrowing the policies by action must follow the schema's action hierarchy
    await withDomain({ policies, entities, schema }, {}, async (x) => {
      expect((await decide(x, { subject: alice, action: { name: 'read' }, resource: doc('1') })).decision).toBe(true);
    });
  });

  it('denies with POLICY_EVALUATION_ERROR an action the schema does not declare, and a declared attribute of the wrong type', async () => {
    await withDomain({ policies, entities, schema }, {}, async (x) => {
      const unknown = await decide(x, { subject: alice, action: { name: 'delete' }, resource: doc('1') });
      expect(unknown.context?.['reasons']).toEqual(['POLICY_EVALUATION_ERROR']);
      const wrong = await decide(x, { subject: { ...alice, properties: { email: 42 } }, action: { name: 'read' }, resource: doc('1') });
      expect(wrong.decision).toBe(false);
    });
  });

  it('refuses to start with policies that do not validate against the schema', async () => {
    const fixture = writeDomain({ policies: { 'bad.cedar': 'permit (principal, action == App::Action::"read", resource) when { principal.nope == 1 };' }, entities, schema });
    try {
      const config = parseConfig({ data_dir: fixture.dir + '/data', authzen: fixture.config, log: { level: 'silent' } });
      await expect(createRuntime(config, { writeAdminKeyFile: false })).rejects.toMatchObject({ code: 'POLICY_INVALID' });
    } finally {
      fixture.cleanup();
    }
  });

  it('refuses to start with an entities file that does not match the schema', async () => {
    const fixture = writeDomain({ policies, schema, entities: [{ uid: { type: 'App::User', id: 'x' }, attrs: { email: 7 }, parents: [] }] });
    try {
      const config = parseConfig({ data_dir: fixture.dir + '/data', authzen: fixture.config, log: { level: 'silent' } });
      await expect(createRuntime(config, { writeAdminKeyFile: false })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    } finally {
      fixture.cleanup();
    }
  });
});

describe('enforcement-point credentials', () => {
  const body = { subject: alice, action: { name: 'read' }, resource: doc('1') };

  it('accepts an operator API key of any role, the viewer role included', async () => {
    const created = await h.op('POST', '/v1/operators/keys', { name: 'gateway-pep', role: 'viewer' });
    const key = created.json<{ key: string }>().key;
    const res = await h.inject({ method: 'POST', url: '/access/v1/evaluation', headers: { authorization: `Bearer ${key}` }, payload: body });
    expect(res.statusCode).toBe(200);
    const records = await allAuditRecords(h);
    expect(records.at(-1)?.data).toMatchObject({ pep: 'operator:gateway-pep' });
  });

  it('refuses a revoked operator key', async () => {
    const created = (await h.op('POST', '/v1/operators/keys', { name: 'short-lived', role: 'viewer' })).json<{ id: string; key: string }>();
    expect((await h.op('DELETE', `/v1/operators/keys/${created.id}`)).statusCode).toBeLessThan(300);
    const res = await h.inject({ method: 'POST', url: '/access/v1/evaluation', headers: { authorization: `Bearer ${created.key}` }, payload: body });
    expect(res.statusCode).toBe(401);
  });

  it("refuses an agent's task token as an enforcement-point credential", async () => {
    const agent = await h.registerAgent('pep-impostor');
    const task = await h.startTask(agent, mandate());
    const res = await h.inject({ method: 'POST', url: '/access/v1/evaluation', headers: { authorization: `Bearer ${task.token}` }, payload: body });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toContain('invalid_token');
  });

  it('refuses operator keys when authzen.operator_keys is off', async () => {
    await withDomain({}, { operator_keys: false }, async (x) => {
      const res = await x.inject({ method: 'POST', url: '/access/v1/evaluation', headers: { authorization: `Bearer ${x.admin}` }, payload: body });
      expect(res.statusCode).toBe(401);
      expect((await x.evaluation(body)).statusCode).toBe(200);
    });
  });

  it('serves none of the AuthZEN endpoints when authzen.enabled is false', async () => {
    await withDomain({}, { enabled: false }, async (x) => {
      expect((await x.evaluation(body)).statusCode).toBe(404);
      expect((await x.inject({ method: 'GET', url: '/.well-known/authzen-configuration' })).statusCode).toBe(404);
    });
  });

  it('refuses a body in another media type with 415', async () => {
    const res = await h.inject({ method: 'POST', url: '/access/v1/evaluation', headers: { authorization: `Bearer ${PEP_TOKEN}`, 'content-type': 'text/plain' }, payload: JSON.stringify(body) });
    expect(res.statusCode).toBe(415);
    expect(errorOf(res).code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});
