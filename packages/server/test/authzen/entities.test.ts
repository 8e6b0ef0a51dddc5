/**
 * The generic domain's entity store as operators manage it: the configured entities file, the
 * API layer over it (persisted in the data folder), reloads, and who may change what.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHttpApp, createRuntime, parseConfig } from '@mandate/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf } from '../support.ts';
import { ALICE, BOB, PEP_TOKEN, POLICIES, startAuthzen, writeDomain, type AuthzenHarness } from './fixture.ts';

type Decision = { decision: boolean; context?: Record<string, unknown> };

let h: AuthzenHarness;

beforeAll(async () => {
  h = await startAuthzen();
});

afterAll(async () => {
  await h.close();
});

const report = { type: 'report', id: 'q3' };
const canViewReport = (id: string) => ({ subject: { type: 'user', id }, action: { name: 'can_view_report' }, resource: report });
const decide = async (x: AuthzenHarness, body: unknown) => (await x.evaluation(body)).json<Decision>().decision;

describe('the entity API', () => {
  it('adds entities that decide at once, and lists them beside the file entities', async () => {
    expect(await decide(h, canViewReport('dave@example.com'))).toBe(false);
    const res = await h.op('POST', '/v1/authzen/entities', [{ uid: { type: 'App::User', id: 'dave@example.com' }, attrs: { email: 'dave@example.com', department: 'Sales' }, parents: [] }]);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ api_entities: 1 });
    expect(await decide(h, canViewReport('dave@example.com'))).toBe(true);
    const list = (await h.op('GET', '/v1/authzen/entities?type=App::User')).json<{ entities: { uid: { id: string } }[]; total: number }>();
    expect(list.entities.map((e) => e.uid.id).sort()).toEqual([ALICE, BOB, 'dave@example.com']);
    expect(list.total).toBe(3);
  });

  it("overrides a file entity with an API entity of the same uid, and restores the file's when it is removed", async () => {
    expect(await decide(h, canViewReport(BOB))).toBe(false);
    const bob = { uid: { type: 'App::User', id: BOB }, attrs: { email: BOB, department: 'Sales' }, parents: [] };
    expect((await h.op('POST', '/v1/authzen/entities', { entities: [bob] })).statusCode).toBe(200);
    expect(await decide(h, canViewReport(BOB))).toBe(true);
    const del = await h.op('DELETE', `/v1/authzen/entities/${encodeURIComponent('App::User')}/${encodeURIComponent(BOB)}`);
    expect(del.statusCode).toBe(200);
    expect(await decide(h, canViewReport(BOB))).toBe(false);
  });

  it('refuses with 404 to remove an entity that only the file holds', async () => {
    const res = await h.op('DELETE', `/v1/authzen/entities/App::User/${encodeURIComponent(ALICE)}`);
    expect(res.statusCode).toBe(404);
    expect(await decide(h, { subject: { type: 'user', id: ALICE }, action: { name: 'read' }, resource: { type: 'document', id: '1' } })).toBe(true);
  });

  it.each([
    ['a body that is not a list', { uid: { type: 'App::User', id: 'x' } }],
    ['an entity without uid', [{ attrs: {} }]],
    ['attributes that are a list', [{ uid: { type: 'App::User', id: 'x' }, attrs: [1], parents: [] }]],
    ['an action entity', [{ uid: { type: 'App::Action', id: 'read' }, attrs: {}, parents: [] }]],
    ['the same uid twice', [{ uid: { type: 'App::User', id: 'x' }, attrs: {} }, { uid: { type: 'App::User', id: 'x' }, attrs: {} }]],
    ['a value Cedar cannot hold', [{ uid: { type: 'App::User', id: 'x' }, attrs: { score: 0.5 }, parents: [] }]],
    ['a type that is not a Cedar name', [{ uid: { type: 'user group', id: 'x' }, attrs: {}, parents: [] }]],
  ])('refuses %s with 400 and changes nothing', async (_what, body) => {
    const before = (await h.op('GET', '/v1/authzen')).json<{ entities: number }>().entities;
    const res = await h.op('POST', '/v1/authzen/entities', body);
    expect(res.statusCode).toBe(400);
    expect(errorOf(res).code).toBe('INVALID_ARGUMENT');
    expect((await h.op('GET', '/v1/authzen')).json<{ entities: number }>().entities).toBe(before);
  });

  it('lets a viewer read and only an admin change; a PEP credential is no operator credential', async () => {
    const viewer = (await h.op('POST', '/v1/operators/keys', { name: 'entity-viewer', role: 'viewer' })).json<{ key: string }>().key;
    expect((await h.op('GET', '/v1/authzen/entities', undefined, viewer)).statusCode).toBe(200);
    expect((await h.op('GET', '/v1/authzen', undefined, viewer)).statusCode).toBe(200);
    const entity = [{ uid: { type: 'App::User', id: 'mallory' }, attrs: { department: 'Sales' }, parents: [] }];
    expect((await h.op('POST', '/v1/authzen/entities', entity, viewer)).statusCode).toBe(403);
    expect((await h.op('PUT', '/v1/authzen/entities', entity, viewer)).statusCode).toBe(403);
    expect((await h.op('POST', '/v1/authzen/reload', undefined, viewer)).statusCode).toBe(403);
    expect((await h.inject({ method: 'POST', url: '/v1/authzen/entities', headers: { authorization: `Bearer ${PEP_TOKEN}` }, payload: entity })).statusCode).toBe(401);
    expect(await decide(h, canViewReport('mallory'))).toBe(false);
  });

  it('refuses to hold more API entities than authzen.max_api_entities', async () => {
    const x = await startAuthzen(writeDomain({}, { max_api_entities: 2 }));
    try {
      const three = ['a', 'b', 'c'].map((id) => ({ uid: { type: 'App::User', id }, attrs: {}, parents: [] }));
      const res = await x.op('PUT', '/v1/authzen/entities', three);
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).code).toBe('LIMIT_EXCEEDED');
      expect((await x.op('PUT', '/v1/authzen/entities', three.slice(0, 2))).statusCode).toBe(200);
    } finally {
      await x.close();
    }
  });
});

describe('persistence and reload', () => {
  it('keeps API entities in the data folder across a restart', async () => {
    const fixture = writeDomain();
    const data = mkdtempSync(join(tmpdir(), 'mandate-authzen-data-'));
    const config = parseConfig({ data_dir: data, authzen: fixture.config, log: { level: 'silent' } });
    try {
      const first = await createRuntime(config, { writeAdminKeyFile: false });
      const app = buildHttpApp(first);
      const put = await app.inject({
        method: 'PUT',
        url: '/v1/authzen/entities',
        headers: { authorization: `Bearer ${first.bootstrapAdminKey ?? ''}` },
        payload: [{ uid: { type: 'App::User', id: 'erin' }, attrs: { department: 'Sales' }, parents: [] }],
      });
      expect(put.statusCode).toBe(200);
      await app.close();
      await first.close();
      const file = JSON.parse(readFileSync(join(data, 'authzen-entities.json'), 'utf8')) as unknown[];
      expect(file).toHaveLength(1);

      const second = await createRuntime(config, { writeAdminKeyFile: false });
      const again = buildHttpApp(second);
      const res = await again.inject({ method: 'POST', url: '/access/v1/evaluation', headers: { authorization: `Bearer ${PEP_TOKEN}` }, payload: canViewReport('erin') });
      expect(res.json<Decision>().decision).toBe(true);
      await again.close();
      await second.close();
    } finally {
      rmSync(data, { recursive: true, force: true });
      fixture.cleanup();
    }
  });

  it('reloads changed policy and entity files, and keeps the domain as it was when a file is broken', async () => {
    const x = await startAuthzen(writeDomain());
    try {
      const carol = canViewReport('carol');
      expect(await decide(x, carol)).toBe(false);
      const v1 = (await x.op('GET', '/v1/authzen')).json<{ policy_version: string }>().policy_version;
      writeFileSync(join(x.fixture.dir, 'entities.json'), JSON.stringify([{ uid: { type: 'App::User', id: 'carol' }, attrs: { department: 'Sales' }, parents: [] }]));
      writeFileSync(join(x.fixture.dir, 'policies', 'docs.cedar'), POLICIES + '\n@id("extra") forbid (principal, action == App::Action::"shred", resource);\n');
      const ok = await x.op('POST', '/v1/authzen/reload');
      expect(ok.statusCode).toBe(200);
      const v2 = ok.json<{ policy_version: string }>().policy_version;
      expect(v2).not.toBe(v1);
      expect(await decide(x, carol)).toBe(true);

      writeFileSync(join(x.fixture.dir, 'policies', 'docs.cedar'), 'permit (principal, action, resource) when { ');
      const broken = await x.op('POST', '/v1/authzen/reload');
      expect(broken.statusCode).toBe(400);
      expect(errorOf(broken).code).toBe('POLICY_INVALID');
      expect((await x.op('GET', '/v1/authzen')).json<{ policy_version: string }>().policy_version).toBe(v2);
      expect(await decide(x, carol)).toBe(true);
    } finally {
      await x.close();
    }
  });
});
