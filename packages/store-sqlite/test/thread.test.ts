import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { threadEnv } from '../src/thread.ts';

/** The store's threads start with their process's module compile cache (thread.ts). */
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-thread-cache-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const CHILD = fileURLToPath(new URL('./fixtures/thread-child.ts', import.meta.url));

interface Report {
  /** the process's cache directory */
  readonly process: string | null;
  /** the thread's */
  readonly thread: { readonly cacheDir: string | null; readonly stripper: boolean };
}

/** one process that turns its cache on at `cache` and starts a thread: what each reports */
async function threadReport(cache: string): Promise<Report> {
  const env = { ...process.env };
  delete env['NODE_COMPILE_CACHE'];
  delete env['NODE_DISABLE_COMPILE_CACHE'];
  const { stdout } = await promisify(execFile)(process.execPath, [CHILD, cache], { env, timeout: 60_000 });
  return JSON.parse(stdout) as Report;
}

describe('sqlite store: its threads and the compile cache', () => {
  it('a thread uses the cache its process turned on: once warm, it loads no TypeScript stripper', async () => {
    const cache = join(dir, 'cache');
    const first = await threadReport(cache);
    expect(first.process?.startsWith(cache)).toBe(true);
    // the same directory as the process's, not one of its own
    expect(first.thread.cacheDir).toBe(first.process);
    const second = await threadReport(cache);
    expect(second.thread).toMatchObject({ cacheDir: first.process, stripper: false });
  });

  it('names the process’s cache in the thread’s environment only, and not when the cache is off or disabled', () => {
    const env = { PATH: '/bin' };
    expect(threadEnv(env, '/var/cache/mandate/v24.21.0-x64-964aae3f-0')).toEqual({ PATH: '/bin', NODE_COMPILE_CACHE: '/var/cache/mandate' });
    expect(env).toEqual({ PATH: '/bin' });
    expect(threadEnv(env, undefined)).toBe(env);
    expect(threadEnv({ ...env, NODE_DISABLE_COMPILE_CACHE: '1' }, '/var/cache/mandate')).toEqual({ PATH: '/bin', NODE_DISABLE_COMPILE_CACHE: '1' });
  });
});
