import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { AUDIT_WALK_PAGE_SIZE, canonicalJson, recordHash, signCheckpoint, type AuditDraft, type AuditKind, type JsonObject } from '@mandate/core';
import { AUDIT_KEY_FILE, CHECKPOINT_FILE, sha256Hasher } from '@mandate/server';
import { openSqliteStore } from '@mandate/store-sqlite';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './support.ts';

// `audit verify` reads the log a page at a time (keyset: seq >= the next one, AUDIT_WALK_PAGE_SIZE
// records). Tampering right at a page's edge, and pages deep into the log, must be found as
// surely as in the first page: each case tampers with a copy of a log of three pages and more.

const PAGE = AUDIT_WALK_PAGE_SIZE;
const RECORDS = 3 * PAGE + 10;
const CHECKPOINT_EVERY = 100;

let root: string;
let source: string;
let copies = 0;

interface Verdict {
  ok: boolean;
  status: string;
  records: number;
  checkpoints_verified: number;
  problem: { code: string; seq: number } | null;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mandate-audit-pages-'));
  source = join(root, 'source');
  mkdirSync(source);
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
  const kid = 'pages-audit-key';
  const privateJwk = { ...(await exportJWK(privateKey)), kid } as unknown as JsonObject;
  const publicJwk = { ...(await exportJWK(publicKey)), kid } as unknown as JsonObject;
  writeFileSync(join(source, AUDIT_KEY_FILE), JSON.stringify({ keys: [{ kid, purpose: 'audit', alg: 'EdDSA', status: 'active', createdAt: 0, publicJwk, privateJwk }] }));
  const store = openSqliteStore({ path: join(source, 'mandate.db'), hasher: sha256Hasher });
  try {
    for (let from = 1; from <= RECORDS; from += CHECKPOINT_EVERY) {
      const drafts: AuditDraft[] = [];
      for (let seq = from; seq < from + CHECKPOINT_EVERY && seq <= RECORDS; seq++) {
        // short distinct values, as real arguments carry
        drafts.push({ kind: 'decision', ts: 1_780_000_000_000 + seq, callId: `c-${seq}`, taskId: `t-${seq % 7}`, data: { tool: 'helpdesk.search_tickets', effect: seq % 3 === 0 ? 'deny' : 'allow', args: { q: `q${seq}` } } });
      }
      const records = await store.audit.append(drafts);
      const last = records.at(-1);
      if (last === undefined) throw new Error('nothing appended');
      const cp = await signCheckpoint({ seq: last.seq, hash: last.hash }, last.ts, { kid, privateJwk });
      await store.checkpoints.addCheckpoint(cp);
      writeFileSync(join(source, CHECKPOINT_FILE), JSON.stringify(cp) + '\n', { flag: 'a' });
    }
  } finally {
    await store.close();
  }
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A copy of the log, tampered with through a raw connection that is closed before verifying. */
function tampered(fn: (db: DatabaseSync) => void): string {
  copies += 1;
  const dir = join(root, `copy-${copies}`);
  cpSync(source, dir, { recursive: true });
  const db = new DatabaseSync(join(dir, 'mandate.db'));
  try {
    fn(db);
  } finally {
    db.close();
  }
  return dir;
}

async function verify(dir: string): Promise<{ code: number; verdict: Verdict }> {
  const r = await cli(['audit', 'verify', '--data-dir', dir, '--json', '--require-checkpoint']);
  return { code: r.code, verdict: JSON.parse(r.out) as Verdict };
}

/** a denied decision turned into an allow, the rest of the row untouched */
function allow(db: DatabaseSync, seq: number): void {
  const r = db.prepare('SELECT data FROM audit_log WHERE seq = ?').get(seq);
  const data = JSON.parse(String(r?.['data'])) as JsonObject;
  db.prepare('UPDATE audit_log SET data = ? WHERE seq = ?').run(canonicalJson({ ...data, effect: data['effect'] === 'deny' ? 'allow' : 'deny' }), seq);
}

/** the row's content changed and its own hash recomputed to match: only the next record's link tells */
function rehashed(db: DatabaseSync, seq: number): void {
  allow(db, seq);
  const r = db.prepare('SELECT * FROM audit_log WHERE seq = ?').get(seq);
  if (r === undefined) throw new Error(`no record ${seq}`);
  const opt = (v: unknown) => (v === null || v === undefined ? undefined : String(v));
  const hash = recordHash(
    { seq, ts: Number(r['ts']), kind: String(r['kind']) as AuditKind, callId: opt(r['call_id']), taskId: opt(r['task_id']), agentId: opt(r['agent_id']), txn: opt(r['txn']), data: JSON.parse(String(r['data'])) as JsonObject, prevHash: String(r['prev_hash']) },
    sha256Hasher,
  );
  db.prepare('UPDATE audit_log SET hash = ? WHERE seq = ?').run(hash, seq);
}

describe('audit verify across pages', () => {
  it(`verifies an untouched log of ${RECORDS} records (more than three pages of ${PAGE}) intact`, async () => {
    const { code, verdict } = await verify(source);
    expect(code).toBe(0);
    expect(verdict).toMatchObject({ ok: true, status: 'intact', records: RECORDS, checkpoints_verified: Math.ceil(RECORDS / CHECKPOINT_EVERY), problem: null });
  });

  it.each([
    ['the last record of the first page', PAGE],
    ['the first record of the second page', PAGE + 1],
    ['the last record of the second page', 2 * PAGE],
    ['the first record of the third page', 2 * PAGE + 1],
    ['the first record of the last, short page', 3 * PAGE + 1],
  ])('finds an edit of %s (HASH_MISMATCH)', async (_where, seq) => {
    const { code, verdict } = await verify(tampered((db) => allow(db, seq)));
    expect(code).toBe(1);
    expect(verdict).toMatchObject({ ok: false, status: 'broken', problem: { code: 'HASH_MISMATCH', seq } });
  });

  it.each([
    ['the last record of the first page', PAGE],
    ['the first record of the second page', PAGE + 1],
    ['the last record of the second page', 2 * PAGE],
  ])('finds an edit of %s whose own hash was recomputed, by the link of the record after it (PREV_HASH_MISMATCH)', async (_where, seq) => {
    const { code, verdict } = await verify(tampered((db) => rehashed(db, seq)));
    expect(code).toBe(1);
    expect(verdict).toMatchObject({ ok: false, problem: { code: 'PREV_HASH_MISMATCH', seq: seq + 1 } });
  });

  it.each([
    ['the last record of the first page', PAGE],
    ['the first record of the second page', PAGE + 1],
    ['the first record of the third page', 2 * PAGE + 1],
  ])('finds a deletion of %s (SEQ_GAP)', async (_where, seq) => {
    const { code, verdict } = await verify(tampered((db) => db.prepare('DELETE FROM audit_log WHERE seq = ?').run(seq)));
    expect(code).toBe(1);
    expect(verdict).toMatchObject({ ok: false, problem: { code: 'SEQ_GAP', seq } });
  });

  it('finds the first record of the second page and the last of the first swapped (PREV_HASH_MISMATCH)', async () => {
    const dir = tampered((db) => {
      db.prepare('UPDATE audit_log SET seq = -1 WHERE seq = ?').run(PAGE);
      db.prepare('UPDATE audit_log SET seq = ? WHERE seq = ?').run(PAGE, PAGE + 1);
      db.prepare('UPDATE audit_log SET seq = ? WHERE seq = -1').run(PAGE + 1);
    });
    const { code, verdict } = await verify(dir);
    expect(code).toBe(1);
    expect(verdict).toMatchObject({ ok: false, problem: { code: 'PREV_HASH_MISMATCH', seq: PAGE } });
  });
});
