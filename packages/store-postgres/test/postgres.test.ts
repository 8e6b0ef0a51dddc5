import { describe, expect, it } from 'vitest';
import { verifyAuditLog, type AuditDraft, type DecisionCommit } from '@mandate/core';
import { draft, seedTask, T0, testHasher } from '../../store-testkit/src/index.ts';
import { MIGRATIONS, openPostgresStore } from '../src/index.ts';
import { admin, approval, eventually, freshSchema, PG_URL, storeHarness } from './support.ts';

const { open, twoNodes, gate: openGate } = storeHarness();

function allowEntry(i: number, limits: { calls?: number; toolCalls?: number }): DecisionCommit {
  const variant = (reason: string): AuditDraft[] => [draft(i, { data: { i, effect: 'deny', reasons: [reason] } })];
  return {
    drafts: [draft(i, { data: { i, effect: 'allow', reasons: [] } }), draft(i, { kind: 'action', data: { final: 'allowed' } })],
    budget: { taskId: 'task-1', tool: 'kb.search', limits, exhausted: (which) => variant(which === 'tool' ? 'TOOL_BUDGET_EXHAUSTED' : 'BUDGET_EXHAUSTED') },
  };
}



describe('postgres store: two nodes on one schema', () => {
  it('shows labels one node wrote to a read on the other, and keeps the least trusted of concurrent writes', async () => {
    const [a, b] = await twoNodes();
    const limits = { maxLabels: 100, maxTasks: 8, maxEntries: 100 };
    const at = { now: T0, expiresAt: T0 + 60_000 };
    await Promise.all([
      a.labels.putLabels('tickets', 'tickets', [{ key: 'email:x@evil.example', level: 'unknown', tasks: ['t-a'] }], at, limits),
      b.labels.putLabels('tickets', 'tickets', [{ key: 'email:x@evil.example', level: 'untrusted_text', tasks: ['t-b'] }], at, limits),
    ]);
    for (const node of [a, b]) {
      const read = await node.labels.readLabels({ entries: ['tickets'] }, T0 + 1, 10);
      expect(read.labels).toHaveLength(1);
      expect(read.labels[0]?.level).toBe('untrusted_text');
      expect([...(read.labels[0]?.tasks ?? [])].sort()).toEqual(['t-a', 't-b']);
    }
  });

  it('spends a budget exactly up to its limit when both nodes commit decisions at once, in one chain', async () => {
    const [a, b] = await twoNodes();
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).audit.commitDecision(allowEntry(i, { calls: 10 }))));
    const ok = results.filter((r) => r.budget?.ok);
    expect(ok).toHaveLength(10);
    expect(ok.map((r) => r.budget?.usage.calls).sort((x, y) => (x ?? 0) - (y ?? 0))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await b.budgets.usage('task-1', 'kb.search')).toEqual({ calls: 10, toolCalls: 10 });
    const all = await a.audit.readRange(1, 1000);
    expect(all.filter((r) => r.data['effect'] === 'allow')).toHaveLength(10);
    expect(all).toHaveLength(10 * 2 + 50);
    expect(await verifyAuditLog(b.audit, [], new Map(), testHasher)).toMatchObject({ ok: true, records: 70 });
  });

  it('keeps one unbroken chain when both nodes append at once, each append kept together', async () => {
    const [a, b] = await twoNodes();
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).audit.append([draft(i), draft(i + 100), draft(i + 200)])));
    for (const records of results) expect(records.map((r) => r.seq - (records[0]?.seq ?? 0))).toEqual([0, 1, 2]);
    expect(new Set(results.flat().map((r) => r.seq)).size).toBe(120);
    expect(await verifyAuditLog(a.audit, [], new Map(), testHasher, 50)).toMatchObject({ ok: true, records: 120 });
    expect(await b.audit.head()).toEqual((await a.audit.readRange(120, 1))[0]);
  });

  it('lets exactly one node use a single-use approval', async () => {
    const [a, b] = await twoNodes();
    await seedTask(a, 'task-1');
    await a.approvals.createApproval(approval('ap-1'));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).approvals.transitionApproval('ap-1', ['approved'], 'used', { at: T0 + 10 + i, callId: `use-${i}` })),
    );
    const winners = results.filter((r) => r.changed);
    expect(winners).toHaveLength(1);
    const stored = await b.approvals.getApproval('ap-1');
    expect(stored).toEqual(winners[0]?.approval);
    expect(stored).toMatchObject({ state: 'used', usedCallId: expect.stringMatching(/^use-/) as string });
    for (const r of results) expect(r.approval?.state).toBe('used');
  });

  it('lets exactly one node use a single-use key (a delegation token)', async () => {
    const [a, b] = await twoNodes();
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).revocations.useOnce(`wl:race-${round}`, `task-${i}`, T0 + 60_000, 'used for a delegation', T0 + i)),
      );
      expect(results.filter((r) => r)).toHaveLength(1);
      expect(await a.revocations.isTokenRevoked(`wl:race-${round}`)).toBe(true);
    }
  });

  it('consumes and carves exactly when both nodes spend the same task at once', async () => {
    const [a, b] = await twoNodes();
    const spent = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).budgets.consume('task-1', i % 4 === 0 ? 'x' : 'y', { calls: 12, toolCalls: 5 })));
    expect(spent.filter((r) => r.ok)).toHaveLength(10);
    expect(await a.budgets.usage('task-1', 'x')).toEqual({ calls: 10, toolCalls: 5 });
    const carved = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).budgets.carve('task-2', 3, 30)));
    expect(carved.filter(Boolean)).toHaveLength(10);
    expect((await b.budgets.usage('task-2', 'x')).calls).toBe(30);
  });

  it('mixes decision commits and standalone spends on new tools across both nodes, exactly and without deadlock', async () => {
    const [a, b] = await twoNodes();
    const ops = Array.from({ length: 80 }, (_, i) => {
      const node = i % 2 === 0 ? a : b;
      const tool = `tool-${i % 6}`;
      const limits = { calls: 40, toolCalls: 5 };
      return i % 3 === 0
        ? node.budgets.consume('task-1', tool, limits).then((r) => r.ok)
        : node.audit.commitDecision({ ...allowEntry(i, limits), budget: { ...(allowEntry(i, limits).budget as NonNullable<DecisionCommit['budget']>), tool } }).then((r) => r.budget?.ok === true);
    });
    const ok = await Promise.all(ops);
    expect(ok.filter(Boolean)).toHaveLength(30); // 6 tools × 5, under the total of 40
    expect((await a.budgets.usage('task-1', 'tool-0')).calls).toBe(30);
  });

  it('lets exactly one node end a task and both read the winner', async () => {
    const [a, b] = await twoNodes();
    await seedTask(a, 'task-1');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).tasks.transitionTask('task-1', ['active'], i % 3 === 0 ? 'killed' : 'completed', T0 + i, `r${i}`)));
    expect(results.filter((r) => r.changed)).toHaveLength(1);
    const stored = await b.tasks.getTask('task-1');
    for (const r of results) expect(r.task).toEqual(stored);
  });
});

describe('postgres store: migrations', () => {
  it('migrates a fresh schema once when several nodes open it at the same moment', async () => {
    const schema = freshSchema();
    const opened = await Promise.all(Array.from({ length: 4 }, () => open(schema)));
    expect(opened).toHaveLength(4);
    const rows = await admin(async (c) => (await c.query(`SELECT version, name FROM "${schema}".schema_migrations ORDER BY version`)).rows);
    expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    await opened[0]?.audit.append([draft(1)]);
    expect(await opened[3]?.audit.head()).toMatchObject({ seq: 1 });
  });

  it('keeps the data and applies nothing again when reopened', async () => {
    const schema = freshSchema();
    const first = await open(schema);
    const t = await seedTask(first, 'task-1');
    const records = await first.audit.append([draft(1), draft(2)]);
    await first.close();
    const second = await open(schema);
    expect(await second.tasks.getTask('task-1')).toEqual(t);
    expect(await second.audit.readRange(1, 10)).toEqual(records);
    const [next] = await second.audit.append([draft(3)]);
    expect(next).toMatchObject({ seq: 3, prevHash: records[1]?.hash });
  });

  it('refuses a schema written by a newer version, with CONFIG_INVALID', async () => {
    const schema = freshSchema();
    await (await open(schema)).close();
    await admin((c) => c.query(`INSERT INTO "${schema}".schema_migrations (version, name, applied_at) VALUES (999, 'from the future', 0)`));
    await expect(openPostgresStore({ url: PG_URL, hasher: testHasher, schema })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('sets the schema and the statement timeout on every connection', async () => {
    const schema = freshSchema();
    const s = await open(schema, { statementTimeoutMs: 1234 });
    const client = await s.unsafePool().connect();
    try {
      expect((await client.query('SHOW search_path')).rows).toEqual([{ search_path: schema }]);
      expect((await client.query('SHOW statement_timeout')).rows).toEqual([{ statement_timeout: '1234ms' }]);
      expect((await client.query('SELECT current_schema() AS s')).rows).toEqual([{ s: schema }]);
    } finally {
      client.release();
    }
  });

  it('refuses a schema name it cannot use safely', async () => {
    for (const schema of ['Mandate', 'a-b', 'x; DROP TABLE y', 'pg_mine', '']) {
      await expect(openPostgresStore({ url: PG_URL, hasher: testHasher, schema })).rejects.toThrow(TypeError);
    }
  });
});

describe('postgres store: failures', () => {
  it('rolls back a whole batch with AUDIT_UNAVAILABLE when an insert fails, and continues the chain', async () => {
    const [a] = await twoNodes();
    await a.audit.append([draft(1)]);
    await a.unsafePool().query(`CREATE FUNCTION fail_outcome() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full (simulated)'; END $$;
      CREATE TRIGGER fail_outcome BEFORE INSERT ON audit_log FOR EACH ROW WHEN (NEW.kind = 'outcome') EXECUTE FUNCTION fail_outcome()`);
    await a.budgets.consume('task-1', 'kb.search', {});
    const results = await Promise.allSettled([a.audit.commitDecision(allowEntry(2, { calls: 5 })), a.audit.append([draft(3, { kind: 'outcome' })])]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(results[0]).toMatchObject({ reason: { code: 'AUDIT_UNAVAILABLE' } });
    expect((await a.audit.readRange(1, 10)).map((r) => r.seq)).toEqual([1]);
    expect(await a.budgets.usage('task-1', 'kb.search')).toEqual({ calls: 1, toolCalls: 1 }); // the spend rolled back too

    await a.unsafePool().query('DROP TRIGGER fail_outcome ON audit_log');
    const [next] = await a.audit.append([draft(4)]);
    expect(next?.seq).toBe(2);
    expect(await verifyAuditLog(a.audit, [], new Map(), testHasher)).toMatchObject({ ok: true, records: 2 });
  });

  it('fails closed with AUDIT_UNAVAILABLE while another connection holds the chain head past the statement timeout', async () => {
    const [a] = await twoNodes({ statementTimeoutMs: 300 });
    await admin(async (c) => {
      await c.query('BEGIN');
      await c.query(`SELECT * FROM "${a.schema}".audit_head FOR UPDATE`);
      await expect(a.audit.append([draft(1)])).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
      await c.query('ROLLBACK');
    });
    await expect(a.audit.append([draft(2)])).resolves.toHaveLength(1);
  });

  it('refuses an audit draft PostgreSQL cannot store before it joins a batch', async () => {
    const [a] = await twoNodes();
    await expect(a.audit.append([draft(1, { callId: 'nul\u0000byte' })])).rejects.toThrow(TypeError);
    await expect(a.audit.append([draft(1, { ts: T0 + 0.5 })])).rejects.toThrow(TypeError);
    expect(await a.audit.head()).toBeUndefined();
  });

  it('answers ping with false, not an error, when the database is unreachable, and recovers', async () => {
    const gate = await openGate();
    const s = await open(freshSchema(), { url: gate.url });
    expect(await s.ping()).toBe(true);
    gate.close({ cut: true });
    expect(await s.ping()).toBe(false);
    await expect(s.audit.append([draft(1)])).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    gate.open();
    await eventually('ping answers again', () => s.ping());
    await expect(s.audit.append([draft(2)])).resolves.toHaveLength(1);
  });

  it('fails to open with NOT_READY when the database does not answer', async () => {
    const gate = await openGate();
    gate.close();
    await expect(openPostgresStore({ url: gate.url, hasher: testHasher, schema: freshSchema() })).rejects.toMatchObject({ code: 'NOT_READY' });
  });

  it('refuses appends after close, and closes twice', async () => {
    const [a] = await twoNodes();
    await a.close();
    await expect(a.close()).resolves.toBeUndefined();
    await expect(a.audit.append([draft(1)])).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    expect(await a.ping()).toBe(false);
  });
});
