/**
 * What protects the audit log must not live beside it: whoever can write the database could
 * otherwise rewrite the chain and re-sign it. The checkpoint signing keys live in their own
 * file (mode 0600) in the data folder, and every checkpoint is also appended to a file outside
 * the database, so deleting checkpoint rows does not hide a cut tail either.
 */
import { appendFileSync, chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MandateError, isJsonObject, type Checkpoint, type CheckpointStore, type JsonObject, type KeyStore, type PrivateKeyRewriter, type SigningKey } from '@mandate/core';

export const AUDIT_KEY_FILE = 'audit-checkpoint-keys.json';
export const CHECKPOINT_FILE = 'audit-checkpoints.jsonl';

/** Writes a private file (mode 0600) atomically: a crash never leaves half of it. */
export function writePrivate(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** A KeyStore in one JSON file, for the audit checkpoint keys only. */
export class FileKeyStore implements KeyStore, PrivateKeyRewriter {
  private readonly path: string;

  /** @param path the key file (default `<data_dir>/audit-checkpoint-keys.json`) */
  constructor(path: string) {
    this.path = path;
  }

  private read(): SigningKey[] {
    if (!existsSync(this.path)) return [];
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch (e) {
      throw new MandateError('CONFIG_INVALID', `${this.path} is not valid JSON: ${(e as Error).message}`);
    }
    if (!isJsonObject(doc) || !Array.isArray(doc['keys'])) throw new MandateError('CONFIG_INVALID', `${this.path} has no keys`);
    return doc['keys'] as unknown as SigningKey[];
  }

  private write(keys: SigningKey[]): void {
    writePrivate(this.path, JSON.stringify({ keys }, null, 2) + '\n');
  }

  async listKeys(purpose: SigningKey['purpose']): Promise<SigningKey[]> {
    return this.read()
      .filter((k) => k.purpose === purpose)
      .map((k) => ({ ...k, retiredAt: k.retiredAt ?? undefined }));
  }

  async addKey(key: SigningKey): Promise<void> {
    const keys = this.read();
    if (keys.some((k) => k.kid === key.kid)) throw new MandateError('CONFLICT', `signing key ${key.kid} exists`);
    this.write([...keys, { ...key, retiredAt: key.retiredAt ?? (null as unknown as undefined) }]);
  }

  async replacePrivateKey(kid: string, privateJwk: JsonObject): Promise<void> {
    const keys = this.read();
    if (!keys.some((x) => x.kid === kid)) throw new MandateError('NOT_FOUND', `signing key ${kid} does not exist`);
    this.write(keys.map((x) => (x.kid === kid ? { ...x, privateJwk } : x)));
  }

  async retireKey(kid: string, at: number): Promise<void> {
    const keys = this.read();
    const k = keys.find((x) => x.kid === kid);
    if (!k) throw new MandateError('NOT_FOUND', `signing key ${kid} does not exist`);
    this.write(keys.map((x) => (x.kid === kid && x.status !== 'retired' ? { ...x, status: 'retired', retiredAt: at } : x)));
  }
}

/** Public checkpoint keys from the key file, for verifiers. */
export function readAuditPublicKeys(path: string): Map<string, JsonObject> | undefined {
  if (!existsSync(path)) return undefined;
  const doc = JSON.parse(readFileSync(path, 'utf8')) as { keys?: SigningKey[] };
  return new Map((doc.keys ?? []).map((k) => [k.kid, k.publicJwk]));
}

/** Checkpoints written to the store and appended to a file outside it. */
export class MirroredCheckpoints implements CheckpointStore {
  private readonly inner: CheckpointStore;
  private readonly path: string;

  constructor(inner: CheckpointStore, dataDir: string) {
    this.inner = inner;
    this.path = join(dataDir, CHECKPOINT_FILE);
  }

  async addCheckpoint(cp: Checkpoint): Promise<void> {
    appendFileSync(this.path, JSON.stringify(cp) + '\n', { mode: 0o600 });
    await this.inner.addCheckpoint(cp);
  }

  /** The union of both copies: removing a checkpoint from one place does not remove it. */
  async listCheckpoints(): Promise<Checkpoint[]> {
    return mergeCheckpoints(await this.inner.listCheckpoints(), readCheckpointFile(join(this.path, '..')));
  }
}

export function readCheckpointFile(dataDir: string): Checkpoint[] {
  const path = join(dataDir, CHECKPOINT_FILE);
  if (!existsSync(path)) return [];
  const out: Checkpoint[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      const v = JSON.parse(line) as Checkpoint;
      if (typeof v.seq === 'number' && typeof v.signature === 'string') out.push(v);
    } catch {
      // a torn last line after a crash: the checkpoint before it still counts
    }
  }
  return out;
}

export function mergeCheckpoints(a: readonly Checkpoint[], b: readonly Checkpoint[]): Checkpoint[] {
  const seen = new Map<string, Checkpoint>();
  for (const cp of [...a, ...b]) seen.set(`${cp.seq}:${cp.signature}`, cp);
  return [...seen.values()].sort((x, y) => x.seq - y.seq);
}
