/**
 * Smoke test: the kill hook benchmark still runs and writes its result. No timing assertions:
 * the numbers depend on the machine; only their shape is checked.
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
const out = mkdtempSync(join(tmpdir(), 'mandate-bench-kill-hooks-test-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('kill hook benchmark', () => {
  it('completes a quick run and writes its JSON result', { timeout: 120_000 }, async () => {
    await run(process.execPath, ['bench/kill-hooks.ts', '--quick', '--json-only', '--out', out], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const written = JSON.parse(readFileSync(join(out, 'kill-hooks.json'), 'utf8')) as BenchResult;
    expect(written).toMatchObject({ name: 'kill-hooks', mode: 'quick', params: { trials: 5 } });
    expect(Object.keys(written.figures).sort()).toEqual(['killAnswer', 'toHook']);
    for (const f of Object.values(written.figures)) {
      expect(f.runs).toBe(5);
      expect(f.min).toBeGreaterThan(0);
    }
  });
});
