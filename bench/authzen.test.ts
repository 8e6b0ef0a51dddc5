/**
 * Smoke test: the AuthZEN batch benchmark still runs and writes its result. No timing
 * assertions: the numbers depend on the machine; only their shape is checked.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResult } from './lib/report.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const out = mkdtempSync(join(tmpdir(), 'mandate-bench-authzen-test-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('AuthZEN batch benchmark', () => {
  it('completes a quick run and writes its JSON result', { timeout: 120_000 }, async () => {
    const { stdout } = await run(process.execPath, ['bench/authzen.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'authzen.json'), 'utf8')) as BenchResult;
    const printed = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as BenchResult;
    expect(printed).toEqual(written);
    expect(written).toMatchObject({ name: 'authzen', mode: 'quick', node: process.version, params: { items: 100 } });
    expect(Object.keys(written.figures).sort()).toEqual(['batch_100', 'single_c1', 'single_c16']);
    for (const f of Object.values(written.figures)) {
      expect(f.runs).toBeGreaterThan(0);
      expect(Number.isFinite(f.mean)).toBe(true);
    }
    expect(written.derived['batch speed-up vs 100 sequential calls, x']).toEqual(expect.any(Number));
    expect(written.target).toEqual(expect.objectContaining({ required: 4, actual: expect.any(Number), met: expect.any(Boolean) }));
  });
});
