import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

describe('the README demo', () => {
  // the bound only stops a hang: the demo ends by itself, in seconds unless the machine is busy
  it('starts Mandate on embedded SQLite and every scripted decision matches the policies', { timeout: 330_000 }, () => {
    // the same command `npm run demo` runs, in a child process, as a newcomer would
    const r = spawnSync(process.execPath, ['packages/cli/bin/mandate.js', 'demo'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/on embedded SQLite/);
    expect(r.stdout).toMatch(/ALLOW/);
    expect(r.stdout).toMatch(/DENY +ARG_CONSTRAINT_FAILED/);
    expect(r.stdout).toMatch(/APPROVAL_REQUIRED/);
    expect(r.stdout).toMatch(/TOOL_BUDGET_EXHAUSTED/);
    expect(r.stdout).toMatch(/DENY TASK_COMPLETED/);
    expect(r.stdout).toMatch(/audit chain: intact/);
    expect(r.stdout).toMatch(/demo passed/);
  });
});
