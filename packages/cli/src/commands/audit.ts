import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isJsonObject, verifyAuditLog, type JsonObject } from '@mandate/core';
import { sha256Hasher } from '@mandate/server';
import { openSqliteStore } from '@mandate/store-sqlite';
import { CliError, EXIT } from '../exit-codes.ts';
import type { CliIO } from '../io.ts';

export const auditHelp = `mandate audit verify [--data-dir DIR | --db FILE] [--jwks FILE] [--json]
  Walks the audit hash chain record by record, checks every signed checkpoint, and reports the
  first broken link (an edited, deleted or reordered record, or a cut tail). --jwks pins the
  checkpoint public keys (from GET /v1/audit/jwks) instead of trusting the ones in the store.
  Exit 0 when intact, 1 when broken.`;

export async function auditCommand(args: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'verify') throw new CliError(EXIT.USAGE, auditHelp);
  const { values } = parseArgs({ args: rest, strict: true, options: { 'data-dir': { type: 'string' }, db: { type: 'string' }, jwks: { type: 'string' }, json: { type: 'boolean' } } });
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
  const store = openSqliteStore({ path: db, hasher: sha256Hasher });
  try {
    let keys: Map<string, JsonObject>;
    if (pinned !== undefined) {
      keys = new Map(pinned.map((k) => [String(k['kid']), k]));
    } else {
      keys = new Map((await store.keys.listKeys('audit-checkpoint')).map((k) => [k.kid, k.publicJwk]));
    }
    const checkpoints = await store.checkpoints.listCheckpoints();
    const v = await verifyAuditLog(store.audit, checkpoints, keys, sha256Hasher);
    if (values.json) {
      io.out(JSON.stringify({ ok: v.ok, records: v.records, checkpoints_verified: v.checkpointsVerified, head_hash: v.headHash, problem: v.problem ?? null }));
    } else if (v.ok) {
      io.out(`ok: ${v.records} records, ${v.checkpointsVerified} signed checkpoint(s) verified, head ${v.headHash}`);
      if (checkpoints.length === 0) io.out('note: no signed checkpoint yet, so a cut tail could not be detected');
    } else {
      io.out(`BROKEN at record ${v.problem?.seq}: ${v.problem?.code}: ${v.problem?.message}`);
    }
    return v.ok ? EXIT.OK : EXIT.FAILED;
  } finally {
    await store.close();
  }
}
