/**
 * A store that cannot write (here SQLite's SQLITE_FULL, made real with max_page_count, which is
 * what a full disk looks like to SQLite): /readyz says not ready, decisions are denied with
 * AUDIT_UNAVAILABLE, a task start answers 503 with a stable code, and all of it recovers once
 * there is room again.
 */
import type { SqliteStore } from '@mandate/store-sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { task } from '../../../store-testkit/src/index.ts';
import { errorOf, mandate, startHarness, WIDE_CEILING, type DecisionBody, type Harness } from '../support.ts';

let h: Harness;
let agent: string;
let token: string;

beforeAll(async () => {
  // max_page_count, this test's full disk, holds for the connection that sets it: here the event
  // loop's, which then commits the audit too (a real full disk fails the commit thread's
  // connection alike: commit-thread.test.ts in the SQLite store covers a failing commit there)
  h = await startHarness({ config: { audit: { commit_thread: false } } });
  agent = await h.registerAgent('full', WIDE_CEILING);
  token = (await h.startTask(agent)).token;
});

afterAll(() => h.close());

const search = (i: number) => ({ tool: 'helpdesk.search_tickets', args: { query: `refund ${i} ${'x'.repeat(400)}` } });

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting until ${what}`);
}

describe('a store that cannot write', () => {
  it('is not ready, denies every call, and answers a task start with 503, until there is room again', async () => {
    expect((await h.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    const db = (h.runtime.store as SqliteStore).unsafeDatabase();
    // no free pages to reuse and no room to grow: a table's next new page is SQLITE_FULL, which
    // is what a full disk is to SQLite (the filler, in this test's database only, takes the rest)
    db.exec('CREATE TABLE test_filler (b BLOB)');
    db.exec('VACUUM');
    const pages = (db.prepare('PRAGMA page_count').get() as { page_count: number }).page_count;
    db.exec(`PRAGMA max_page_count = ${pages}`);
    for (const size of [4096, 1024, 256, 64, 16, 1]) {
      for (;;) {
        try {
          db.prepare('INSERT INTO test_filler (b) VALUES (zeroblob(?))').run(size);
        } catch {
          break;
        }
      }
    }
    // idle, with nothing committed for a while: the readiness probe finds out by itself
    await eventually(async () => (await h.inject({ method: 'GET', url: '/readyz' })).statusCode === 503, '/readyz says not ready while idle');
    // each table may still have room in its last page: calls fill the audit log's
    let i = 0;
    let refused: DecisionBody | undefined;
    for (; i < 300 && refused === undefined; i++) {
      const d = (await h.authorize(token, search(i))).json<DecisionBody>();
      if (d.effect !== 'allow') refused = d;
    }
    expect(refused).toMatchObject({ effect: 'deny', reasons: ['AUDIT_UNAVAILABLE'] });
    expect((await h.authorize(token, search(++i))).json<DecisionBody>()).toMatchObject({ effect: 'deny', reasons: ['AUDIT_UNAVAILABLE'] });
    // other tasks take the last room of the tasks table: a start now fails at its first write
    for (let n = 0; n < 300; n++) {
      const more = await h.runtime.store.tasks.createTask(task(`task_filler_${n}`, agent)).then(() => true, () => false);
      if (!more) break;
    }
    const svid = await h.workloadToken(agent);
    const start = await h.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${svid}` }, payload: { mandate: mandate() } });
    expect(start.statusCode, start.body).toBe(503);
    expect(errorOf(start).code).toBe('STORE_UNAVAILABLE');

    const ready = await h.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ status: 'not_ready', checks: { store: 'ok', commit: 'failing' } });
    // still not ready when asked again later: the probe cannot write either
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await h.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);

    // room again: readiness comes back by itself (a probe commits), and so do allows
    db.exec('PRAGMA max_page_count = 1073741823');
    await eventually(async () => (await h.inject({ method: 'GET', url: '/readyz' })).statusCode === 200, '/readyz says ready again');
    expect((await h.authorize(token, search(++i))).json<DecisionBody>()).toMatchObject({ effect: 'allow' });
    expect((await h.inject({ method: 'GET', url: '/readyz' })).json()).toMatchObject({ status: 'ready', checks: { commit: 'ok' } });
  });

  it('leaves nothing behind when it probes: the audit chain and the controls are unchanged', async () => {
    const before = (await h.runtime.store.audit.head())?.seq;
    await h.runtime.store.probeWrite();
    await h.runtime.store.probeWrite();
    expect((await h.runtime.store.audit.head())?.seq).toBe(before);
    expect(await h.runtime.store.controls.getControl('mandate.write_probe')).toBeUndefined();
    expect((await h.verifyAudit()).ok).toBe(true);
  });
});
