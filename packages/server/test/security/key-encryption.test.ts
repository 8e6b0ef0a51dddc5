/**
 * Private signing keys are encrypted at rest under a key encryption key (KEK) kept apart from
 * the store: the rows hold no private key material, a copy of the database without the KEK
 * neither starts nor mints, plaintext keys of an older store are encrypted on the first start,
 * and the KEK rotates (start with a new KEK and the old one as previous, or `rotate-kek` offline).
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { MandateError, type JsonObject, type SigningKey, type Store } from '@mandate/core';
import { openSqliteStore } from '@mandate/store-sqlite';
import { AUDIT_KEY_FILE, createRuntime, KEK_FILE, kekId, parseConfig, rotateKek, sha256Hasher, type MandateConfigInput, type MandateRuntime } from '@mandate/server';
import { dropSchema, freshSchema, PG_URL } from '../../../store-postgres/test/support.ts';
import { EXAMPLE_POLICIES, ManualClock, TRUST_DOMAIN } from '../support.ts';

const PURPOSES: SigningKey['purpose'][] = ['task-token', 'dev-issuer', 'audit-checkpoint'];

const dirs: string[] = [];
const schemas: string[] = [];
const runtimes: MandateRuntime[] = [];
afterEach(async () => {
  await Promise.allSettled(runtimes.splice(0).map((r) => r.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const s of schemas.splice(0)) await dropSchema(s);
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'mandate-kek-'));
  dirs.push(d);
  return d;
}

function kekFile(dir: string, name: string): string {
  const path = join(dir, name);
  writeFileSync(path, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  return path;
}

function config(dataDir: string, extra: Partial<MandateConfigInput> = {}) {
  return parseConfig({
    environment: 'prod',
    data_dir: dataDir,
    policies: { dir: EXAMPLE_POLICIES },
    identity: { dev_issuer: { enabled: true, trust_domain: TRUST_DOMAIN } },
    log: { level: 'silent' },
    ...extra,
  });
}

async function start(dataDir: string, extra: Partial<MandateConfigInput> = {}, env: Record<string, string | undefined> = {}): Promise<MandateRuntime> {
  const rt = await createRuntime(config(dataDir, extra), { writeAdminKeyFile: false, clock: new ManualClock(), env });
  runtimes.push(rt);
  return rt;
}

async function stop(rt: MandateRuntime): Promise<void> {
  runtimes.splice(runtimes.indexOf(rt), 1);
  await rt.close();
}

async function refusal(p: Promise<unknown>): Promise<MandateError> {
  const e = await p.then(
    (rt) => {
      runtimes.push(rt as MandateRuntime);
      return undefined;
    },
    (err: unknown) => err,
  );
  expect(e, 'expected the start to be refused').toBeInstanceOf(MandateError);
  return e as MandateError;
}

/** every private `d` the runtime holds: the task-token keys, the dev issuer key, the checkpoint keys */
function secrets(rt: MandateRuntime): string[] {
  const ds = [rt.taskKeys.active().privateJwk['d'], rt.auditKeys.active().privateJwk['d'], rt.devIssuer?.privateJwk().d];
  for (const d of ds) expect(typeof d).toBe('string');
  return ds as string[];
}

/** the raw stored keys of every purpose (the store's own view, not the runtime's decrypted one) */
async function rawKeys(store: Pick<Store, 'keys'>): Promise<SigningKey[]> {
  return (await Promise.all(PURPOSES.map((p) => store.keys.listKeys(p)))).flat();
}

/** every byte of every file in the folder, as latin1 text (base64url survives it unchanged) */
function folderText(dir: string): string {
  return readdirSync(dir)
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => readFileSync(f).toString('latin1'))
    .join('\n');
}

async function mint(rt: MandateRuntime): Promise<string> {
  return (await rt.tokens.mint({ agentId: `spiffe://${TRUST_DOMAIN}/agents/a`, taskId: 'task_1', mandateHash: 'sha256:00', txn: 'txn_1', expiresAt: rt.clock.now() + 60_000 })).token;
}

describe('private signing keys at rest (SQLite)', () => {
  it('stores no private key material in the database or the audit key file, only envelopes', async () => {
    const dir = tempDir();
    const rt = await start(dir);
    expect(rt.keyEncryption).toMatchObject({ generated: true, encrypted: 0 });
    expect(statSync(join(dir, KEK_FILE)).mode & 0o777).toBe(0o600);
    const ds = secrets(rt);
    const rows = await rawKeys(rt.store);
    expect(rows.map((k) => k.purpose).sort()).toEqual(['dev-issuer', 'task-token']);
    for (const k of rows) {
      expect(Object.keys(k.privateJwk).sort()).toEqual(['alg', 'ct', 'iv', 'kek', 'kid', 'mandate_enc', 'tag']);
      expect(k.privateJwk).toMatchObject({ mandate_enc: 1, kid: k.kid, kek: rt.keyEncryption.kek });
    }
    await stop(rt);
    // the database files (main and WAL) and the audit key file, byte for byte
    const stored = folderText(dir).replace(readFileSync(join(dir, KEK_FILE), 'latin1'), '');
    for (const d of ds) expect(stored).not.toContain(d);
    expect(stored).toContain('mandate_enc');
    const auditFile = JSON.parse(readFileSync(join(dir, AUDIT_KEY_FILE), 'utf8')) as { keys: SigningKey[] };
    for (const k of auditFile.keys) expect(k.privateJwk).not.toHaveProperty('d');
  });

  it('refuses to start on a copy of the database without its KEK, and mints nothing there', async () => {
    const dir = tempDir();
    const rt = await start(dir);
    const token = await mint(rt);
    await stop(rt);
    const copy = tempDir();
    copyFileSync(join(dir, 'mandate.db'), join(copy, 'mandate.db'));
    for (const side of ['-wal', '-shm']) if (existsSync(join(dir, `mandate.db${side}`))) copyFileSync(join(dir, `mandate.db${side}`), join(copy, `mandate.db${side}`));

    const none = await refusal(start(copy));
    expect(none.code).toBe('KEK_MISMATCH');
    // no new KEK was made for keys that are not its own
    expect(existsSync(join(copy, KEK_FILE))).toBe(false);
    const wrong = await refusal(start(copy, {}, { MANDATE_KEK: randomBytes(32).toString('base64') }));
    expect(wrong.code).toBe('KEK_MISMATCH');
    expect(wrong.message).toContain('not configured');

    // with the KEK it starts, with the same keys: the token minted before verifies
    const right = await start(copy, {}, { MANDATE_KEK: readFileSync(join(dir, KEK_FILE), 'utf8') });
    expect((await right.tokens.verify(token)).task_id).toBe('task_1');
  });

  it('refuses a malformed KEK with CONFIG_INVALID, naming where it came from and not its value', async () => {
    const e = await refusal(start(tempDir(), {}, { MANDATE_KEK: 'c2hvcnQ=' }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toContain('MANDATE_KEK');
    expect(e.message).not.toContain('c2hvcnQ');
  });

  it('refuses a key row whose public key was swapped (the ciphertext is bound to it)', async () => {
    const dir = tempDir();
    await stop(await start(dir));
    const store = openSqliteStore({ path: join(dir, 'mandate.db'), hasher: sha256Hasher });
    const [key] = await store.keys.listKeys('task-token');
    const { publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const forged = { ...(await exportJWK(publicKey)), kid: key?.kid, alg: 'EdDSA', use: 'sig' };
    // the port cannot change a public key: an attacker with the file can
    await store.close();
    const { DatabaseSync } = await import('node:sqlite');
    const db = new DatabaseSync(join(dir, 'mandate.db'));
    db.prepare('UPDATE signing_keys SET public_jwk = ? WHERE kid = ?').run(JSON.stringify(forged), String(key?.kid));
    db.close();
    const e = await refusal(start(dir));
    expect(e.code).toBe('KEK_MISMATCH');
    expect(e.message).toContain('does not authenticate');
  });

  it('encrypts plaintext keys left by an older version on the first start, and keeps using them', async () => {
    const dir = tempDir();
    // an older store: a task-token key with its private JWK in plain text
    const store = openSqliteStore({ path: join(dir, 'mandate.db'), hasher: sha256Hasher });
    const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const kid = 'k_legacy';
    const priv = { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA' } as JsonObject;
    await store.keys.addKey({ kid, purpose: 'task-token', alg: 'EdDSA', publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' } as JsonObject, privateJwk: priv, status: 'active', createdAt: 1, retiredAt: undefined });
    await store.close();

    const rt = await start(dir);
    expect(rt.keyEncryption.encrypted).toBe(1);
    expect(rt.taskKeys.active().kid).toBe(kid);
    expect(rt.taskKeys.active().privateJwk['d']).toBe(priv['d']);
    const [row] = (await rawKeys(rt.store)).filter((k) => k.kid === kid);
    expect(row?.privateJwk).toMatchObject({ mandate_enc: 1, kek: rt.keyEncryption.kek });
    expect(JSON.stringify(row)).not.toContain(String(priv['d']));
    // the next start finds nothing left to encrypt
    await stop(rt);
    expect((await start(dir)).keyEncryption.encrypted).toBe(0);
  });

  it('rotates the KEK by starting with the new one and the old one as previous', async () => {
    const dir = tempDir();
    const [oldKek, newKek] = [kekFile(dir, 'old.kek'), kekFile(dir, 'new.kek')];
    const first = await start(dir, { keys: { kek_file: oldKek } });
    const token = await mint(first);
    const ds = secrets(first);
    await stop(first);

    const rotated = await start(dir, { keys: { kek_file: newKek, previous_kek_files: [oldKek] } });
    expect(rotated.keyEncryption.reEncrypted).toBe(3); // task token, dev issuer, audit checkpoint
    const newId = kekId(Buffer.from(readFileSync(newKek, 'utf8').trim(), 'base64'));
    for (const k of await rawKeys(rotated.store)) expect(k.privateJwk['kek']).toBe(newId);
    expect(secrets(rotated)).toEqual(ds);
    expect((await rotated.tokens.verify(token)).task_id).toBe('task_1');
    await stop(rotated);

    // the old KEK is no longer needed, and no longer enough
    expect((await start(dir, { keys: { kek_file: newKek } })).keyEncryption.reEncrypted).toBe(0);
    await Promise.all(runtimes.splice(0).map((r) => r.close()));
    expect((await refusal(start(dir, { keys: { kek_file: oldKek } }))).code).toBe('KEK_MISMATCH');
  });

  it('rotates the KEK offline (keys rotate-kek), writing nothing when the current KEK is wrong', async () => {
    const dir = tempDir();
    const first = await start(dir);
    const ds = secrets(first);
    await stop(first);
    const before = JSON.stringify(await readRaw(dir));

    const wrong = await rotateKek(config(dir), { MANDATE_KEK: randomBytes(32).toString('base64') }, join(dir, 'unused.kek')).catch((e: unknown) => e);
    expect(wrong).toMatchObject({ code: 'KEK_MISMATCH' });
    expect(existsSync(join(dir, 'unused.kek'))).toBe(false);
    expect(JSON.stringify(await readRaw(dir))).toBe(before);

    const next = join(tempDir(), 'next.kek');
    const r = await rotateKek(config(dir), {}, next);
    expect(r).toMatchObject({ created: true, keys: 3 });
    expect(statSync(next).mode & 0o777).toBe(0o600);
    expect((await refusal(start(dir))).code).toBe('KEK_MISMATCH');
    const after = await start(dir, { keys: { kek_file: next } });
    expect(secrets(after)).toEqual(ds);
  });
});

async function readRaw(dir: string): Promise<SigningKey[]> {
  const store = openSqliteStore({ path: join(dir, 'mandate.db'), hasher: sha256Hasher });
  try {
    return await rawKeys(store);
  } finally {
    await store.close();
  }
}

describe('private signing keys at rest (PostgreSQL)', () => {
  it('stores only envelopes, and a node without the cluster KEK refuses to start', async () => {
    const schema = freshSchema();
    schemas.push(schema);
    const pg = { store: PG_URL, postgres: { schema } };
    const kek = kekFile(tempDir(), 'cluster.kek');
    const audit = join(tempDir(), AUDIT_KEY_FILE);
    const one = await start(tempDir(), { ...pg, keys: { kek_file: kek }, audit: { key_file: audit } });
    const ds = secrets(one);
    const rows = await rawKeys(one.store);
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const k of rows) expect(k.privateJwk).toMatchObject({ mandate_enc: 1, kek: one.keyEncryption.kek });
    const text = JSON.stringify(rows);
    for (const d of ds) expect(text).not.toContain(d);

    // a second node with the same KEK reads the same keys; one without it (its own data folder) refuses
    const two = await start(tempDir(), { ...pg, keys: { kek_file: kek }, audit: { key_file: audit } });
    expect(secrets(two)).toEqual(ds);
    const stranger = tempDir();
    const e = await refusal(start(stranger, { ...pg, audit: { key_file: audit } }));
    expect(e.code).toBe('KEK_MISMATCH');
    expect(existsSync(join(stranger, KEK_FILE))).toBe(false);
  });
});
