import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { describeError, isJsonObject, redactSecretsInText, type Checkpoint, type JsonObject, type Store } from '@mandate/core';
import { AUDIT_KEY_FILE, keepYoungGenerationSmall, mergeCheckpoints, readAnchorFile, readAuditPublicKeys, readCheckpointFile, sha256Hasher, verifyAudit } from '@mandate/server/audit-tools';
import { openSqliteStore } from '@mandate/store-sqlite';
import { CliError, EXIT } from '../exit-codes.ts';
import type { CliIO } from '../io.ts';
import { auditHelp } from '../help.ts';

/** the SQLite page cache of the verifying connection (SQLite's default is 2000 KiB) */
const VERIFY_CACHE_KIB = 2048;

export async function auditCommand(args: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'verify') throw new CliError(EXIT.USAGE, auditHelp);
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      'data-dir': { type: 'string' },
      db: { type: 'string' },
      jwks: { type: 'string' },
      anchors: { type: 'string' },
      json: { type: 'boolean' },
      'require-checkpoint': { type: 'boolean' },
      'require-anchored': { type: 'boolean' },
      'key-file': { type: 'string' },
      store: { type: 'string' },
      schema: { type: 'string' },
    },
  });
  // PostgreSQL (several nodes): --store or MANDATE_STORE; else the SQLite file
  const pgUrl = [values.store, io.env['MANDATE_STORE']].find((u) => u !== undefined && /^postgres(ql)?:\/\//.test(u));
  if (values.store !== undefined && pgUrl === undefined) throw new CliError(EXIT.USAGE, '--store must be a postgres:// URL (for SQLite, give --data-dir or --db)');
  if (pgUrl !== undefined && values.db !== undefined) throw new CliError(EXIT.USAGE, '--db and a PostgreSQL store cannot be verified at once');
  const db = values.db ?? join(values['data-dir'] ?? io.env['MANDATE_DATA_DIR'] ?? './.mandate', 'mandate.db');
  if (pgUrl === undefined && !existsSync(db)) throw new CliError(EXIT.USAGE, `no audit database at ${db}`);
  let pinned: JsonObject[] | undefined;
  if (values.jwks !== undefined) {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(values.jwks, 'utf8'));
    } catch (e) {
      throw new CliError(EXIT.USAGE, `cannot read the JWKS ${values.jwks}: ${(e as Error).message}`);
    }
    const keys = isJsonObject(doc) ? doc['keys'] : undefined;
    if (!Array.isArray(keys) || !keys.every(isJsonObject)) throw new CliError(EXIT.USAGE, `${values.jwks} is not a JWKS ({"keys": [...]})`);
    pinned = keys;
  }
  let anchors: { source: string; checkpoints: Checkpoint[] } | undefined;
  if (values.anchors !== undefined) {
    try {
      anchors = { source: values.anchors, checkpoints: readAnchorFile(values.anchors) };
    } catch (e) {
      throw new CliError(EXIT.USAGE, (e as Error).message);
    }
  }
  // the folder holding the checkpoint key file and the checkpoint copy: a node's data_dir
  const dataDir = pgUrl !== undefined ? (values['data-dir'] ?? io.env['MANDATE_DATA_DIR'] ?? './.mandate') : dirname(db);
  const fileKeys = readAuditPublicKeys(values['key-file'] ?? join(dataDir, AUDIT_KEY_FILE));
  // a walk of the whole log keeps two pages: a growing young generation would be all it holds
  keepYoungGenerationSmall();
  // the walk reads each page once: a small page cache is all it needs, whatever the file's size
  const store = pgUrl !== undefined ? await openPostgres(pgUrl, values.schema ?? io.env['MANDATE_PG_SCHEMA']) : openSqliteStore({ path: db, hasher: sha256Hasher, cacheKiB: VERIFY_CACHE_KIB });
  try {
    // pinned keys first; else the key file beside the database (never keys stored inside it)
    let keys: Map<string, JsonObject>;
    if (pinned !== undefined) keys = new Map(pinned.map((k) => [String(k['kid']), k]));
    else if (fileKeys !== undefined) keys = fileKeys;
    else keys = new Map();
    // the union of the store's copy and the file outside it: deleting rows in one hides nothing
    const checkpoints = mergeCheckpoints(await store.checkpoints.listCheckpoints(), readCheckpointFile(dataDir));
    const r = await verifyAudit({
      reader: store.audit,
      checkpoints,
      anchors,
      publicKeys: keys,
      hasher: sha256Hasher,
      requireCheckpoint: values['require-checkpoint'] === true || pinned !== undefined,
      requireAnchored: values['require-anchored'] === true,
    });
    if (values.json) {
      io.out(JSON.stringify(r));
    } else if (r.problem !== null) {
      io.out(`${r.status === 'broken' ? 'BROKEN' : 'UNANCHORED'} at record ${r.problem.seq}: ${r.problem.code}: ${r.problem.message}`);
    } else {
      // an unanchored tail is not a plain ok: nothing signed says those records were all there
      const what = r.status === 'intact' ? 'ok' : `intact up to record ${r.anchored_seq}, UNANCHORED TAIL of ${r.unanchored?.records ?? 0}`;
      io.out(`${what}: ${r.records} records, ${r.checkpoints_verified} signed checkpoint(s) verified, head ${r.head_hash}`);
      if (r.anchors) io.out(`anchors: ${r.anchors.checkpoints} checkpoint(s) in ${r.anchors.source}, the newest over ${r.anchors.newest_seq} records`);
      if (r.warning) io.out(`note: ${r.warning}`);
    }
    return r.ok ? EXIT.OK : EXIT.FAILED;
  } finally {
    await store.close();
  }
}

/** the PostgreSQL store, opened to read; an unreachable database is exit 4, and the URL's password is never printed */
async function openPostgres(url: string, schema: string | undefined): Promise<Pick<Store, 'audit' | 'checkpoints' | 'close'>> {
  const { openPostgresStore } = await import('@mandate/store-postgres');
  try {
    return await openPostgresStore({ url, hasher: sha256Hasher, schema, poolSize: 2 });
  } catch (e) {
    throw new CliError(EXIT.UNAVAILABLE, `cannot open the PostgreSQL store: ${redactSecretsInText(describeError(e)).replace(/\/\/[^@/\s]*@/g, '//[REDACTED]@')}`);
  }
}
