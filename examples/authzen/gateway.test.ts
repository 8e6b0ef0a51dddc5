/**
 * The AuthZEN interop API-gateway scenario (authzen-interop.net, API Gateway): the gateway asks
 * whether a subject (type `identity`) may call an HTTP method (the action) on a route template
 * (type `route`). Expected decisions are the interop decision table: everyone may GET
 * /users/{userId} and /todos; admins and editors may POST /todos; evil geniuses and editors may
 * PUT /todos/{todoId}; admins and editors may DELETE it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PID, startExample, type Example, type User } from './support.ts';

let pdp: Example;

beforeAll(async () => {
  pdp = await startExample();
});

afterAll(async () => {
  await pdp.close();
});

const ROUTES = [
  ['GET', '/users/{userId}'],
  ['GET', '/todos'],
  ['POST', '/todos'],
  ['PUT', '/todos/{todoId}'],
  ['DELETE', '/todos/{todoId}'],
] as const;

const TABLE: Record<User, readonly boolean[]> = {
  rick: [true, true, true, true, true],
  morty: [true, true, true, true, true],
  summer: [true, true, true, true, true],
  beth: [true, true, false, false, false],
  jerry: [true, true, false, false, false],
};

const ask = (user: User, method: string, route: string) => ({ subject: { type: 'identity', id: PID[user] }, action: { name: method }, resource: { type: 'route', id: route }, context: {} });

describe('API-gateway scenario', () => {
  for (const user of Object.keys(TABLE) as User[]) {
    it(`answers ${user}'s five routes as the interop decision table does`, async () => {
      const got: boolean[] = [];
      for (const [method, route] of ROUTES) {
        const res = await pdp.post('/access/v1/evaluation', ask(user, method, route));
        expect(res.status, `${method} ${route}`).toBe(200);
        got.push(res.body.decision as boolean);
      }
      expect(got).toEqual(TABLE[user]);
    });
  }

  it('answers the whole table in one evaluations request per user, in order', async () => {
    for (const user of Object.keys(TABLE) as User[]) {
      const res = await pdp.post('/access/v1/evaluations', {
        subject: { type: 'identity', id: PID[user] },
        evaluations: ROUTES.map(([method, route]) => ({ action: { name: method }, resource: { type: 'route', id: route } })),
      });
      expect(res.body.evaluations?.map((e) => e.decision), user).toEqual(TABLE[user]);
    }
  });

  it('denies a route or method the policies do not name, and a subject the PIP does not know', async () => {
    expect((await pdp.post('/access/v1/evaluation', ask('rick', 'GET', '/admin'))).body.decision).toBe(false);
    expect((await pdp.post('/access/v1/evaluation', ask('rick', 'PATCH', '/todos/{todoId}'))).body.decision).toBe(false);
    const stranger = { subject: { type: 'identity', id: 'nobody' }, action: { name: 'POST' }, resource: { type: 'route', id: '/todos' } };
    expect((await pdp.post('/access/v1/evaluation', stranger)).body.decision).toBe(false);
  });

  it('ignores the gateway headers and properties the scenario allows PEPs to add', async () => {
    const res = await pdp.post('/access/v1/evaluation', {
      ...ask('morty', 'PUT', '/todos/{todoId}'),
      subject: { type: 'identity', id: PID.morty, properties: { token_claims: { iss: 'https://idp' } } },
      resource: { type: 'route', id: '/todos/{todoId}', properties: { uri: 'https://todo/todos/42', params: { todoId: '42' } } },
      context: { headers: { 'user-agent': 'gateway', 'x-forwarded-for': '10.0.0.1' }, time: '2025-02-22T10:00:00Z' },
    });
    expect(res.body.decision).toBe(true);
  });
});
