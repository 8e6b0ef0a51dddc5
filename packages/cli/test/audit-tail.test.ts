import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { canonicalJson, recordHash, type AuditKind, type AuditRecord, type Checkpoint, type JsonObject } from '@mandate/core';
import { buildHttpApp, createRuntime, parseConfig, sha256Hasher } from '@mandate/server';
import { openSqliteStore } from '@mandate/store-sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, EXAMPLE_POLICIES } from './support.ts';

// The records after the newest signed checkpoint (the unanchored tail) are reported as such,
// and a log cut back to an older checkpoint is caught by the checkpoints anchored outside the
// data folder (audit.anchors.file, `audit verify --anchors`).

let root: string;
let source: string;
let anchorFile: string;
let jwks: string;
let records: number;
/** the seq of each checkpoint signed while the fixture was built, oldest first */
let signed: number[];

interface Report {
  ok: boolean;
  status: string;
  records: number;
  checkpoints_verified: number;
  anchored_seq: number;
  unanchored: { records: number; from_seq: number; to_seq: number; since: string; until: string } | null;
  anchors: { source: string; checkpoints: number; newest_seq: number; records_after: number } | null;
  problem: { code: string; seq: number; message: string } | null;
  warning: string | null;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mandate-audit-tail-'));
  source = join(root, 'source');
  mkdirSync(join(root, 'anchors'));
  anchorFile = join(root, 'anchors', 'checkpoints.jsonl');
  const config = parseConfig({
    environment: 'prod',
    data_dir: source,
    policies: { dir: EXAMPLE_POLICIES },
    identity: { dev_issuer: { enabled: true, trust_domain: 'test.local' } },
    audit: { anchors: { file: anchorFile } },
    log: { level: 'silent' },
  });
  const runtime = await createRuntime(config, { writeAdminKeyFile: false });
  const app = buildHttpApp(runtime);
  try {
    const admin = `Bearer ${runtime.bootstrapAdminKey ?? ''}`;
    const agent = 'spiffe://test.local/agents/tail';
    expect((await app.inject({ method: 'POST', url: '/v1/agents', headers: { authorization: admin }, payload: { id: agent, owner: 'team', type: 'support' } })).statusCode).toBe(201);
    const svid = await runtime.devIssuer?.mint(agent, { audience: 'mandate', ttlMs: 300_000 });
    const start = await app.inject({
      method: 'POST',
      url: '/v1/tasks',
      headers: { authorization: `Bearer ${svid ?? ''}` },
      payload: { mandate: { purpose: 'unanchored tail tests', environment: 'prod', tools: [{ name: 'helpdesk.search_tickets' }], data_classes: ['internal'], budgets: { calls: 100 } } },
    });
    expect(start.statusCode).toBe(201);
    const { token } = start.json<{ token: string }>();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 6; i++) {
        const res = await app.inject({ method: 'POST', url: '/v1/authorize', headers: { authorization: `Bearer ${token}` }, payload: { tool: 'helpdesk.search_tickets', args: { q: `r${round} q${i}` } } });
        expect(res.statusCode).toBe(200);
      }
      await runtime.audit.checkpointNow();
    }
    records = (await runtime.store.audit.head())?.seq ?? 0;
    signed = (await runtime.store.checkpoints.listCheckpoints()).map((c) => c.seq);
    writeFileSync((jwks = join(root, 'jwks.json')), JSON.stringify(runtime.auditKeys.jwks()));
  } finally {
    await app.close();
    await runtime.close();
  }
  expect(signed).toHaveLength(3);
  expect(signed.at(-1)).toBe(records);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let copies = 0;

/** A copy of the data folder (the anchor file stays where it is: out of the copy's reach). */
async function copy(fn?: (dir: string) => unknown): Promise<string> {
  copies += 1;
  const dir = join(root, `copy-${copies}`);
  cpSync(source, dir, { recursive: true });
  if (fn) await fn(dir);
  return dir;
}

/** Appends records the way a node does that crashed before its next checkpoint. */
async function appendUnanchored(dir: string, n: number): Promise<void> {
  const store = openSqliteStore({ path: join(dir, 'mandate.db'), hasher: sha256Hasher });
  try {
    const base = Date.UTC(2026, 10, 2, 12, 0, 0);
    await store.audit.append(Array.from({ length: n }, (_, i) => ({ kind: 'decision' as const, ts: base + i * 1000, callId: `late-${i}`, data: { effect: i % 2 === 0 ? 'deny' : 'allow' } })));
  } finally {
    await store.close();
  }
}

function sql(dir: string, fn: (db: DatabaseSync) => void): void {
  const db = new DatabaseSync(join(dir, 'mandate.db'));
  try {
    fn(db);
  } finally {
    db.close();
  }
}

async function verify(dir: string, ...extra: string[]): Promise<{ code: number; report: Report }> {
  const r = await cli(['audit', 'verify', '--data-dir', dir, '--json', ...extra]);
  try {
    return { code: r.code, report: JSON.parse(r.out) as Report };
  } catch {
    throw new Error(`audit verify printed no JSON (exit ${r.code}): ${r.out} ${r.err}`);
  }
}

describe('audit verify and the unanchored tail', () => {
  it('calls a log whose server stopped cleanly intact: its last checkpoint covers its last record', async () => {
    const { code, report } = await verify(source, '--require-anchored');
    expect(code).toBe(0);
    expect(report).toMatchObject({ ok: true, status: 'intact', records, anchored_seq: records, unanchored: null, warning: null });
  });

  it('reports the records after the newest checkpoint as an unanchored tail: how many and since when', async () => {
    const dir = await copy((d) => appendUnanchored(d, 5));
    const { code, report } = await verify(dir);
    expect(code).toBe(0);
    expect(report).toMatchObject({ ok: true, status: 'unanchored_tail', records: records + 5, anchored_seq: records });
    expect(report.unanchored).toEqual({ records: 5, from_seq: records + 1, to_seq: records + 5, since: '2026-11-02T12:00:00.000Z', until: '2026-11-02T12:00:04.000Z' });
    expect(report.warning).toContain('deleting or rewriting them would not be detected');
    const human = await cli(['audit', 'verify', '--data-dir', dir]);
    expect(human.code).toBe(0);
    expect(human.out).not.toMatch(/^ok:/);
    expect(human.out).toContain(`intact up to record ${records}, UNANCHORED TAIL of 5`);
  });

  it('reports a log whose last records after the newest checkpoint were deleted as an unanchored tail, also with --jwks', async () => {
    const dir = await copy(async (d) => {
      await appendUnanchored(d, 5);
      sql(d, (db) => db.prepare('DELETE FROM audit_log WHERE seq > ?').run(records + 3));
    });
    for (const extra of [[], ['--jwks', jwks]]) {
      const { report } = await verify(dir, ...extra);
      expect(report.status).toBe('unanchored_tail');
      expect(report.unanchored).toMatchObject({ records: 3, from_seq: records + 1, to_seq: records + 3 });
    }
  });

  it('reports a rehashed tail after the newest checkpoint as unanchored (nothing signed can tell it was rewritten)', async () => {
    const dir = await copy(async (d) => {
      await appendUnanchored(d, 4);
      sql(d, (db) => {
        let prevHash = String((db.prepare('SELECT hash FROM audit_log WHERE seq = ?').get(records) as { hash: string }).hash);
        for (let s = records + 1; s <= records + 4; s++) {
          const r = db.prepare('SELECT * FROM audit_log WHERE seq = ?').get(s) as Record<string, string | number | null>;
          const data = { effect: 'allow', forged: true } as JsonObject;
          const rec: Omit<AuditRecord, 'hash'> = { seq: s, ts: Number(r['ts']), kind: String(r['kind']) as AuditKind, callId: String(r['call_id']), data, prevHash };
          const hash = recordHash(rec, sha256Hasher);
          db.prepare('UPDATE audit_log SET data = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(canonicalJson(data), prevHash, hash, s);
          prevHash = hash;
        }
      });
    });
    const { code, report } = await verify(dir);
    expect(code).toBe(0);
    expect(report.status).toBe('unanchored_tail');
    expect(report.unanchored?.records).toBe(4);
  });

  it('fails an unanchored tail with --require-anchored (exit 1, UNANCHORED_TAIL)', async () => {
    const dir = await copy((d) => appendUnanchored(d, 2));
    const { code, report } = await verify(dir, '--require-anchored');
    expect(code).toBe(1);
    expect(report).toMatchObject({ ok: false, status: 'unanchored_tail', problem: { code: 'UNANCHORED_TAIL', seq: records + 1 } });
    const human = await cli(['audit', 'verify', '--data-dir', dir, '--require-anchored']);
    expect(human.out).toContain(`UNANCHORED at record ${records + 1}: UNANCHORED_TAIL`);
  });
});

describe('audit verify --anchors', () => {
  it('the server anchored every checkpoint it signed to the file outside the data folder, in order', () => {
    const anchored = readFileSync(anchorFile, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as Checkpoint).seq);
    expect(anchored).toEqual(signed);
  });

  it('reports what the anchor file holds on an intact log', async () => {
    const { code, report } = await verify(source, '--anchors', anchorFile);
    expect(code).toBe(0);
    expect(report).toMatchObject({ ok: true, status: 'intact', anchors: { source: anchorFile, checkpoints: 3, newest_seq: records, records_after: 0 } });
  });

  it('detects a log cut back to an older checkpoint (its newest checkpoint deleted with the records after the older one)', async () => {
    const older = signed[1] as number;
    const dir = await copy((d) => {
      sql(d, (db) => {
        db.prepare('DELETE FROM checkpoints WHERE seq > ?').run(older);
        db.prepare('DELETE FROM audit_log WHERE seq > ?').run(older);
      });
      // the data folder's own copy of the checkpoints is just as writable
      const mirror = join(d, 'audit-checkpoints.jsonl');
      const kept = readFileSync(mirror, 'utf8').split('\n').filter((l) => l !== '' && (JSON.parse(l) as Checkpoint).seq <= older);
      writeFileSync(mirror, kept.join('\n') + '\n');
    });
    // without the anchors this cut is invisible: the log ends exactly at a genuine checkpoint
    const blind = await verify(dir, '--jwks', jwks);
    expect(blind.code).toBe(0);
    expect(blind.report.status).toBe('intact');
    const anchored = await verify(dir, '--anchors', anchorFile);
    expect(anchored.code).toBe(1);
    expect(anchored.report).toMatchObject({ ok: false, status: 'broken', problem: { code: 'TRUNCATED', seq: older + 1 } });
    expect(anchored.report.problem?.message).toContain('cut back to an older checkpoint');
    const human = await cli(['audit', 'verify', '--data-dir', dir, '--anchors', anchorFile, '--jwks', jwks]);
    expect(human.code).toBe(1);
    expect(human.out).toContain(`BROKEN at record ${older + 1}: TRUNCATED`);
  });

  it('refuses an anchor line whose signature is not the checkpoint key (CHECKPOINT_SIGNATURE_INVALID)', async () => {
    const forged = join(root, 'anchors', 'forged.jsonl');
    const lines = readFileSync(anchorFile, 'utf8').trim().split('\n');
    const cp = JSON.parse(lines[0] as string) as Checkpoint;
    writeFileSync(forged, [...lines, JSON.stringify({ ...cp, seq: records + 50 })].join('\n') + '\n');
    const { code, report } = await verify(source, '--anchors', forged);
    expect(code).toBe(1);
    expect(report.problem).toMatchObject({ code: 'CHECKPOINT_SIGNATURE_INVALID', seq: records + 50 });
  });

  it('ignores a torn last line but refuses a damaged line before it (exit 2)', async () => {
    const lines = readFileSync(anchorFile, 'utf8').trim().split('\n');
    const torn = join(root, 'anchors', 'torn.jsonl');
    writeFileSync(torn, lines.join('\n') + '\n{"seq": 99, "head');
    expect((await verify(source, '--anchors', torn)).report).toMatchObject({ ok: true, anchors: { checkpoints: 3 } });
    const damaged = join(root, 'anchors', 'damaged.jsonl');
    writeFileSync(damaged, ['{"seq": "x"}', ...lines].join('\n') + '\n');
    const r = await cli(['audit', 'verify', '--data-dir', source, '--anchors', damaged]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('line 1');
    const missing = await cli(['audit', 'verify', '--data-dir', source, '--anchors', join(root, 'nope.jsonl')]);
    expect(missing.code).toBe(2);
  });
});
