import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { isJsonObject, verifyAuditLog, type JsonObject } from '@mandate/core';
import { AUDIT_KEY_FILE, mergeCheckpoints, readAuditPublicKeys, readCheckpointFile, sha256Hasher } from '@mandate/server';
import { openSqliteStore } from '@mandate/store-sqlite';
import { CliError, EXIT } from '../exit-codes.ts';
import type { CliIO } from '../io.ts';
import { auditHelp } from '../help.ts';

export async function auditCommand(args: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'verify') throw new CliError(EXIT.USAGE, auditHelp);
  const { values } = parseArgs({ args: rest, strict: true, options: { 'data-dir': { type: 'string' }, db: { type: 'string' }, jwks: { type: 'string' }, json: { type: 'boolean' }, 'require-checkpoint': { type: 'boolean' }, 'key-file': { type: 'string' } } });
  const db = values.db ?? join(values['data-dir'] ?? io.env['MANDATE_DATA_DIR'] ?? './.mandate', 'mandate.db');
  if (!existsSync(db)) throw new CliError(EXIT.USAGE, `no audit database at ${db}`);
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
  const dataDir = dirname(db);
  const fileKeys = readAuditPublicKeys(values['key-file'] ?? join(dataDir, AUDIT_KEY_FILE));
  const requireCheckpoint = values['require-checkpoint'] === true || pinned !== undefined;
  const store = openSqliteStore({ path: db, hasher: sha256Hasher });
  try {
    // pinned keys first; else the key file beside the database (never keys stored inside it)
    let keys: Map<string, JsonObject>;
    if (pinned !== undefined) keys = new Map(pinned.map((k) => [String(k['kid']), k]));
    else if (fileKeys !== undefined) keys = fileKeys;
    else keys = new Map();
    // the union of the store's copy and the file outside it: deleting rows in one hides nothing
    const checkpoints = mergeCheckpoints(await store.checkpoints.listCheckpoints(), readCheckpointFile(dataDir));
    let v = await verifyAuditLog(store.audit, checkpoints, keys, sha256Hasher);
    if (v.ok && requireCheckpoint && v.records > 0 && v.checkpointsVerified === 0) {
      v = { ...v, ok: false, problem: { code: 'TRUNCATED', seq: 1, message: 'no signed checkpoint verifies: a cut tail or a rewritten log cannot be excluded' } };
    }
    const warning = v.ok && v.checkpointsVerified === 0 && v.records > 0 ? 'no signed checkpoint yet, so a cut tail could not be detected' : null;
    if (values.json) {
      io.out(JSON.stringify({ ok: v.ok, records: v.records, checkpoints_verified: v.checkpointsVerified, head_hash: v.headHash, problem: v.problem ?? null, warning }));
    } else if (v.ok) {
      io.out(`ok: ${v.records} records, ${v.checkpointsVerified} signed checkpoint(s) verified, head ${v.headHash}`);
      if (warning) io.out(`note: ${warning}`);
    } else {
      io.out(`BROKEN at record ${v.problem?.seq}: ${v.problem?.code}: ${v.problem?.message}`);
    }
    return v.ok ? EXIT.OK : EXIT.FAILED;
  } finally {
    await store.close();
  }
}
