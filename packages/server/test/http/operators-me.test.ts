/**
 * GET /v1/operators/me: who the calling operator key is, and which operator actions its role may
 * take, from the least role each action's route requires; each answer agrees with what the
 * route itself enforces (the dashboard hides what the server would refuse).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPERATOR_ACTIONS } from '../../src/http/routes/operators.ts';
import { leastOperatorRole } from '../../src/http/openapi.ts';
import { errorOf, startHarness, type Harness } from '../support.ts';

interface Me {
  id: string;
  name: string;
  role: string;
  can: Record<string, boolean>;
}

describe('GET /v1/operators/me', () => {
  let h: Harness;
  const keys: Record<string, { id: string; key: string }> = {};
  beforeAll(async () => {
    h = await startHarness();
    for (const role of ['viewer', 'approver', 'admin'] as const) {
      const res = await h.op('POST', '/v1/operators/keys', { name: `${role}-key`, role });
      expect(res.statusCode, res.body).toBe(201);
      keys[role] = res.json<{ id: string; key: string }>();
    }
  });
  afterAll(async () => h?.close());

  const me = async (role: string) => {
    const res = await h.op('GET', '/v1/operators/me', undefined, keys[role]?.key);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<Me>();
  };

  it('names every action by a documented route that an operator role may call', () => {
    for (const route of Object.values(OPERATOR_ACTIONS)) expect(leastOperatorRole(route), route).toBeDefined();
  });

  it('tells a viewer key who it is and that it may take none of the actions', async () => {
    const v = await me('viewer');
    expect(v).toMatchObject({ id: keys['viewer']?.id, name: 'viewer-key', role: 'viewer' });
    expect(Object.keys(v.can).sort()).toEqual(Object.keys(OPERATOR_ACTIONS).sort());
    expect(Object.values(v.can).every((x) => !x)).toBe(true);
    // and the kill route refuses it, as said
    const kill = await h.op('POST', '/v1/kill', { agent: 'spiffe://test.local/nobody', reason: 'viewer tries' }, keys['viewer']?.key);
    expect(kill.statusCode).toBe(403);
    expect(errorOf(kill).code).toBe('FORBIDDEN');
  });

  it('lets an approver approve, deny and acknowledge alerts, but not kill, reload policies or manage keys', async () => {
    const a = await me('approver');
    expect(a.can).toEqual({ kill: false, unkill: false, approve: true, deny: true, acknowledge_alert: true, lift_containment: false, reload_policies: false, manage_keys: false });
    const reload = await h.op('POST', '/v1/policies/reload', {}, keys['approver']?.key);
    expect(reload.statusCode).toBe(403);
  });

  it('lets an admin take every action', async () => {
    const a = await me('admin');
    expect(Object.values(a.can).every(Boolean)).toBe(true);
  });

  it('refuses a request without an operator key, and an unknown query parameter', async () => {
    const none = await h.inject({ method: 'GET', url: '/v1/operators/me' });
    expect(none.statusCode).toBe(401);
    const odd = await h.op('GET', '/v1/operators/me?role=admin', undefined, keys['viewer']?.key);
    expect(odd.statusCode).toBe(400);
    expect(errorOf(odd).code).toBe('MALFORMED_REQUEST');
  });
});
