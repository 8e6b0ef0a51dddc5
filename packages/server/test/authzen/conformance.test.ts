/**
 * Conformance of Mandate's PDP to the OpenID AuthZEN Authorization API 1.0 (final specification,
 * 2026-01-11), through the real HTTP edge (a real runtime on a temp SQLite store, `app.inject`).
 * Expected answers come from the specification's text and its own examples (the fixture in
 * fixture.ts is built so that the examples' subjects get the examples' results), never from
 * what the implementation happens to do.
 *
 * Every MUST / SHOULD / REQUIRED that applies to a PDP serving the evaluation APIs, and the tests
 * that check it (the bracketed tag starts each test's name):
 *
 *   §4      endpoints for 1.0 SHOULD include `v1` in the endpoint identifier ........... [§4]
 *   §5.1/2  Subject, Resource: `type` and `id` REQUIRED strings; `properties` OPTIONAL
 *           object of any JSON values ................................ [§5.1] [§10.1.1 400]
 *   §5.3    Action: `name` REQUIRED string; `properties` OPTIONAL object ....... [§5.3] [§10.1.1 400]
 *   §5.4    Context: an object of environment attributes ...................... [§5.4] [§10.1.1 400]
 *   §5.5    Decision: REQUIRED boolean `decision`, OPTIONAL object `context`; `false` is a
 *           deny .......................................................... [§5.5] [§6.2]
 *   §6.1    request: subject, action, resource REQUIRED, context OPTIONAL ......... [§6.1]
 *   §7.1    `evaluations` absent or empty: behaves as a single evaluation;
 *           top-level subject/action/resource MAY be omitted when every item has them [§7.1]
 *   §7.1.1  top-level keys are defaults; an item's key overrides the default; a key an item
 *           omits MUST be provided at top level ................................. [§7.1.1]
 *   §7.1.2  `options` object; `evaluations_semantic` is exactly one of execute_all (the
 *           default), deny_on_first_deny, permit_on_first_permit ............... [§7.1.2]
 *   §7.2    response `evaluations` in request order, each a Decision; top-level `decision`
 *           RECOMMENDED omitted ............................................. [§7.2]
 *   §7.2.1  an error in one item: `decision: false` with the error in its `context`; errors of
 *           the whole payload are transport errors ............................. [§7.2.1]
 *   §9.1.1  metadata: `policy_decision_point` REQUIRED (a URL without query or fragment),
 *           `access_evaluation_endpoint` REQUIRED, `access_evaluations_endpoint` OPTIONAL;
 *           no endpoint the PDP does not serve (absence means not capable) ....... [§9.1.1]
 *   §9.2    metadata at `/.well-known/authzen-configuration`, queried with GET ...... [§9.2]
 *   §9.2.2  200, `application/json`, a JSON object; parameters without values omitted [§9.2.2]
 *   §9.2.3  `policy_decision_point` identical to the identifier the URL was built from [§9.2.3]
 *   §10.1   HTTPS POST with JSON bodies; success is 200 with `application/json` ....... [§10.1]
 *   §10.1.1 top level of every body a JSON object; an omitted required attribute is a 400;
 *           unknown fields MUST be ignored; member order MUST NOT matter ........... [§10.1.1]
 *   §10.1.2 errors are 400 / 401 / 403 / 500 with an error message; a deny is a 200 with
 *           `"decision": false` ........................................... [§10.1.2]
 *   §10.1.3 a request identifier in the request MUST come back, the same, in the response
 *           (X-Request-ID) .................................................. [§10.1.3]
 *   §11.2   the PDP SHOULD authenticate the PEP ................................. [§11.2]
 *   §11.3   missing or bad credentials: 401 (MUST) with WWW-Authenticate (SHOULD) .. [§11.3]
 *   §11.5   I-JSON; nulls SHOULD be omitted (so a null in a request counts as absent) [§11.5]
 *   §11.7   reasonable protections: payload size, invalid JSON, nesting, batch size . [§11.7]
 *
 * Not applicable or not offered: §8 Search APIs and their metadata (not served, so omitted by
 * §9.1.1), §9.1.2 capabilities (none registered), §9.1.3 signed metadata, §11.1 TLS (terminated
 * in front of Mandate), §11.6 signed responses (MAY). Mandate-specific behaviour (the generic
 * domain, agents, the entity API) is tested in the other files of this folder.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, BOB, PEP_TOKEN, startAuthzen, writeDomain, type AuthzenHarness } from './fixture.ts';

let h: AuthzenHarness;

beforeAll(async () => {
  h = await startAuthzen();
});

afterAll(async () => {
  await h.close();
});

type Decision = { decision: boolean; context?: Record<string, unknown> };

const alice = { type: 'user', id: ALICE };
const doc = (id: string) => ({ type: 'document', id });
const read = { name: 'read' };
const canRead = { name: 'can_read' };

/** the specification's §7.1.2.1 example request, with a chosen semantic (or none) */
function readThree(semantic?: string): Record<string, unknown> {
  return {
    subject: { type: 'user', id: ALICE },
    action: { name: 'read' },
    ...(semantic === undefined ? {} : { options: { evaluations_semantic: semantic } }),
    evaluations: [{ resource: doc('1') }, { resource: doc('2') }, { resource: doc('3') }],
  };
}

function decisions(body: { evaluations: Decision[] }): boolean[] {
  return body.evaluations.map((e) => e.decision);
}

function nulls(v: unknown, path = '$'): string[] {
  if (v === null) return [path];
  if (Array.isArray(v)) return v.flatMap((x, i) => nulls(x, `${path}[${i}]`));
  if (typeof v === 'object') return Object.entries(v as object).flatMap(([k, x]) => nulls(x, `${path}.${k}`));
  return [];
}

describe('Access Evaluation API (§6) over the HTTPS binding (§10.1)', () => {
  it('[§6.2] [§10.1] answers a permitted request with 200, application/json and a boolean decision true', async () => {
    const res = await h.evaluation({ subject: alice, action: canRead, resource: doc('boxcarring.md') });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json\b/);
    expect(res.json<Decision>().decision).toBe(true);
  });

  it('[§5.5] [§10.1.2] answers a denied request with 200 and "decision": false, never an HTTP error status', async () => {
    const res = await h.evaluation({ subject: alice, action: read, resource: doc('2') });
    expect(res.statusCode).toBe(200);
    const body = res.json<Decision>();
    expect(body.decision).toBe(false);
    expect(typeof body.decision).toBe('boolean');
    if (body.context !== undefined) expect(body.context).toEqual(expect.any(Object));
  });

  it('[§6.1] accepts a request without context', async () => {
    const res = await h.evaluation({ subject: alice, action: read, resource: doc('1') });
    expect(res.json<Decision>().decision).toBe(true);
  });

  it('[§6.1] answers the specification example request (subject, resource, action with properties, context)', async () => {
    // §6.1.1: alice may can_read account 123 (the fixture permits users to read accounts)
    const res = await h.evaluation({
      subject: { type: 'user', id: ALICE },
      resource: { type: 'account', id: '123' },
      action: { name: 'can_read', properties: { method: 'GET' } },
      context: { time: '1985-10-26T01:22-07:00' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json<Decision>().decision).toBe(true);
  });

  it('[§5.1] decides with subject properties of every JSON type (string, number, boolean, array, object)', async () => {
    const carol = (department: string) => ({
      type: 'user',
      id: 'carol@example.com',
      properties: { department, ip_address: '172.217.22.14', device_id: '8:65:ee:17:7e:0b', level: 3, active: true, groups: ['g1', 'g2'], badge: { site: 'HQ' } },
    });
    const report = { type: 'report', id: 'q3' };
    expect((await h.evaluation({ subject: carol('Sales'), action: { name: 'can_view_report' }, resource: report })).json<Decision>().decision).toBe(true);
    expect((await h.evaluation({ subject: carol('Support'), action: { name: 'can_view_report' }, resource: report })).json<Decision>().decision).toBe(false);
  });

  it('[§5.2] [§5.3] accepts resource and action properties, including an object-valued property', async () => {
    const res = await h.evaluation({
      subject: alice,
      action: { name: 'can_read', properties: { method: 'GET' } },
      resource: { type: 'document', id: '1', properties: { library_record: { title: 'AuthZEN in Action', isbn: '978-0593383322' } } },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json<Decision>().decision).toBe(true);
  });

  it('[§5.4] gives the policy the request context', async () => {
    const printer = { type: 'printer', id: 'p1' };
    expect((await h.evaluation({ subject: alice, action: { name: 'can_print' }, resource: printer, context: { location: 'office' } })).json<Decision>().decision).toBe(true);
    expect((await h.evaluation({ subject: alice, action: { name: 'can_print' }, resource: printer, context: { location: 'home' } })).json<Decision>().decision).toBe(false);
  });
});

describe('request validation (§10.1.1): an omitted or mistyped required attribute is a 400', () => {
  const ok = { subject: alice, action: read, resource: doc('1') };
  it.each([
    ['no subject', { action: read, resource: doc('1') }],
    ['no action', { subject: alice, resource: doc('1') }],
    ['no resource', { subject: alice, action: read }],
    ['a subject without type', { ...ok, subject: { id: ALICE } }],
    ['a subject without id', { ...ok, subject: { type: 'user' } }],
    ['a resource without type', { ...ok, resource: { id: '1' } }],
    ['a resource without id', { ...ok, resource: { type: 'document' } }],
    ['an action without name', { ...ok, action: { properties: {} } }],
    ['a numeric subject id', { ...ok, subject: { type: 'user', id: 42 } }],
    ['a numeric resource type', { ...ok, resource: { type: 7, id: '1' } }],
    ['an action that is a string', { ...ok, action: 'read' }],
    ['subject properties that are an array', { ...ok, subject: { ...alice, properties: ['a'] } }],
    ['resource properties that are a string', { ...ok, resource: { ...doc('1'), properties: 'x' } }],
    ['a context that is an array', { ...ok, context: [1] }],
  ])('[§10.1.1 400] refuses %s with 400 and an error message', async (_what, body) => {
    const res = await h.evaluation(body);
    expect(res.statusCode).toBe(400);
    expect(res.json<{ error: { message: string } }>().error.message).toEqual(expect.any(String));
  });

  it('[§10.1.1] refuses a body whose top level is not a JSON object', async () => {
    for (const body of [[ok], 'read', 42]) {
      const res = await h.evaluation(body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
    }
  });

  it('[§10.1.1 400] refuses the same omissions on the evaluations endpoint', async () => {
    expect((await h.evaluations({ subject: alice, resource: doc('1') })).statusCode).toBe(400);
    expect((await h.evaluations({ evaluations: [{ subject: { type: 'user' }, action: read, resource: doc('1') }] })).statusCode).toBe(400);
  });
});

describe('unknown fields and member order (§10.1.1)', () => {
  it('[§10.1.1] ignores unknown fields at the top level and inside subject, action, resource and options', async () => {
    const res = await h.evaluation({
      subject: { ...alice, identity: 'CiRmZDA2MTRk', extra: { a: 1 } },
      action: { ...read, verb: 'GET' },
      resource: { ...doc('1'), ownerID: 'someone', userID: 'x' },
      context: {},
      evaluations_hint: true,
      version: '1.0',
    });
    expect(res.statusCode).toBe(200);
    expect(res.json<Decision>().decision).toBe(true);
    const batch = await h.evaluations({ ...readThree(), options: { evaluations_semantic: 'execute_all', another_option: 'value' }, unknown_top: [1] });
    expect(batch.statusCode).toBe(200);
    expect(decisions(batch.json())).toEqual([true, false, true]);
  });

  it('[§10.1.1] answers the same whatever the order of object members', async () => {
    const a = await h.evaluation({ subject: { id: ALICE, type: 'user' }, resource: { id: '2', type: 'document' }, action: read });
    const b = await h.evaluation({ action: read, resource: doc('2'), subject: alice });
    expect(a.json<Decision>().decision).toBe(false);
    expect(b.json<Decision>().decision).toBe(false);
    const c = await h.evaluation({ resource: { id: '3', type: 'document' }, action: read, subject: { type: 'user', id: ALICE } });
    expect(c.json<Decision>().decision).toBe(true);
  });
});

describe('Access Evaluations API (§7)', () => {
  const boxcar = ['boxcarring.md', 'subject-search.md', 'resource-search.md'];
  const time = { time: '2024-05-31T15:22-07:00' };

  it('[§7.1] answers the specification example without defaults: one decision per item', async () => {
    const res = await h.evaluations({ evaluations: boxcar.map((id) => ({ subject: alice, action: canRead, resource: doc(id), context: time })) });
    expect(res.statusCode).toBe(200);
    expect(decisions(res.json())).toEqual([true, true, true]);
  });

  it('[§7.1.1] applies top-level subject and context as defaults for every item', async () => {
    const res = await h.evaluations({ subject: alice, context: time, evaluations: boxcar.map((id) => ({ action: canRead, resource: doc(id) })) });
    expect(decisions(res.json())).toEqual([true, true, true]);
  });

  it("[§7.1.1] lets an item's key override the top-level default (the specification's can_edit example)", async () => {
    const res = await h.evaluations({
      subject: alice,
      context: time,
      action: canRead,
      evaluations: [{ resource: doc('boxcarring.md') }, { resource: doc('subject-search.md') }, { action: { name: 'can_edit' }, resource: doc('resource-search.md') }],
    });
    // alice reads both; can_edit is granted to Engineering only, and alice is in Sales
    expect(decisions(res.json())).toEqual([true, true, false]);
    const bob = await h.evaluations({ subject: alice, action: canRead, evaluations: [{ subject: { type: 'user', id: BOB }, action: { name: 'can_edit' }, resource: doc('1') }] });
    expect(decisions(bob.json())).toEqual([true]);
  });

  it("[§7.1.1] replaces a default entity whole: an item's subject does not inherit the default's properties", async () => {
    const report = { type: 'report', id: 'q3' };
    const res = await h.evaluations({
      subject: { type: 'user', id: 'carol@example.com', properties: { department: 'Sales' } },
      action: { name: 'can_view_report' },
      evaluations: [{ resource: report }, { subject: { type: 'user', id: 'carol@example.com' }, resource: report }],
    });
    expect(decisions(res.json())).toEqual([true, false]);
  });

  it('[§7.1] accepts a request without top-level subject, action or resource when every item has them', async () => {
    const res = await h.evaluations({ evaluations: [{ subject: alice, action: read, resource: doc('3') }] });
    expect(res.statusCode).toBe(200);
    expect(decisions(res.json())).toEqual([true]);
  });

  it('[§7.1.1] refuses with 400 an item that omits a key the top level does not provide either', async () => {
    const res = await h.evaluations({ subject: alice, evaluations: [{ action: read, resource: doc('1') }, { resource: doc('2') }] });
    expect(res.statusCode).toBe(400);
  });

  it('[§7.1] answers as a single evaluation when the evaluations array is absent', async () => {
    const res = await h.evaluations({ subject: alice, action: read, resource: doc('1') });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ decision: true });
  });

  it('[§7.1] answers as a single evaluation when the evaluations array is empty', async () => {
    const res = await h.evaluations({ subject: alice, action: read, resource: doc('2'), evaluations: [] });
    expect(res.statusCode).toBe(200);
    const body = res.json<Decision>();
    expect(body.decision).toBe(false);
    expect(body).not.toHaveProperty('evaluations');
  });

  it('[§7.2] returns the decisions in the order of the request, one per item, with no top-level decision', async () => {
    const ids = ['1', '2', '3', '2', 'boxcarring.md', '2', 'subject-search.md'];
    const res = await h.evaluations({ subject: alice, action: read, evaluations: ids.map((id) => ({ resource: doc(id) })) });
    const body = res.json<{ evaluations: Decision[] }>();
    expect(decisions(body)).toEqual([true, false, true, false, true, false, true]);
    expect(body).not.toHaveProperty('decision');
    for (const e of body.evaluations) expect(typeof e.decision).toBe('boolean');
  });

  it('[§7.1.2] executes all items when no semantic is given (the specification example: true, false, true)', async () => {
    const res = await h.evaluations(readThree());
    expect(decisions(res.json())).toEqual([true, false, true]);
  });

  it('[§7.1.2] executes all items under execute_all', async () => {
    expect(decisions((await h.evaluations(readThree('execute_all'))).json())).toEqual([true, false, true]);
  });

  it('[§7.1.2] stops at the first deny under deny_on_first_deny (the specification example: true, false)', async () => {
    const res = await h.evaluations(readThree('deny_on_first_deny'));
    expect(res.statusCode).toBe(200);
    expect(decisions(res.json())).toEqual([true, false]);
  });

  it('[§7.1.2] stops at the first permit under permit_on_first_permit (the specification example: true)', async () => {
    expect(decisions((await h.evaluations(readThree('permit_on_first_permit'))).json())).toEqual([true]);
  });

  it('[§7.1.2] answers every item under permit_on_first_permit when none is permitted, and stops at once under deny_on_first_deny when the first is denied', async () => {
    const denied = { subject: alice, action: read, evaluations: [{ resource: doc('2') }, { resource: doc('x') }, { resource: doc('y') }] };
    expect(decisions((await h.evaluations({ ...denied, options: { evaluations_semantic: 'permit_on_first_permit' } })).json())).toEqual([false, false, false]);
    expect(decisions((await h.evaluations({ ...denied, options: { evaluations_semantic: 'deny_on_first_deny' } })).json())).toEqual([false]);
  });

  it('[§7.1.2] refuses an evaluations_semantic that is not one of the three values', async () => {
    for (const semantic of ['first_applicable', 'EXECUTE_ALL', 3]) {
      const res = await h.evaluations({ ...readThree(), options: { evaluations_semantic: semantic } });
      expect(res.statusCode, String(semantic)).toBe(400);
    }
    expect((await h.evaluations({ ...readThree(), options: 'execute_all' })).statusCode).toBe(400);
  });

  it('[§7.2.1] answers an item that cannot be evaluated with "decision": false and the error in its context, and the other items normally', async () => {
    const res = await h.evaluations({
      subject: alice,
      action: read,
      evaluations: [
        { resource: doc('1') },
        // a type that names no entity type, and a number Cedar cannot hold: each fails on its own
        { resource: { type: '#!', id: 'x' } },
        { resource: { ...doc('3'), properties: { weight: 0.000001 } } },
        { resource: doc('3') },
      ],
    });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ evaluations: Decision[] }>();
    expect(decisions(body)).toEqual([true, false, false, true]);
    for (const failed of [body.evaluations[1], body.evaluations[2]]) {
      expect(failed?.context?.['error']).toEqual({ status: 400, code: 'MALFORMED_REQUEST', message: expect.any(String) as unknown });
    }
  });

  it('[§7.1.2] counts a failed item as a denial under deny_on_first_deny', async () => {
    const res = await h.evaluations({
      subject: alice,
      action: read,
      options: { evaluations_semantic: 'deny_on_first_deny' },
      evaluations: [{ resource: doc('1') }, { resource: { type: '#!', id: 'x' } }, { resource: doc('3') }],
    });
    expect(decisions(res.json())).toEqual([true, false]);
  });

  it('[§7.2.1] reports an error in the whole payload at the transport level', async () => {
    for (const evaluations of ['not-a-list', { 0: {} }, [1, 2]]) {
      const res = await h.evaluations({ subject: alice, action: read, evaluations });
      expect(res.statusCode, JSON.stringify(evaluations)).toBe(400);
    }
  });
});

describe('Policy Decision Point metadata (§9)', () => {
  it('[§9.2] [§9.2.2] serves a JSON object at /.well-known/authzen-configuration with GET, 200 and application/json', async () => {
    const res = await h.inject({ method: 'GET', url: '/.well-known/authzen-configuration', headers: { host: 'pdp.example.test:8443' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json\b/);
    const body = res.json<Record<string, unknown>>();
    expect(typeof body).toBe('object');
    expect(Array.isArray(body)).toBe(false);
  });

  it('[§9.1.1] [§9.2.2] names the PDP and both evaluation endpoints, no endpoint it does not serve, and no empty parameter', async () => {
    const body = (await h.inject({ method: 'GET', url: '/.well-known/authzen-configuration', headers: { host: 'pdp.example.test:8443' } })).json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual(['access_evaluation_endpoint', 'access_evaluations_endpoint', 'policy_decision_point']);
    const pdp = new URL(body['policy_decision_point'] as string);
    expect(pdp.search).toBe('');
    expect(pdp.hash).toBe('');
    for (const v of Object.values(body)) expect(v === null || v === '' || (Array.isArray(v) && v.length === 0)).toBe(false);
  });

  it('[§9.2.3] publishes, in development and without configuration, the identifier the metadata URL was built from, never cacheable', async () => {
    // the harness runs the development issuer; elsewhere an unconfigured server publishes nothing (host.test.ts)
    const res = await h.inject({ method: 'GET', url: '/.well-known/authzen-configuration', headers: { host: 'pdp.example.test:8443' } });
    const body = res.json<Record<string, string>>();
    expect(body['policy_decision_point']).toBe('http://pdp.example.test:8443');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('[§4] [§10.1] advertises v1 endpoints that answer POSTed evaluations', async () => {
    const body = (await h.inject({ method: 'GET', url: '/.well-known/authzen-configuration' })).json<Record<string, string>>();
    for (const key of ['access_evaluation_endpoint', 'access_evaluations_endpoint']) {
      const url = new URL(body[key] as string);
      expect(url.pathname).toMatch(/\/v1\//);
      const res = await h.pep(url.pathname, { subject: alice, action: read, resource: doc('1') });
      expect(res.statusCode, key).toBe(200);
      expect(res.json<Decision>().decision).toBe(true);
    }
  });

  it('[§9.2.3] publishes the configured PDP identifier exactly, whatever the Host of the request', async () => {
    const fixture = writeDomain({}, { pdp_url: 'https://pdp.example.com' });
    const other = await startAuthzen(fixture);
    try {
      const body = (await other.inject({ method: 'GET', url: '/.well-known/authzen-configuration', headers: { host: 'evil.example' } })).json<Record<string, string>>();
      expect(body).toEqual({
        policy_decision_point: 'https://pdp.example.com',
        access_evaluation_endpoint: 'https://pdp.example.com/access/v1/evaluation',
        access_evaluations_endpoint: 'https://pdp.example.com/access/v1/evaluations',
      });
    } finally {
      await other.close();
    }
  });

  it('[§9.2] needs no credential, and allows caching of a configured identifier (Security Considerations: metadata caching)', async () => {
    const other = await startAuthzen(writeDomain({}, { pdp_url: 'https://pdp.example.com' }));
    try {
      const res = await other.inject({ method: 'GET', url: '/.well-known/authzen-configuration' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['cache-control']).toMatch(/^public, max-age=\d+$/);
    } finally {
      await other.close();
    }
  });
});

describe('request identification (§10.1.3)', () => {
  it.each([['a UUID', 'bfe9eb29-ab87-4ca3-be83-a1d5d8305716'], ['an arbitrary string', 'PEP request #42 / retry=1; attempt (2)']])(
    '[§10.1.3] returns %s given as X-Request-ID unchanged',
    async (_what, id) => {
      const one = await h.evaluation({ subject: alice, action: read, resource: doc('1') }, { 'x-request-id': id });
      expect(one.headers['x-request-id']).toBe(id);
      const many = await h.evaluations(readThree(), { 'x-request-id': id });
      expect(many.headers['x-request-id']).toBe(id);
    },
  );

  it('[§10.1.3] returns the request identifier on error responses too (400 and 401)', async () => {
    const id = 'error-path id 7';
    expect((await h.evaluation({ subject: alice }, { 'x-request-id': id })).headers['x-request-id']).toBe(id);
    const unauth = await h.inject({ method: 'POST', url: '/access/v1/evaluation', headers: { 'x-request-id': id }, payload: { subject: alice, action: read, resource: doc('1') } });
    expect(unauth.statusCode).toBe(401);
    expect(unauth.headers['x-request-id']).toBe(id);
  });
});

describe('PEP authentication (§11.2, §11.3)', () => {
  const body = { subject: alice, action: read, resource: doc('1') };

  it('[§11.2] [§11.3] answers 401 with WWW-Authenticate when the PEP sends no credential', async () => {
    for (const url of ['/access/v1/evaluation', '/access/v1/evaluations']) {
      const res = await h.inject({ method: 'POST', url, payload: body });
      expect(res.statusCode, url).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="mandate"');
      expect(res.json<{ error: { message: string } }>().error.message).toEqual(expect.any(String));
    }
  });

  it('[§11.3] answers 401 with WWW-Authenticate naming invalid_token for a wrong credential', async () => {
    for (const authorization of ['Bearer not-the-token', 'Basic YWxpY2U6c2VjcmV0', 'Bearer', `Bearer ${PEP_TOKEN}x`]) {
      const res = await h.inject({ method: 'POST', url: '/access/v1/evaluation', headers: { authorization }, payload: body });
      expect(res.statusCode, authorization).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="mandate", error="invalid_token"');
    }
  });

  it('[§11.3] answers 401, not 400, to an unauthenticated request with a malformed body', async () => {
    const res = await h.inject({ method: 'POST', url: '/access/v1/evaluation', headers: { 'content-type': 'application/json' }, payload: '{"subject": ' });
    expect(res.statusCode).toBe(401);
  });

  it('[§11.2] accepts the configured PEP token with or without the Bearer scheme', async () => {
    for (const authorization of [`Bearer ${PEP_TOKEN}`, `bearer ${PEP_TOKEN}`, PEP_TOKEN]) {
      const res = await h.inject({ method: 'POST', url: '/access/v1/evaluation', headers: { authorization }, payload: body });
      expect(res.statusCode, authorization).toBe(200);
    }
  });
});

describe('JSON payloads and availability (§11.5, §11.7)', () => {
  it('[§11.5] puts no null anywhere in a response', async () => {
    const responses = [
      await h.evaluation({ subject: alice, action: read, resource: doc('2') }),
      await h.evaluations(readThree()),
      await h.evaluations({ subject: alice, action: read, evaluations: [{ resource: { type: '#!', id: 'x' } }] }),
      await h.inject({ method: 'GET', url: '/.well-known/authzen-configuration' }),
    ];
    for (const res of responses) expect(nulls(res.json())).toEqual([]);
  });

  it('[§11.5] treats a null member of a request as absent', async () => {
    const res = await h.evaluation({ subject: { ...alice, properties: null }, action: { ...read, properties: null }, resource: doc('1'), context: null });
    expect(res.statusCode).toBe(200);
    expect(res.json<Decision>().decision).toBe(true);
    const batch = await h.evaluations({ subject: alice, action: read, resource: null, evaluations: [{ resource: doc('1'), context: null }] });
    expect(decisions(batch.json())).toEqual([true]);
  });

  it('[§11.7] refuses invalid JSON with 400', async () => {
    const res = await h.pep('/access/v1/evaluation', undefined, { 'content-type': 'application/json' });
    expect(res.statusCode).toBe(400);
    const broken = await h.inject({ method: 'POST', url: '/access/v1/evaluation', headers: { authorization: `Bearer ${PEP_TOKEN}`, 'content-type': 'application/json' }, payload: '{"subject": {"type": "user",' });
    expect(broken.statusCode).toBe(400);
  });

  it('[§11.7] refuses deeply nested JSON with 400 and an oversized body with 413', async () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 100; i++) deep = { d: deep };
    const nested = await h.evaluation({ subject: { ...alice, properties: { deep } }, action: read, resource: doc('1') });
    expect(nested.statusCode).toBe(400);
    const big = await h.evaluation({ subject: { ...alice, properties: { blob: 'x'.repeat(2 * 1024 * 1024) } }, action: read, resource: doc('1') });
    expect(big.statusCode).toBe(413);
  });

  it('[§11.7] refuses with 400 an evaluations request larger than the configured batch limit', async () => {
    const fixture = writeDomain({}, { max_evaluations: 5 });
    const small = await startAuthzen(fixture);
    try {
      const six = { subject: alice, action: read, evaluations: Array.from({ length: 6 }, () => ({ resource: doc('1') })) };
      expect((await small.evaluations(six)).statusCode).toBe(400);
      expect((await small.evaluations({ ...six, evaluations: six.evaluations.slice(0, 5) })).statusCode).toBe(200);
    } finally {
      await small.close();
    }
  });
});
