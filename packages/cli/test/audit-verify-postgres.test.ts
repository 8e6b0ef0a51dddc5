import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHttpApp, createRuntime, parseConfig } from '@mandate/server';
import { admin, dropSchema, freshSchema, PG_URL } from '../../store-postgres/test/support.ts';
import { cli, EXAMPLE_POLICIES } from './support.ts';

describe('mandate audit verify on a PostgreSQL store', () => {
  const schema = freshSchema();
  let dir: string;
  const args = () => ['audit', 'verify', '--store', PG_URL, '--schema', schema, '--data-dir', dir];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mandate-cli-pg-verify-'));
    const rt = await createRuntime(
      parseConfig({ environment: 'prod', data_dir: dir, store: PG_URL, postgres: { schema }, policies: { dir: EXAMPLE_POLICIES }, identity: { dev_issuer: { enabled: true, trust_domain: 'pg.verify' } }, log: { level: 'silent' } }),
      { writeAdminKeyFile: false },
    );
    try {
      const agent = 'spiffe://pg.verify/agents/verifier';
      const app = buildHttpApp(rt, { logger: false });
      const res = await app.inject({ method: 'POST', url: '/v1/agents', headers: { authorization: `Bearer ${String(rt.bootstrapAdminKey)}` }, payload: { id: agent, owner: 'team', type: 'support', ceiling: { tools: ['helpdesk.*', 'mail.send'], data_classes: ['internal'], environments: ['prod'], max_ttl: '1h', max_calls: 100 } } });
      expect(res.statusCode, res.body).toBe(201);
      await app.close();
      const svid = await (rt.devIssuer as NonNullable<typeof rt.devIssuer>).mint(agent, { audience: 'mandate', ttlMs: 60_000 });
      const { token } = await rt.tasks.start(svid, { purpose: 'triage', environment: 'prod', tools: [{ name: 'helpdesk.search_tickets' }], data_classes: ['internal'], budgets: { calls: 50 } });
      expect((await rt.engine.decide({ taskToken: token, tool: 'helpdesk.search_tickets', args: {} })).effect).toBe('allow');
      expect((await rt.engine.decide({ taskToken: token, tool: 'mail.send', args: {} })).effect).toBe('deny');
    } finally {
      // closing writes the checkpoint covering the tail
      await rt.close();
    }
  });

  afterAll(async () => {
    await dropSchema(schema);
    await rm(dir, { recursive: true, force: true });
  });

  it('says ok on an intact log, with its signed checkpoints verified', async () => {
    const r = await cli([...args(), '--json', '--require-anchored']);
    expect(r.code, r.out + r.err).toBe(0);
    const report = JSON.parse(r.out) as { ok: boolean; records: number; checkpoints_verified: number };
    expect(report.ok).toBe(true);
    expect(report.records).toBeGreaterThanOrEqual(4);
    expect(report.checkpoints_verified).toBeGreaterThanOrEqual(1);
  });

  it('reports an edited record as BROKEN with exit 1', async () => {
    await admin((c) => c.query(`UPDATE "${schema}".audit_log SET data = replace(data, '"deny"', '"allow"') WHERE kind = 'decision' AND data LIKE '%"deny"%'`));
    const r = await cli(args());
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^BROKEN at record \d+: HASH_MISMATCH/);
  });

  it('refuses a --store that is not PostgreSQL, and names an unreachable one without its password', async () => {
    expect((await cli(['audit', 'verify', '--store', 'sqlite:/tmp/x.db'])).code).toBe(2);
    const r = await cli(['audit', 'verify', '--store', 'postgres://mandate:hunter2secret@127.0.0.1:1/none', '--data-dir', dir]);
    expect(r.code).toBe(4);
    expect(r.err).not.toContain('hunter2secret');
  });
});
