/**
 * The commit thread's entry (commit-thread.ts): a thread starts without the process's module
 * compile cache, so it turns it on before loading the thread's code (commit-worker.ts). Without
 * it the thread compiles its modules anew at every start, which delays a server's readiness.
 */
import { enableCompileCache } from 'node:module';
import { workerData } from 'node:worker_threads';
import type { CommitThreadSettings } from './commit-protocol.ts';

const dir = (workerData as CommitThreadSettings).compileCacheDir;
if (dir !== undefined) enableCompileCache(dir);
await import(new URL(import.meta.url.endsWith('.ts') ? './commit-worker.ts' : './commit-worker.js', import.meta.url).href);
