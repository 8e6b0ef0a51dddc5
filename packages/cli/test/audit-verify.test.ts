import { rmSync, cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { canonicalJson, recordHash, signCheckpoint, type AuditKind, type AuditRecord, type Checkpoint, type JsonObject } from '@mandate/core';
import { buildHttpApp, createRuntime, parseConfig, sha256Hasher } from '@mandate/server';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, EXAMPLE_POLICIES } from './support.ts';

// Issue requirement: "Tampering with any audit record (edit, delete, reorder, truncate) is
// detected by `audit verify`". Each case tampers with a copy of a real data dir through raw SQL.

let root: string;
let source: string;
let genuineJwks: string;
let records: number;

interface Verdict {
  ok: boolean;
  records: number;
  checkpoints_verified: number;
  head_hash: string;
  problem: { code: string; seq: number; message: string } | null;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mandate-audit-verify-'));
  source = join(root, 'source');
  const config = parseConfig({
    environment: 'prod',
    data_dir: source,
    policies: { dir: EXAMPLE_POLICIES },
    identity: { dev_issuer: { enabled: true, trust_domain: 'test.local' } },
    log: { level: 'silent' },
  });
  const runtime = await createRuntime(config, { writeAdminKeyFile: false });
  const app = buildHttpApp(runtime);
  try {
    const admin = `Bearer ${runtime.bootstrapAdminKey ?? ''}`;
    const agent = 'spiffe://test.local/agents/audited';
    const reg = await app.inject({ method: 'POST', url: '/v1/agents', headers: { authorization: admin }, payload: { id: agent, owner: 'team', type: 'support' } });
    expect(reg.statusCode).toBe(201);
    const svid = await runtime.devIssuer?.mint(agent, { audience: 'mandate', ttlMs: 300_000 });
    const start = await app.inject({
      method: 'POST',
      url: '/v1/tasks',
      headers: { authorization: `Bearer ${svid ?? ''}` },
      payload: { mandate: { purpose: 'audit tamper tests', environment: 'prod', tools: [{ name: 'helpdesk.search_tickets' }], data_classes: ['internal'], budgets: { calls: 100 } } },
    });
    expect(start.statusCode).toBe(201);
    const { token } = start.json<{ token: string }>();
    for (let i = 0; i < 20; i++) {
      // mostly allowed, every fifth one a deny
      const tool = i % 5 === 4 ? 'shell.exec' : 'helpdesk.search_tickets';
      const res = await app.inject({ method: 'POST', url: '/v1/authorize', headers: { authorization: `Bearer ${token}` }, payload: { tool, args: { q: `query ${i}`, password: 'never-logged' }, call_id: `c-${i}` } });
      expect(res.statusCode).toBe(200);
    }
    await runtime.audit.checkpointNow();
    records = (await runtime.store.audit.head())?.seq ?? 0;
    genuineJwks = join(root, 'audit-jwks.json');
    writeFileSync(genuineJwks, JSON.stringify(runtime.auditKeys.jwks()));
  } finally {
    await app.close();
    await runtime.close();
  }
  // closing the last connection checkpoints the WAL into mandate.db
  expect(existsSync(join(source, 'mandate.db-wal'))).toBe(false);
  expect(records).toBeGreaterThan(40);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let copies = 0;

/** A copy of the data dir, tampered with through a raw connection that is closed before verifying. */
async function tampered(fn: (db: DatabaseSync) => unknown): Promise<string> {
  copies += 1;
  const dir = join(root, `copy-${copies}`);
  cpSync(source, dir, { recursive: true });
  const db = new DatabaseSync(join(dir, 'mandate.db'));
  try {
    const done = fn(db);
    if (done instanceof Promise) await done;
  } finally {
    db.close();
  }
  return dir;
}

function insertCheckpoint(db: DatabaseSync, cp: Checkpoint): void {
  db.prepare('INSERT INTO checkpoints (seq, head_hash, ts, kid, signature) VALUES (?, ?, ?, ?, ?)').run(cp.seq, cp.headHash, cp.ts, cp.kid, cp.signature);
}

async function verify(dir: string, ...extra: string[]): Promise<{ code: number; verdict: Verdict; err: string }> {
  const r = await cli(['audit', 'verify', '--data-dir', dir, '--json', ...extra]);
  let verdict: Verdict;
  try {
    verdict = JSON.parse(r.out) as Verdict;
  } catch {
    throw new Error(`audit verify printed no JSON (exit ${r.code}): ${r.out} ${r.err}`);
  }
  return { code: r.code, verdict, err: r.err };
}

type Row = Record<string, SQLInputValue>;

function row(db: DatabaseSync, seq: number): Row {
  const r = db.prepare('SELECT * FROM audit_log WHERE seq = ?').get(seq);
  if (r === undefined) throw new Error(`no record ${seq}`);
  return r as Row;
}

function toRecord(r: Row): Omit<AuditRecord, 'hash'> {
  const opt = (v: SQLInputValue) => (v === null ? undefined : String(v));
  return {
    seq: Number(r['seq']),
    ts: Number(r['ts']),
    kind: String(r['kind']) as AuditKind,
    callId: opt(r['call_id'] ?? null),
    taskId: opt(r['task_id'] ?? null),
    agentId: opt(r['agent_id'] ?? null),
    txn: opt(r['txn'] ?? null),
    data: JSON.parse(String(r['data'])) as JsonObject,
    prevHash: String(r['prev_hash']),
  };
}

/** The seq of the first allowed decision record. */
function firstAllowedDecision(db: DatabaseSync): number {
  const r = db.prepare(`SELECT seq FROM audit_log WHERE kind = 'decision' AND data LIKE '%"effect":"allow"%' ORDER BY seq LIMIT 1`).get();
  return Number(r?.['seq']);
}

function firstDeniedDecision(db: DatabaseSync): number {
  const r = db.prepare(`SELECT seq FROM audit_log WHERE kind = 'decision' AND data LIKE '%"effect":"deny"%' ORDER BY seq LIMIT 1`).get();
  return Number(r?.['seq']);
}

describe('mandate audit verify on an intact log', () => {
  it('exits 0 and says ok', async () => {
    const r = await cli(['audit', 'verify', '--data-dir', source]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^ok: ${records} records, 1 signed checkpoint\\(s\\) verified, head [0-9a-f]{64}$`));
  });

  it('reports ok in --json, also when given the database file with --db', async () => {
    const { code, verdict } = await verify(source);
    expect(code).toBe(0);
    expect(verdict).toMatchObject({ ok: true, records, checkpoints_verified: 1, problem: null });
    const byDb = await cli(['audit', 'verify', '--db', join(source, 'mandate.db'), '--json']);
    expect(byDb.code).toBe(0);
  });

  it('reads the data dir from MANDATE_DATA_DIR', async () => {
    const r = await cli(['audit', 'verify'], { MANDATE_DATA_DIR: source });
    expect(r.code).toBe(0);
  });

  it('exits 0 with the pinned genuine checkpoint keys', async () => {
    const { code, verdict } = await verify(source, '--jwks', genuineJwks);
    expect(code).toBe(0);
    expect(verdict.ok).toBe(true);
  });
});

describe('mandate audit verify detects tampering', () => {
  it('(a) an edited record: a denied decision turned into an allow (HASH_MISMATCH)', async () => {
    let seq = 0;
    const dir = await tampered((db) => {
      seq = firstDeniedDecision(db);
      const data = String(row(db, seq)['data']);
      expect(data).toContain('"effect":"deny"');
      db.prepare('UPDATE audit_log SET data = ? WHERE seq = ?').run(data.replace('"effect":"deny"', '"effect":"allow"'), seq);
    });
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.ok).toBe(false);
    expect(verdict.problem).toMatchObject({ code: 'HASH_MISMATCH', seq });
    const human = await cli(['audit', 'verify', '--data-dir', dir]);
    expect(human.code).toBe(1);
    expect(human.out).toContain(`BROKEN at record ${seq}: HASH_MISMATCH`);
  });

  it.each([
    ['ts', 'UPDATE audit_log SET ts = ts + 1 WHERE seq = ?'],
    ['kind', `UPDATE audit_log SET kind = 'signal' WHERE seq = ?`],
    ['call_id', `UPDATE audit_log SET call_id = 'c-forged' WHERE seq = ?`],
    ['task_id', `UPDATE audit_log SET task_id = 'task_other' WHERE seq = ?`],
    ['agent_id', `UPDATE audit_log SET agent_id = 'spiffe://test.local/agents/someone-else' WHERE seq = ?`],
    ['txn', `UPDATE audit_log SET txn = 'txn_forged' WHERE seq = ?`],
    ['hash', `UPDATE audit_log SET hash = '${'f'.repeat(64)}' WHERE seq = ?`],
  ])('(a) an edited %s column (HASH_MISMATCH)', async (_column, sql) => {
    let seq = 0;
    const dir = await tampered((db) => {
      seq = firstAllowedDecision(db);
      db.prepare(sql).run(seq);
    });
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'HASH_MISMATCH', seq });
  });

  it('(a) an edited prev_hash (PREV_HASH_MISMATCH)', async () => {
    const dir = await tampered((db) => db.prepare(`UPDATE audit_log SET prev_hash = ? WHERE seq = 10`).run('0'.repeat(64)));
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'PREV_HASH_MISMATCH', seq: 10 });
  });

  it('(b) a deleted middle record (SEQ_GAP)', async () => {
    const dir = await tampered((db) => db.prepare('DELETE FROM audit_log WHERE seq = 12').run());
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'SEQ_GAP', seq: 12 });
  });

  it('(b) a deleted first record (SEQ_GAP at 1)', async () => {
    const dir = await tampered((db) => db.prepare('DELETE FROM audit_log WHERE seq = 1').run());
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'SEQ_GAP', seq: 1 });
  });

  it('(b) a deleted denied decision and its action record (SEQ_GAP)', async () => {
    let seq = 0;
    const dir = await tampered((db) => {
      seq = firstDeniedDecision(db);
      db.prepare('DELETE FROM audit_log WHERE seq IN (?, ?)').run(seq, seq + 1);
    });
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'SEQ_GAP', seq });
  });

  it('(c) two records whose seq were swapped (PREV_HASH_MISMATCH)', async () => {
    const dir = await tampered((db) => {
      db.exec('BEGIN');
      db.prepare('UPDATE audit_log SET seq = -1 WHERE seq = 7').run();
      db.prepare('UPDATE audit_log SET seq = 7 WHERE seq = 8').run();
      db.prepare('UPDATE audit_log SET seq = 8 WHERE seq = -1').run();
      db.exec('COMMIT');
    });
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'PREV_HASH_MISMATCH', seq: 7 });
  });

  it('(c) a record moved to the end of the log (SEQ_GAP)', async () => {
    const dir = await tampered((db) => db.prepare('UPDATE audit_log SET seq = (SELECT MAX(seq) + 1 FROM audit_log) WHERE seq = 20').run());
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'SEQ_GAP', seq: 20 });
  });

  it('(d) a cut tail of several records (TRUNCATED, from the signed checkpoint)', async () => {
    const dir = await tampered((db) => db.prepare('DELETE FROM audit_log WHERE seq > ?').run(records - 4));
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.records).toBe(records - 4);
    expect(verdict.problem).toMatchObject({ code: 'TRUNCATED', seq: records - 3 });
  });

  it('(d) a cut tail of a single record (TRUNCATED)', async () => {
    const dir = await tampered((db) => db.prepare('DELETE FROM audit_log WHERE seq = ?').run(records));
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'TRUNCATED', seq: records });
  });

  it('(e) an edited record whose own hash was recomputed (PREV_HASH_MISMATCH at the next record)', async () => {
    let seq = 0;
    const dir = await tampered((db) => {
      seq = firstDeniedDecision(db);
      const rec = toRecord(row(db, seq));
      const forged = { ...rec, data: { ...rec.data, effect: 'allow', reasons: [] } };
      db.prepare('UPDATE audit_log SET data = ?, hash = ? WHERE seq = ?').run(canonicalJson(forged.data), recordHash(forged, sha256Hasher), seq);
    });
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'PREV_HASH_MISMATCH', seq: seq + 1 });
  });

  it('(e) an edited record with the whole rest of the chain recomputed (CHECKPOINT_MISMATCH)', async () => {
    const dir = await tampered((db) => {
      const seq = firstDeniedDecision(db);
      let prevHash = String(row(db, seq - 1)['hash']);
      for (let s = seq; s <= records; s++) {
        const rec = toRecord(row(db, s));
        const data = s === seq ? { ...rec.data, effect: 'allow', reasons: [] } : rec.data;
        const forged = { ...rec, data, prevHash };
        const hash = recordHash(forged, sha256Hasher);
        db.prepare('UPDATE audit_log SET data = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(canonicalJson(data), prevHash, hash, s);
        prevHash = hash;
      }
    });
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'CHECKPOINT_MISMATCH', seq: records });
  });

  it('(f) a forged checkpoint row with a made-up signature (CHECKPOINT_SIGNATURE_INVALID)', async () => {
    const dir = await tampered((db) => {
      const cp = db.prepare('SELECT * FROM checkpoints ORDER BY id LIMIT 1').get() as Row;
      db.prepare('INSERT INTO checkpoints (seq, head_hash, ts, kid, signature) VALUES (?, ?, ?, ?, ?)').run(
        records + 10,
        'a'.repeat(64),
        Number(cp['ts']) + 1,
        String(cp['kid']),
        'eyJhbGciOiJFZERTQSJ9.eyJzZXEiOjF9.AAAA',
      );
    });
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'CHECKPOINT_SIGNATURE_INVALID', seq: records + 10 });
  });

  it('(f) a genuine checkpoint moved back to hide a cut tail (CHECKPOINT_SIGNATURE_INVALID)', async () => {
    const dir = await tampered((db) => {
      db.prepare('DELETE FROM audit_log WHERE seq > ?').run(records - 2);
      const head = row(db, records - 2);
      db.prepare('UPDATE checkpoints SET seq = ?, head_hash = ?').run(records - 2, String(head['hash']));
    });
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'CHECKPOINT_SIGNATURE_INVALID', seq: records - 2 });
  });

  it('(f) a checkpoint over a cut chain, signed by an attacker key under the real kid (CHECKPOINT_SIGNATURE_INVALID)', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const attackerJwk = (await exportJWK(privateKey)) as JsonObject;
    const forgedSeq = records - 5;
    const dir = await tampered(async (db) => {
      const cp = db.prepare('SELECT * FROM checkpoints ORDER BY id LIMIT 1').get() as Row;
      db.prepare('DELETE FROM audit_log WHERE seq > ?').run(forgedSeq);
      db.prepare('DELETE FROM checkpoints').run();
      const head = String(row(db, forgedSeq)['hash']);
      insertCheckpoint(db, await signCheckpoint({ seq: forgedSeq, hash: head }, Number(cp['ts']), { kid: String(cp['kid']), privateJwk: attackerJwk }));
    });
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'CHECKPOINT_SIGNATURE_INVALID', seq: forgedSeq });
  });

  it('(f) with --jwks pinned, a checkpoint signed by a key planted in the store is refused', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const kid = 'k_planted';
    const priv = { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA' } as JsonObject;
    const pub = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' } as JsonObject;
    const forgedSeq = records - 3;
    const dir = await tampered(async (db) => {
      db.prepare('DELETE FROM audit_log WHERE seq > ?').run(forgedSeq);
      db.prepare('DELETE FROM checkpoints').run();
      db.prepare(`INSERT INTO signing_keys (kid, purpose, alg, public_jwk, private_jwk, status, created_at, retired_at) VALUES (?, 'audit-checkpoint', 'EdDSA', ?, ?, 'active', ?, NULL)`).run(
        kid,
        canonicalJson(pub),
        canonicalJson(priv),
        Date.now(),
      );
      const head = String(row(db, forgedSeq)['hash']);
      insertCheckpoint(db, await signCheckpoint({ seq: forgedSeq, hash: head }, Date.now(), { kid, privateJwk: priv }));
    });
    const pinned = await verify(dir, '--jwks', genuineJwks);
    expect(pinned.code).toBe(1);
    expect(pinned.verdict.problem).toMatchObject({ code: 'CHECKPOINT_SIGNATURE_INVALID', seq: forgedSeq });
  });
});

describe('mandate audit verify --jwks', () => {
  it('fails an intact log when the pinned JWKS lacks the checkpoint key', async () => {
    const { publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const other = join(root, 'other-jwks.json');
    writeFileSync(other, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k_other', alg: 'EdDSA', use: 'sig' }] }));
    const { code, verdict } = await verify(source, '--jwks', other);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'CHECKPOINT_SIGNATURE_INVALID' });
  });

  it('fails when the pinned JWKS has the right kid but another key', async () => {
    const genuine = JSON.parse(readFileSync(genuineJwks, 'utf8')) as { keys: { kid: string }[] };
    const { publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const swapped = join(root, 'swapped-jwks.json');
    writeFileSync(swapped, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: genuine.keys[0]?.kid, alg: 'EdDSA', use: 'sig' }] }));
    const { code, verdict } = await verify(source, '--jwks', swapped);
    expect(code).toBe(1);
    expect(verdict.problem).toMatchObject({ code: 'CHECKPOINT_SIGNATURE_INVALID' });
  });

  it('fails an empty pinned JWKS', async () => {
    const empty = join(root, 'empty-jwks.json');
    writeFileSync(empty, JSON.stringify({ keys: [] }));
    const { code } = await verify(source, '--jwks', empty);
    expect(code).toBe(1);
  });
});

describe('mandate audit verify on damaged input', () => {
  it('reports a record whose data is no longer JSON as broken (exit 1), not as an internal error', async () => {
    const dir = await tampered((db) => db.prepare(`UPDATE audit_log SET data = 'not json' WHERE seq = 5`).run());
    const r = await cli(['audit', 'verify', '--data-dir', dir, '--json']);
    expect(r.code).toBe(1);
    expect(r.err).not.toContain('internal error');
    const verdict = JSON.parse(r.out) as Verdict;
    expect(verdict.ok).toBe(false);
    expect(verdict.problem?.seq).toBe(5);
  });

  it('answers a --jwks file that does not exist with a usage error (exit 2) and no stack trace', async () => {
    const r = await cli(['audit', 'verify', '--data-dir', source, '--jwks', join(root, 'missing-jwks.json')]);
    expect(r.code).toBe(2);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('answers a --jwks file that is not JSON with a usage error (exit 2) and no stack trace', async () => {
    const bad = join(root, 'bad-jwks.json');
    writeFileSync(bad, '{"keys": [');
    const r = await cli(['audit', 'verify', '--data-dir', source, '--jwks', bad]);
    expect(r.code).toBe(2);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});

describe('mandate audit verify and the checkpoints kept outside the database', () => {
  it('still sees a cut tail when every checkpoint row was deleted from the database', async () => {
    const dir = await tampered((db) => {
      db.prepare('DELETE FROM checkpoints').run();
      const max = (db.prepare('SELECT MAX(seq) AS m FROM audit_log').get() as { m: number }).m;
      db.prepare('DELETE FROM audit_log WHERE seq > ?').run(max - 3);
    });
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem?.code).toBe('TRUNCATED');
  });

  it('passes a log that has no checkpoint anywhere yet, but warns that a cut tail could not be detected', async () => {
    const dir = await tampered((db) => db.prepare('DELETE FROM checkpoints').run());
    rmSync(join(dir, 'audit-checkpoints.jsonl'));
    const r = await cli(['audit', 'verify', '--data-dir', dir]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('0 signed checkpoint(s)');
    expect(r.out).toContain('note: no signed checkpoint yet, so a cut tail could not be detected');
  });

  it('fails such a log when a checkpoint is required', async () => {
    const dir = await tampered((db) => db.prepare('DELETE FROM checkpoints').run());
    rmSync(join(dir, 'audit-checkpoints.jsonl'));
    const { code, verdict } = await verify(dir, '--require-checkpoint');
    expect(code).toBe(1);
    expect(verdict.ok).toBe(false);
  });

  it('does not trust a checkpoint key planted in the database', async () => {
    // whoever can write the database adds their own key and a checkpoint signed with it
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { extractable: true });
    const kid = 'planted';
    const pub = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA' } as JsonObject;
    const priv = { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA' } as JsonObject;
    const dir = await tampered(async (db) => {
      db.prepare("INSERT INTO signing_keys (kid, purpose, alg, public_jwk, private_jwk, status, created_at) VALUES (?, 'audit-checkpoint', 'EdDSA', ?, ?, 'active', 0)").run(kid, JSON.stringify(pub), JSON.stringify(priv));
      const head = db.prepare('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string };
      insertCheckpoint(db, await signCheckpoint(head, 1, { kid, privateJwk: priv }));
    });
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict.problem?.code).toBe('CHECKPOINT_SIGNATURE_INVALID');
  });
});
