/**
 * Readiness reflects the audit log's integrity: a log cut back below its newest signed checkpoint
 * (an old backup restored over a newer data folder, rows deleted) or a record rewritten under one
 * makes /readyz answer 503 naming the problem, at start and while running, where before it
 * answered ready while `audit verify` said BROKEN.
 */
import { DatabaseSync } from 'node:sqlite';
import { copyFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildHttpApp, createRuntime, parseConfig } from '../../src/index.ts';
import { startHarness, WIDE_CEILING, type Harness } from '../support.ts';

const harnesses: Harness[] = [];
afterAll(async () => {
  for (const h of harnesses) await h.close();
});

interface Ready {
  status: string;
  checks: { audit: string; audit_problem?: { code: string; seq: number; message: string } };
}

async function withRecords(): Promise<{ h: Harness; older: number }> {
  const h = await startHarness();
  harnesses.push(h);
  const agent = await h.registerAgent('integrity', WIDE_CEILING);
  const task = await h.startTask(agent);
  await h.runtime.audit.checkpointNow();
  const older = (await h.runtime.store.audit.head())?.seq ?? 0;
  expect((await h.authorize(task.token, { tool: 'helpdesk.search_tickets', args: {} })).statusCode).toBe(200);
  await h.runtime.audit.checkpointNow();
  return { h, older };
}

describe('readiness and the audit log', () => {
  it('is ready with checks.audit ok on an intact log, an unanchored tail included', async () => {
    const { h } = await withRecords();
    // records after the newest checkpoint: linked, so still ok
    await h.runtime.audit.append([{ kind: 'secret.set', ts: h.runtime.clock.now(), data: { name: 'n1', by: 'test' } }]);
    expect(await h.runtime.auditIntegrity.recheck()).toMatchObject({ ok: true, tailChecked: 1 });
    const r = await h.inject({ method: 'GET', url: '/readyz' });
    expect(r.statusCode).toBe(200);
    expect(r.json<Ready>().checks.audit).toBe('ok');
  });

  it('answers 503 naming TRUNCATED once the log is cut back below a signed checkpoint', async () => {
    const { h, older } = await withRecords();
    const db = new DatabaseSync(join(h.dir, 'mandate.db'));
    db.prepare('DELETE FROM audit_log WHERE seq > ?').run(older);
    db.close();
    expect((await h.runtime.auditIntegrity.recheck()).ok).toBe(false);
    const r = await h.inject({ method: 'GET', url: '/readyz' });
    expect(r.statusCode).toBe(503);
    expect(r.json<Ready>()).toMatchObject({ status: 'not_ready', checks: { audit: 'broken', audit_problem: { code: 'TRUNCATED', seq: older + 1 } } });
    // the same finding as a full walk
    expect((await h.op('GET', '/v1/audit/verify')).json()).toMatchObject({ ok: false, problem: { code: 'TRUNCATED' } });
  });

  it('answers 503 when a record under the newest checkpoint, or one after it, was rewritten', async () => {
    const { h, older } = await withRecords();
    const head = (await h.runtime.store.audit.head())?.seq ?? 0;
    const db = new DatabaseSync(join(h.dir, 'mandate.db'));
    db.prepare(`UPDATE audit_log SET data = replace(data, '"allow"', '"deny"') WHERE seq = ?`).run(head);
    expect((await h.runtime.auditIntegrity.recheck()).problem?.code).toBe('CHECKPOINT_MISMATCH');
    expect((await h.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);

    // a fresh log segment after the checkpoint, one of its records rewritten
    const { h: h2 } = await withRecords();
    await h2.runtime.audit.append([{ kind: 'secret.set', ts: h2.runtime.clock.now(), data: { name: 'n1', by: 'test' } }, { kind: 'secret.set', ts: h2.runtime.clock.now(), data: { name: 'n2', by: 'test' } }]);
    const tailSeq = ((await h2.runtime.store.audit.head())?.seq ?? 0) - 1;
    const db2 = new DatabaseSync(join(h2.dir, 'mandate.db'));
    db2.prepare(`UPDATE audit_log SET data = '{"n":9}' WHERE seq = ?`).run(tailSeq);
    db2.close();
    expect(await h2.runtime.auditIntegrity.recheck()).toMatchObject({ ok: false, problem: { code: 'HASH_MISMATCH', seq: tailSeq } });
    expect((await h2.inject({ method: 'GET', url: '/readyz' })).json<Ready>().checks.audit).toBe('broken');
    expect(older).toBeGreaterThan(0);
    db.close();
  });

  it('starts not ready on an older copy of the database restored beside newer checkpoints', async () => {
    const { h, older } = await withRecords();
    const dir = mkdtempSync(join(tmpdir(), 'mandate-integrity-'));
    try {
      // a copy of the store taken at `older` records stands in for an old backup
      const db = new DatabaseSync(join(h.dir, 'mandate.db'));
      db.exec(`VACUUM INTO '${join(dir, 'old.db')}'`);
      db.close();
      const old = new DatabaseSync(join(dir, 'old.db'));
      old.prepare('DELETE FROM audit_log WHERE seq > ?').run(older);
      old.prepare('DELETE FROM checkpoints WHERE seq > ?').run(older);
      old.close();
      // the data folder keeps its newer checkpoint copy and keys; the database is the old one
      const data = join(dir, 'data');
      cpSync(h.dir, data, { recursive: true });
      await h.close();
      copyFileSync(join(dir, 'old.db'), join(data, 'mandate.db'));
      rmSync(join(data, 'mandate.db-wal'), { force: true });
      rmSync(join(data, 'mandate.db-shm'), { force: true });
      const rt = await createRuntime(parseConfig({ environment: 'prod', data_dir: data, log: { level: 'silent' } }), { writeAdminKeyFile: false });
      const app = buildHttpApp(rt, { logger: false });
      try {
        const r = await app.inject({ method: 'GET', url: '/readyz' });
        expect(r.statusCode).toBe(503);
        expect(r.json<Ready>().checks).toMatchObject({ audit: 'broken', audit_problem: { code: 'TRUNCATED' } });
      } finally {
        await app.close();
        await rt.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
