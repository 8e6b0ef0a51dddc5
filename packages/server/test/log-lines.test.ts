import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { linesPerTurn } from '../src/log-lines.ts';

describe('the log, a turn of lines at a time', () => {
  it('writes the first line of a turn at once and the rest of the turn as one chunk at its end, in order', () => {
    const chunks: string[] = [];
    const turns: (() => void)[] = [];
    const lines = linesPerTurn({ write: (c) => void chunks.push(c) }, (fn) => void turns.push(fn));
    lines.write('{"msg":"a"}\n');
    expect(chunks).toEqual(['{"msg":"a"}\n']);
    lines.write('{"msg":"b"}\n');
    lines.write('{"msg":"c"}\n');
    expect(chunks).toEqual(['{"msg":"a"}\n']);
    expect(turns).toHaveLength(1);
    turns.shift()?.();
    expect(chunks).toEqual(['{"msg":"a"}\n', '{"msg":"b"}\n{"msg":"c"}\n']);
    // the next turn: its first line at once again
    lines.write('{"msg":"d"}\n');
    expect(chunks).toHaveLength(3);
    expect(turns).toHaveLength(1);
    turns.shift()?.();
    expect(chunks.join('')).toBe('{"msg":"a"}\n{"msg":"b"}\n{"msg":"c"}\n{"msg":"d"}\n');
    expect(chunks).toHaveLength(3);
  });

  it('hands over what is waiting at once when flushed (at exit), and nothing twice', () => {
    const chunks: string[] = [];
    const turns: (() => void)[] = [];
    const lines = linesPerTurn({ write: (c) => void chunks.push(c) }, (fn) => void turns.push(fn));
    lines.write('one\n');
    lines.write('two\n');
    lines.write('three\n');
    lines.flush();
    expect(chunks).toEqual(['one\n', 'two\nthree\n']);
    turns.shift()?.();
    lines.flush();
    expect(chunks).toEqual(['one\n', 'two\nthree\n']);
  });

  it('writes the rest of a turn on the event loop after the code that wrote it', async () => {
    const chunks: string[] = [];
    const lines = linesPerTurn({ write: (c) => void chunks.push(c) });
    lines.write('x\n');
    lines.write('y\n');
    lines.write('z\n');
    expect(chunks).toEqual(['x\n']);
    await new Promise((r) => setImmediate(r));
    expect(chunks).toEqual(['x\n', 'y\nz\n']);
  });

  it('writes the last turn\'s lines when the process exits in that turn (a fatal error)', () => {
    const r = spawnSync(process.execPath, [join(import.meta.dirname, 'ops', 'log-lines-exit.ts')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(3);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; n: number });
    // every line, each once. Not their order: the first line's asynchronous write can still be
    // under way when the exit writes the rest synchronously (pino's own writer at exit does the same)
    expect(lines.map((l) => [l.msg, l.n]).sort((a, b) => Number(a[1]) - Number(b[1]))).toEqual([
      ['first line', 1],
      ['uncaught exception; stopping', 2],
    ]);
  });
});
