/**
 * The key encryption key from the command line: `mandate serve` refuses a store whose signing
 * keys it cannot decrypt (exit 3, KEK_MISMATCH), and `mandate keys rotate-kek` re-encrypts them.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRuntime, KEK_FILE, parseConfig } from '@mandate/server';
import { EXIT } from '../src/exit-codes.ts';
import { cli, EXAMPLE_POLICIES } from './support.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** a data folder whose store holds encrypted keys (under its generated kek.key) */
async function dataDir(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-cli-kek-'));
  dirs.push(dir);
  const rt = await createRuntime(parseConfig({ data_dir: dir, policies: { dir: EXAMPLE_POLICIES }, log: { level: 'silent' } }), { writeAdminKeyFile: false, env: {} });
  await rt.close();
  return dir;
}

describe('mandate serve and the key encryption key', () => {
  it('exits 3 with KEK_MISMATCH on a wrong MANDATE_KEK, never starting', async () => {
    const dir = await dataDir();
    const r = await cli(['serve', '--data-dir', dir, '--port', '0', '--policies', EXAMPLE_POLICIES], { MANDATE_KEK: randomBytes(32).toString('base64') });
    expect(r.code).toBe(EXIT.CONFIG);
    expect(r.err).toMatch(/^KEK_MISMATCH: /);
  });
});

describe('mandate keys rotate-kek', () => {
  it('re-encrypts the keys under a new KEK file it creates, after which the old KEK no longer starts it', async () => {
    const dir = await dataDir();
    const next = join(dir, 'next.kek');
    const r = await cli(['keys', 'rotate-kek', '--data-dir', dir, '--new-kek-file', next], {});
    expect(r.code, r.err).toBe(EXIT.OK);
    expect(r.out).toMatch(/re-encrypted 2 private signing key\(s\) from kek_[0-9a-f]{16} to kek_[0-9a-f]{16} \(new key written to /);
    expect(existsSync(next)).toBe(true);
    const old = await cli(['serve', '--data-dir', dir, '--port', '0', '--policies', EXAMPLE_POLICIES], {});
    expect(old.code).toBe(EXIT.CONFIG);
    expect(old.err).toContain('KEK_MISMATCH');
    // the new KEK, given as a value, is what this store needs now
    const again = await cli(['keys', 'rotate-kek', '--data-dir', dir, '--new-kek-file', join(dir, 'third.kek')], { MANDATE_KEK: readFileSync(next, 'utf8') });
    expect(again.code, again.err).toBe(EXIT.OK);
  });

  it('exits 2 without --new-kek-file or the sub-command, and 3 when there is no KEK to rotate from', async () => {
    expect((await cli(['keys'], {})).code).toBe(EXIT.USAGE);
    expect((await cli(['keys', 'rotate-kek'], {})).code).toBe(EXIT.USAGE);
    const empty = mkdtempSync(join(tmpdir(), 'mandate-cli-kek-'));
    dirs.push(empty);
    const r = await cli(['keys', 'rotate-kek', '--data-dir', empty, '--new-kek-file', join(empty, 'n.kek')], {});
    expect(r.code).toBe(EXIT.CONFIG);
    expect(existsSync(join(empty, KEK_FILE))).toBe(false);
  });
});
