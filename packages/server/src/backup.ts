/**
 * Backup and restore of the embedded SQLite store. A backup is a folder: `mandate.db` (a
 * consistent copy taken with SQLite's online backup API, so the node keeps serving while it is
 * made), the copies of the signed checkpoints that cover it (the checkpoint file, cut to what
 * the copy holds: a checkpoint written after the copy would make the restored log read as cut
 * back), the checkpoint keys (their private halves stay encrypted under the KEK, which is NOT
 * copied: a backup must not carry the key that opens it) and a manifest. A backup is verified
 * after writing, and again before a restore puts it in place.
 */
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { backup as sqliteBackup, DatabaseSync } from 'node:sqlite';
import { MandateError, type Checkpoint, type JsonObject } from '@mandate/core';
import { openSqliteStore } from '@mandate/store-sqlite';
import { AUDIT_KEY_FILE, CHECKPOINT_FILE, mergeCheckpoints, readAuditPublicKeys, readCheckpointFile, writePrivate } from './audit-files.ts';
import { verifyAudit, type AuditReport } from './audit-verify.ts';
import { sha256Hasher } from './node-ports.ts';

export const BACKUP_DB = 'mandate.db';
export const BACKUP_MANIFEST = 'backup.json';

/** a backup whose audit chain does not verify: the report says where and why */
export class BackupBrokenError extends Error {
  readonly report: AuditReport;
  constructor(what: string, report: AuditReport) {
    super(`${what}: ${report.problem?.code ?? ''} at record ${report.problem?.seq ?? '?'}: ${report.problem?.message ?? ''}`);
    this.name = 'BackupBrokenError';
    this.report = report;
  }
}

export interface BackupManifest {
  readonly format: 1;
  readonly created_at: string;
  readonly source: string;
  readonly records: number;
  readonly head_hash: string;
  readonly checkpoints_verified: number;
}

/** Verifies the audit log of a folder laid out like a data dir (a node's, or a backup). */
export async function verifyFolder(dir: string, dbFile = join(dir, BACKUP_DB)): Promise<AuditReport> {
  if (!existsSync(dbFile)) throw new MandateError('NOT_FOUND', `no database at ${dbFile}`);
  const store = openSqliteStore({ path: dbFile, hasher: sha256Hasher });
  try {
    return await verifyAudit({
      reader: store.audit,
      checkpoints: mergeCheckpoints(await store.checkpoints.listCheckpoints(), readCheckpointFile(dir)),
      publicKeys: readAuditPublicKeys(join(dir, AUDIT_KEY_FILE)) ?? new Map(),
      hasher: sha256Hasher,
    });
  } finally {
    await store.close();
  }
}

/**
 * Takes an online backup of the store at `dbFile` (its data dir beside it) into the new folder
 * `out`, verifies it, and only then moves it into place: a failed or broken backup leaves nothing
 * at `out`.
 */
export async function backupSqlite(dbFile: string, out: string, now: () => number = Date.now): Promise<BackupManifest> {
  if (!existsSync(dbFile)) throw new MandateError('NOT_FOUND', `no database at ${dbFile}`);
  if (existsSync(out)) throw new MandateError('CONFLICT', `${out} exists: a backup is written to a new folder`);
  const dataDir = dirname(dbFile);
  const tmp = join(dirname(out), `.${basename(out)}.partial-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true, mode: 0o700 });
  try {
    const src = new DatabaseSync(dbFile, { readOnly: true });
    try {
      await sqliteBackup(src, join(tmp, BACKUP_DB));
    } finally {
      src.close();
    }
    // the checkpoints the copy covers: those written after it would say records are missing
    const copy = openSqliteStore({ path: join(tmp, BACKUP_DB), hasher: sha256Hasher });
    let head: number;
    try {
      head = (await copy.audit.head())?.seq ?? 0;
    } finally {
      await copy.close();
    }
    writeCheckpoints(tmp, readCheckpointFile(dataDir).filter((c) => c.seq <= head));
    if (existsSync(join(dataDir, AUDIT_KEY_FILE))) copyFileSync(join(dataDir, AUDIT_KEY_FILE), join(tmp, AUDIT_KEY_FILE));
    const report = await verifyFolder(tmp);
    if (!report.ok) throw new BackupBrokenError('the backup does not verify', report);
    const manifest: BackupManifest = { format: 1, created_at: new Date(now()).toISOString(), source: dbFile, records: report.records, head_hash: report.head_hash, checkpoints_verified: report.checkpoints_verified };
    writePrivate(join(tmp, BACKUP_MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
    renameSync(tmp, out);
    return manifest;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

export interface RestoreResult {
  readonly report: AuditReport;
  /** where the store that was there before went, when there was one */
  readonly setAside: string | undefined;
}

/**
 * Restores a backup folder into `dataDir` (the node must be stopped). The backup is verified
 * first; a broken one is refused and nothing changes. What the data dir held before (database,
 * its WAL, the checkpoint file) is moved aside, never deleted, and only with `replace`.
 */
export async function restoreSqlite(from: string, dataDir: string, opts: { replace?: boolean; now?: () => number } = {}): Promise<RestoreResult> {
  const before = await verifyFolder(from);
  if (!before.ok) throw new BackupBrokenError('the backup does not verify, nothing was restored', before);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const present = [BACKUP_DB, `${BACKUP_DB}-wal`, `${BACKUP_DB}-shm`, CHECKPOINT_FILE].filter((f) => existsSync(join(dataDir, f)));
  let setAside: string | undefined;
  if (present.length > 0) {
    if (opts.replace !== true) throw new MandateError('CONFLICT', `${dataDir} already holds a store (${present.join(', ')}); pass --replace to move it aside and restore over it`);
    setAside = join(dataDir, `pre-restore-${new Date((opts.now ?? Date.now)()).toISOString().replace(/[:.]/g, '-')}`);
    mkdirSync(setAside, { mode: 0o700 });
    for (const f of present) renameSync(join(dataDir, f), join(setAside, f));
  }
  copyFileSync(join(from, BACKUP_DB), join(dataDir, BACKUP_DB));
  if (existsSync(join(from, CHECKPOINT_FILE))) copyFileSync(join(from, CHECKPOINT_FILE), join(dataDir, CHECKPOINT_FILE));
  // the node's own checkpoint keys stay; a data dir that lost them gets the backup's
  if (!existsSync(join(dataDir, AUDIT_KEY_FILE)) && existsSync(join(from, AUDIT_KEY_FILE))) copyFileSync(join(from, AUDIT_KEY_FILE), join(dataDir, AUDIT_KEY_FILE));
  const report = await verifyFolder(dataDir);
  return { report, setAside };
}

function writeCheckpoints(dir: string, checkpoints: readonly Checkpoint[]): void {
  if (checkpoints.length === 0) return;
  writePrivate(join(dir, CHECKPOINT_FILE), checkpoints.map((c) => JSON.stringify(c as unknown as JsonObject)).join('\n') + '\n');
}
