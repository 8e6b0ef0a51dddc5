import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHttpApp, createRuntime, parseConfig, type MandateRuntime } from '@mandate/server';
import { cli, EXAMPLE_POLICIES } from './support.ts';

const AGENT = 'spiffe://backup.test/agents/worker';

function config(dir: string) {
  // a checkpoint every 3 records: the live checkpoint file moves past the backup quickly
  return parseConfig({ environment: 'prod', data_dir: dir, policies: { dir: EXAMPLE_POLICIES }, audit: { checkpoint_every: 3 }, identity: { dev_issuer: { enabled: true, trust_domain: 'backup.test' } }, log: { level: 'silent' } });
}

async function decide(rt: MandateRuntime, token: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await rt.engine.decide({ taskToken: token, tool: i % 2 === 0 ? 'helpdesk.search_tickets' : 'mail.send', args: { q: `n${i}` } });
}

const verify = async (dir: string) => {
  const r = await cli(['audit', 'verify', '--data-dir', dir, '--json']);
  return { code: r.code, report: JSON.parse(r.out) as { ok: boolean; records: number; checkpoints_verified: number; problem: { code: string } | null } };
};

describe('mandate backup and mandate restore (SQLite)', () => {
  let root: string;
  let live: string;
  let backupDir: string;
  let backedUp: { records: number; head_hash: string };

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'mandate-backup-'));
    live = join(root, 'live');
    backupDir = join(root, 'backup-1');
    const rt = await createRuntime(config(live), { writeAdminKeyFile: false });
    try {
      const app = buildHttpApp(rt, { logger: false });
      const res = await app.inject({ method: 'POST', url: '/v1/agents', headers: { authorization: `Bearer ${String(rt.bootstrapAdminKey)}` }, payload: { id: AGENT, owner: 'team', type: 'support', ceiling: { tools: ['helpdesk.*', 'mail.send'], data_classes: ['internal'], environments: ['prod'], max_ttl: '1h', max_calls: 500 } } });
      expect(res.statusCode, res.body).toBe(201);
      await app.close();
      const svid = await (rt.devIssuer as NonNullable<typeof rt.devIssuer>).mint(AGENT, { audience: 'mandate', ttlMs: 60_000 });
      const { token } = await rt.tasks.start(svid, { purpose: 'triage', environment: 'prod', tools: [{ name: 'helpdesk.search_tickets' }], data_classes: ['internal'], budgets: { calls: 400 } });
      await decide(rt, token, 10);
      // online: the runtime is open and keeps deciding around the copy
      const [b] = await Promise.all([cli(['backup', '--data-dir', live, '--out', backupDir, '--json']), decide(rt, token, 6)]);
      expect(b.code, b.err).toBe(0);
      backedUp = JSON.parse(b.out) as typeof backedUp;
      await decide(rt, token, 12);
    } finally {
      await rt.close();
    }
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('writes a verified backup folder without the key encryption key', () => {
    expect(readdirSync(backupDir).sort()).toEqual(['audit-checkpoint-keys.json', 'audit-checkpoints.jsonl', 'backup.json', 'mandate.db'].sort());
    expect(backedUp.records).toBeGreaterThan(10);
    // never over an existing folder
    return cli(['backup', '--data-dir', live, '--out', backupDir]).then((r) => {
      expect(r.code).toBe(1);
      expect(r.err).toContain('CONFLICT');
    });
  });

  it('restores into an empty data folder, and the restored chain verifies with its checkpoints', async () => {
    const fresh = join(root, 'fresh');
    const r = await cli(['restore', '--from', backupDir, '--data-dir', fresh]);
    expect(r.code, r.err).toBe(0);
    const v = await verify(fresh);
    expect(v.code).toBe(0);
    expect(v.report).toMatchObject({ ok: true, records: backedUp.records });
    expect(v.report.checkpoints_verified).toBeGreaterThan(0);
    // the restored node serves and extends the chain, once given the key encryption key (kept apart from backups)
    copyFileSync(join(live, 'kek.key'), join(fresh, 'kek.key'));
    const rt = await createRuntime(config(fresh), { writeAdminKeyFile: false });
    await rt.audit.append([{ kind: 'key.rotated', ts: rt.clock.now(), data: { note: 'after restore' } }]);
    await rt.close();
    const after = await verify(fresh);
    expect(after.report).toMatchObject({ ok: true, records: backedUp.records + 1 });
  });

  it('a database copied back over a live folder reads as cut back; restore --replace sets the old store aside and verifies', async () => {
    const over = join(root, 'over');
    const r0 = await cli(['restore', '--from', backupDir, '--data-dir', over]);
    expect(r0.code).toBe(0);
    // make `over` a live folder that moved on: its own newer log and checkpoints
    for (const f of ['mandate.db', 'audit-checkpoints.jsonl']) copyFileSync(join(live, f), join(over, f));
    // the trap: only the database file put back, the newer checkpoint file left in place
    copyFileSync(join(backupDir, 'mandate.db'), join(over, 'mandate.db'));
    const naive = await verify(over);
    expect(naive.code).toBe(1);
    expect(naive.report.problem?.code).toBe('TRUNCATED');

    const refused = await cli(['restore', '--from', backupDir, '--data-dir', over]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('--replace');
    const replaced = await cli(['restore', '--from', backupDir, '--data-dir', over, '--replace']);
    expect(replaced.code, replaced.err).toBe(0);
    expect(replaced.out).toMatch(/pre-restore-/);
    const aside = readdirSync(over).find((f) => f.startsWith('pre-restore-')) as string;
    expect(readdirSync(join(over, aside))).toContain('mandate.db');
    expect((await verify(over)).report).toMatchObject({ ok: true, records: backedUp.records });
  });

  it('refuses to restore a backup whose chain was edited, and changes nothing', async () => {
    const bad = join(root, 'backup-bad');
    expect((await cli(['backup', '--data-dir', join(root, 'fresh'), '--out', bad])).code).toBe(0);
    const db = new DatabaseSync(join(bad, 'mandate.db'));
    db.exec(`UPDATE audit_log SET data = replace(data, '"deny"', '"allow"') WHERE kind = 'decision' AND data LIKE '%"deny"%'`);
    db.close();
    const target = join(root, 'untouched');
    const r = await cli(['restore', '--from', bad, '--data-dir', target]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('HASH_MISMATCH');
    expect(existsSync(join(target, 'mandate.db'))).toBe(false);
  });
});
