/**
 * User errors end in one readable line with a stable code and the documented exit code, never a
 * stack trace. Run as a process, as users run it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../src/exit-codes.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'mandate.js');
const run = promisify(execFile);
let dir: string;
let taken: Server;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mandate-cli-errors-'));
  taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  port = (taken.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise((r) => taken.close(r));
  rmSync(dir, { recursive: true, force: true });
});

async function mandate(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { timeout: 300_000, env: { ...process.env, MANDATE_LOG_LEVEL: 'error' } });
    return { code: 0, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: unknown; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stderr: x.stderr ?? String(e) };
  }
}

describe('mandate serve on a port already in use', () => {
  it('says so in one line with PORT_IN_USE and exits 3, without a stack trace', async () => {
    const r = await mandate(['serve', '--port', String(port), '--host', '127.0.0.1', '--data-dir', join(dir, 'data'), '--dev-issuer']);
    expect(r.code).toBe(EXIT.CONFIG);
    expect(r.stderr).toContain(`PORT_IN_USE: 127.0.0.1:${String(port)} is already in use`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr).not.toContain('internal error');
  }, 300_000);
});

describe('mandate config validate', () => {
  it('exits 0 for a valid file, and --json prints JSON only', async () => {
    const file = join(dir, 'good.yaml');
    writeFileSync(file, 'server:\n  port: 9000\n');
    const r = await run(process.execPath, [BIN, 'config', 'validate', file, '--json'], { timeout: 300_000 });
    expect(JSON.parse(r.stdout)).toEqual({ ok: true, file });
  }, 300_000);

  it('exits 3 naming the file and the path of each problem in it, without a stack trace', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'server:\n  port: "abc"\n  bogus: 1\n');
    const r = await mandate(['config', 'validate', file]);
    expect(r.code).toBe(EXIT.CONFIG);
    expect(r.stderr).toContain(`CONFIG_INVALID: config file ${file}:`);
    expect(r.stderr).toContain('server.port');
    expect(r.stderr).toContain('bogus');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 300_000);

  it('exits 2 and says what is missing without a FILE', async () => {
    const r = await mandate(['config', 'validate']);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.stderr).toContain('missing the configuration FILE');
  }, 300_000);
});

describe('a missing required option', () => {
  it.each([
    [['replay', '--out', 'x.jsonl'], 'missing --traces, --policies'],
    [['agent', 'add', '--owner', 'me', '--data-dir', 'no-such-folder'], 'missing --id, --type'],
    [['agent', 'disable', '--data-dir', 'no-such-folder'], 'missing --id'],
  ])('is named: mandate %j', async (args, message) => {
    const r = await mandate(args);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.stderr.split('\n')[0]).toBe(message);
  }, 300_000);
});
