/**
 * The AuthZEN interop "todo" scenario (authzen-interop.net, Todo application, 1.0 payloads)
 * against Mandate configured by examples/authzen/mandate.yaml. The expected decisions are the
 * interop decision table: viewer reads; editor also creates and changes its own todos; admin
 * deletes any todo; evil_genius updates any todo. Rick is admin and evil_genius, Morty and
 * Summer are editors, Beth and Jerry viewers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMAIL, PID, startExample, type Example, type User } from './support.ts';

let pdp: Example;

beforeAll(async () => {
  pdp = await startExample();
});

afterAll(async () => {
  await pdp.close();
});

const TODO = '7240d0db-8ff0-41ec-98b2-34a096273b9f';
const todoOwnedBy = (owner: string) => ({ type: 'todo', id: TODO, properties: { ownerID: owner } });

/** the other todo each user acts on in the table: its own (Rick: Morty's) */
const OWN: Record<User, string> = { rick: EMAIL.morty, morty: EMAIL.morty, summer: EMAIL.summer, beth: EMAIL.beth, jerry: EMAIL.jerry };

//                     read_user(beth) read_user(self) read_todos create  update(rick's) update(own) delete(rick's) delete(own)
const TABLE: Record<User, readonly boolean[]> = {
  rick: /*   */ [true, true, true, true, true, true, true, true],
  morty: /*  */ [true, true, true, true, false, true, false, true],
  summer: /* */ [true, true, true, true, false, true, false, true],
  beth: /*   */ [true, true, true, false, false, false, false, false],
  jerry: /*  */ [true, true, true, false, false, false, false, false],
};

function requests(user: User): { label: string; body: Record<string, unknown> }[] {
  const subject = { type: 'user', id: PID[user] };
  const ask = (name: string, resource: Record<string, unknown>) => ({ subject, action: { name }, resource, context: {} });
  return [
    { label: 'can_read_user beth', body: ask('can_read_user', { type: 'user', id: EMAIL.beth }) },
    { label: 'can_read_user self', body: ask('can_read_user', { type: 'user', id: EMAIL[user] }) },
    { label: 'can_read_todos', body: ask('can_read_todos', { type: 'todo', id: 'todo-1' }) },
    { label: 'can_create_todo', body: ask('can_create_todo', { type: 'todo', id: 'todo-1' }) },
    { label: "can_update_todo rick's", body: ask('can_update_todo', todoOwnedBy(EMAIL.rick)) },
    { label: `can_update_todo ${OWN[user]}'s`, body: ask('can_update_todo', todoOwnedBy(OWN[user])) },
    { label: "can_delete_todo rick's", body: ask('can_delete_todo', todoOwnedBy(EMAIL.rick)) },
    { label: `can_delete_todo ${OWN[user]}'s`, body: ask('can_delete_todo', todoOwnedBy(OWN[user])) },
  ];
}

describe('todo scenario, Access Evaluation API', () => {
  for (const user of Object.keys(TABLE) as User[]) {
    it(`answers ${user}'s eight requests as the interop decision table does`, async () => {
      const got: boolean[] = [];
      for (const { label, body } of requests(user)) {
        const res = await pdp.post('/access/v1/evaluation', body);
        expect(res.status, label).toBe(200);
        got.push(res.body.decision as boolean);
      }
      expect(got).toEqual(TABLE[user]);
    });
  }

  it('answers the same when the PEP names users by e-mail instead of by subject', async () => {
    for (const user of Object.keys(TABLE) as User[]) {
      const got: boolean[] = [];
      for (const { body } of requests(user)) {
        const res = await pdp.post('/access/v1/evaluation', { ...body, subject: { type: 'user', id: EMAIL[user] } });
        got.push(res.body.decision as boolean);
      }
      expect(got, user).toEqual(TABLE[user]);
    }
  });
});

describe('todo scenario, Access Evaluations API (which todos may each user complete)', () => {
  const boxcar = (user: User, owners: string[]) => ({
    subject: { type: 'user', id: PID[user] },
    action: { name: 'can_update_todo' },
    // the scenario sends an empty default resource that every item overrides
    resource: {},
    context: {},
    evaluations: owners.map((owner, i) => ({ resource: { type: 'todo', id: `${TODO.slice(0, -1)}${i}`, properties: { ownerID: owner } } })),
  });

  it.each([
    ['morty', [EMAIL.rick, EMAIL.morty], [false, true]],
    ['rick', [EMAIL.rick, EMAIL.jerry], [true, true]],
    ['jerry', [EMAIL.rick, EMAIL.jerry], [false, false]],
    ['summer', [EMAIL.rick, EMAIL.morty, EMAIL.summer, EMAIL.beth], [false, false, true, false]],
  ] as const)('answers %s for todos owned by %j: %j', async (user, owners, expected) => {
    const res = await pdp.post('/access/v1/evaluations', boxcar(user, [...owners]));
    expect(res.status).toBe(200);
    expect(res.body.evaluations?.map((e) => e.decision)).toEqual(expected);
  });
});
