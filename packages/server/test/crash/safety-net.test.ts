/**
 * The process-level last resort of `mandate serve`: a database connection error that reached no
 * listener is logged and the node carries on; any other uncaught exception still ends the
 * process, after a log line. Each case runs in a process of its own.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CHILD = join(import.meta.dirname, 'safety-net-child.ts');

function run(mode: 'database' | 'bug'): { status: number | null; lines: Record<string, unknown>[]; alive: boolean } {
  const r = spawnSync(process.execPath, [CHILD, mode], { encoding: 'utf8', timeout: 30_000 });
  const out = r.stdout.split('\n').filter((l) => l.trim() !== '');
  return { status: r.status, lines: out.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>), alive: out.includes('alive') };
}

describe('the process safety net', () => {
  it('logs a database connection error no listener heard, and keeps the process running', () => {
    const r = run('database');
    expect(r.alive).toBe(true);
    expect(r.status).toBe(0);
    // the server's FATAL message, then the socket's end: two errors, both caught
    expect(r.lines.length).toBeGreaterThan(0);
    for (const line of r.lines) expect(line['msg']).toContain('reached no listener');
    expect(r.lines[0]).toMatchObject({ cause: '57P01: terminating connection due to administrator command', origin: 'uncaughtException' });
    // the cause only, never the error object: a driver error can carry its client's settings
    expect(JSON.stringify(r.lines)).not.toContain('connectionParameters');
  });

  it('ends the process on any other uncaught exception, after one log line', () => {
    const r = run('bug');
    expect(r.alive).toBe(false);
    expect(r.status).toBe(1);
    expect(r.lines).toEqual([expect.objectContaining({ msg: 'uncaught exception; stopping' })]);
  });
});
