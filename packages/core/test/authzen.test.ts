import { describe, expect, it } from 'vitest';
import {
  EntityStore,
  PolicySet,
  SchemaInfo,
  TypeMapper,
  cedarValue,
  parseEntities,
  parseEvaluationsRequest,
  pascalCase,
  type CedarRequest,
} from '@mandate/core';
import { hasher } from './helpers.ts';

describe('AuthZEN type mapping', () => {
  it('names Cedar entity types from AuthZEN types', () => {
    const m = new TypeMapper('App', { identity: 'App::User' });
    expect(m.entityType('user')).toBe('App::User');
    expect(m.entityType('identity')).toBe('App::User');
    expect(m.entityType('api_key')).toBe('App::ApiKey');
    expect(m.entityType('user-group')).toBe('App::UserGroup');
    expect(m.entityType('Other::Thing')).toBe('Other::Thing');
    expect(m.actionUid('can_read')).toEqual({ type: 'App::Action', id: 'can_read' });
    expect(new TypeMapper('').entityType('user')).toBe('User');
  });

  it('refuses types that name no entity type, and action types', () => {
    const m = new TypeMapper('App');
    for (const t of ['#!', '9lives', 'action', 'App::Action', 'a::', '__cedar::X']) expect(() => m.entityType(t), t).toThrow(/no Cedar entity type/);
    expect(pascalCase('9lives')).toBeUndefined();
    expect(() => new TypeMapper('App', { x: 'App::Action' })).toThrow(/not a Cedar entity type/);
  });
});

describe('AuthZEN values as Cedar values', () => {
  it('keeps strings, booleans, whole numbers, lists, records and Cedar escapes', () => {
    expect(cedarValue({ a: 'x', b: true, c: 3, d: [1, 'y'], e: { f: { __entity: { type: 'App::U', id: 'u' } } } }, 'p')).toEqual({ a: 'x', b: true, c: 3, d: [1, 'y'], e: { f: { __entity: { type: 'App::U', id: 'u' } } } });
  });

  it('turns a fraction with at most four digits into a decimal and refuses any other fraction or unsafe integer', () => {
    expect(cedarValue(12.5, 'p')).toEqual({ __extn: { fn: 'decimal', arg: '12.5' } });
    expect(() => cedarValue(0.30000000000000004, 'p.x')).toThrow(/p\.x/);
    expect(() => cedarValue(2 ** 60, 'p')).toThrow(/cannot be a Cedar value/);
    expect(() => cedarValue(1e-7, 'p')).toThrow();
  });

  it('omits null members of records and refuses null in lists', () => {
    expect(cedarValue({ a: null, b: 1 }, 'p')).toEqual({ b: 1 });
    expect(() => cedarValue([null], 'p')).toThrow(/p\[0\] is null/);
  });
});

describe('AuthZEN evaluations requests', () => {
  const limits = { maxEvaluations: 10 };
  const subject = { type: 'user', id: 'a' };
  const action = { name: 'read' };

  it('applies top-level defaults to each item, an item key replacing the default whole', () => {
    const r = parseEvaluationsRequest(
      { subject: { ...subject, properties: { x: 1 } }, action, context: { t: 1 }, evaluations: [{ resource: { type: 'doc', id: '1' } }, { subject, resource: { type: 'doc', id: '2' }, context: { u: 2 } }] },
      limits,
    );
    expect(r.semantic).toBe('execute_all');
    expect(r.evaluations?.[0]).toEqual({ subject: { ...subject, properties: { x: 1 } }, action: { name: 'read', properties: undefined }, resource: { type: 'doc', id: '1', properties: undefined }, context: { t: 1 } });
    expect(r.evaluations?.[1]?.subject).toEqual({ type: 'user', id: 'a' });
    expect(r.evaluations?.[1]?.context).toEqual({ u: 2 });
  });

  it('only checks a default where an item uses it', () => {
    const r = parseEvaluationsRequest({ subject, action, resource: {}, evaluations: [{ resource: { type: 'doc', id: '1' } }] }, limits);
    expect(r.evaluations).toHaveLength(1);
    expect(() => parseEvaluationsRequest({ subject, action, resource: {}, evaluations: [{}] }, limits)).toThrow(/resource \(the top-level default\)/);
  });

  it('answers as one evaluation without items, and refuses more items than the limit', () => {
    expect(parseEvaluationsRequest({ subject, action, resource: { type: 'doc', id: '1' }, evaluations: [] }, limits).single).toBeDefined();
    const many = Array.from({ length: 11 }, () => ({ resource: { type: 'doc', id: '1' } }));
    expect(() => parseEvaluationsRequest({ subject, action, evaluations: many }, limits)).toThrow(expect.objectContaining({ code: 'LIMIT_EXCEEDED' }) as Error);
  });
});

describe('the generic policy domain', () => {
  const schema = `namespace App {
    type Ctx = { channel?: String };
    entity User = { email: String };
    entity Doc;
    action view;
    action read in [view] appliesTo { principal: User, resource: Doc, context: Ctx };
    action skim in [read];
  }`;

  it('reads attributes, context attributes through common types, and the transitive action hierarchy from a schema', () => {
    const info = SchemaInfo.parse(schema);
    expect([...(info.attributesOf('App::User') ?? [])]).toEqual(['email']);
    expect(info.attributesOf('App::Nope')).toBeUndefined();
    expect([...(info.contextOf({ type: 'App::Action', id: 'read' }) ?? [])]).toEqual(['channel']);
    expect([...(info.actionAncestors.get('skim') ?? [])].sort()).toEqual(['read', 'view']);
  });

  it('evaluates a policy on an action group for every action in the group', () => {
    const info = SchemaInfo.parse(schema);
    const set = PolicySet.load([{ source: 'p.cedar', text: '@id("v") permit (principal, action in App::Action::"view", resource);' }], {}, hasher, { schema: info.schema, actionAncestors: info.actionAncestors });
    const req: CedarRequest = { principal: { type: 'App::User', id: 'u' }, resource: { type: 'App::Doc', id: 'd' }, context: {}, entities: [{ uid: { type: 'App::User', id: 'u' }, attrs: { email: 'e' }, parents: [] }] };
    expect(set.evaluateAction({ type: 'App::Action', id: 'read' }, req).decision).toBe('allow');
    set.dispose();
  });

  it('denies, without a schema, when a policy reads an attribute of an entity the request does not have', () => {
    const set = PolicySet.load([{ source: 'p.cedar', text: '@id("e") permit (principal, action, resource) when { principal.level > 3 };' }], {}, hasher, { schema: null });
    const req: CedarRequest = { principal: { type: 'U', id: 'u' }, resource: { type: 'D', id: 'd' }, context: {}, entities: [] };
    expect(set.evaluateAction({ type: 'Action', id: 'x' }, req)).toMatchObject({ decision: 'deny', reason: 'POLICY_EVALUATION_ERROR', policyIds: ['e'] });
    set.dispose();
  });

  it('passes a decision only the entities it can reach, within a bound', () => {
    const chain = Array.from({ length: 10 }, (_, i) => ({ uid: { type: 'G', id: `g${i}` }, attrs: {}, parents: i < 9 ? [{ type: 'G', id: `g${i + 1}` }] : [] }));
    const store = EntityStore.of(parseEntities([...chain, { uid: { type: 'U', id: 'u' }, attrs: { boss: { __entity: { type: 'U', id: 'b' } } }, parents: [{ type: 'G', id: 'g0' }] }, { uid: { type: 'U', id: 'b' }, attrs: {}, parents: [] }, { uid: { type: 'U', id: 'lonely' }, attrs: {}, parents: [] }], 'e'));
    const seed = store.get({ type: 'U', id: 'u' });
    if (seed === undefined) throw new Error('missing');
    const slice = store.slice([seed]).map((e) => e.uid.id);
    expect(slice).toContain('g9');
    expect(slice).toContain('b');
    expect(slice).not.toContain('lonely');
    expect(store.slice([seed], 3)).toHaveLength(3);
  });

  it('lets the API layer override the file layer and only removes its own entities', () => {
    const file = parseEntities([{ uid: { type: 'U', id: 'a' }, attrs: { v: 1 }, parents: [] }], 'file');
    const store = EntityStore.of(file).upsert(parseEntities([{ uid: { type: 'U', id: 'a' }, attrs: { v: 2 }, parents: [] }], 'api'));
    expect(store.get({ type: 'U', id: 'a' })?.attrs).toEqual({ v: 2 });
    expect(store.size).toBe(1);
    const back = store.remove({ type: 'U', id: 'a' });
    expect(back?.get({ type: 'U', id: 'a' })?.attrs).toEqual({ v: 1 });
    expect(back?.remove({ type: 'U', id: 'a' })).toBeUndefined();
  });
});
