/**
 * `mandate keys rotate-kek`: re-encrypts every private signing key (in the store and in the
 * audit key file) under a new key encryption key, offline. Mandate must be stopped (one node);
 * a cluster rotates without stopping through keys.previous_kek_files instead (docs/configuration-guide.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MandateError, type Store } from '@mandate/core';
import { openPostgresStore } from '@mandate/store-postgres';
import { openSqliteStore } from '@mandate/store-sqlite';
import { AUDIT_KEY_FILE, FileKeyStore } from './audit-files.ts';
import { isPostgres, storePath } from './compose.ts';
import type { MandateConfig } from './config.ts';
import { assertReadable, generateKekFile, KEK_FILE, loadKeks, parseKek, protectSigningKeys, type Kek } from './key-encryption.ts';
import { sha256Hasher } from './node-ports.ts';

export interface KekRotation {
  /** the KEK the keys were under (its id) and the new one */
  readonly from: string;
  readonly to: string;
  /** the new KEK's file, and whether this call created it */
  readonly file: string;
  readonly created: boolean;
  /** keys rewritten: in the store and in the audit key file */
  readonly keys: number;
}

const quiet = { info: () => undefined, warn: () => undefined };

/**
 * Reads the current KEK(s) as a start would (config and env; never generates one), takes the new
 * KEK from `newKekFile` (created, mode 0600, when it does not exist) and re-encrypts every key
 * under it. Throws KEK_MISMATCH (changing nothing) when a key cannot be read with the current KEKs.
 */
export async function rotateKek(config: MandateConfig, env: Readonly<Record<string, string | undefined>>, newKekFile: string): Promise<KekRotation> {
  const file = resolve(newKekFile);
  if (env['MANDATE_KEK'] === undefined && config.keys.kek_file === undefined && !existsSync(join(config.data_dir, KEK_FILE))) {
    throw new MandateError('CONFIG_INVALID', 'no key encryption key to rotate from: set keys.kek_file or MANDATE_KEK, or point --data-dir at the folder holding kek.key');
  }
  if (!isPostgres(config) && !existsSync(storePath(config))) throw new MandateError('CONFIG_INVALID', `no store at ${storePath(config)}`);
  const store: Store = isPostgres(config)
    ? await openPostgresStore({ url: config.store, hasher: sha256Hasher, schema: config.postgres.schema, poolSize: 2, statementTimeoutMs: config.postgres.statement_timeout })
    : openSqliteStore({ path: storePath(config), hasher: sha256Hasher });
  try {
    const auditFile = new FileKeyStore(config.audit.key_file ?? join(config.data_dir, AUDIT_KEY_FILE));
    const old = await loadKeks(config.keys, env, config.data_dir, [store.keys, auditFile], quiet);
    // everything readable with the current KEKs before a new one is made or anything written
    for (const s of [store.keys, auditFile]) await assertReadable(s, old);
    const created = !existsSync(file);
    let next: Kek;
    if (created) next = generateKekFile(file);
    else next = parseKek(readFileSync(file, 'utf8'), file);
    if (next.id === old.current.id) throw new MandateError('CONFIG_INVALID', `${file} holds the current key encryption key; give a new one (or a path that does not exist yet)`);
    const keks = { current: next, previous: [old.current, ...old.previous], generated: false };
    let keys = 0;
    for (const s of [store.keys, auditFile]) {
      const r = await protectSigningKeys(s, keks);
      keys += r.encrypted + r.reEncrypted;
    }
    return { from: old.current.id, to: next.id, file, created, keys };
  } finally {
    await store.close();
  }
}
