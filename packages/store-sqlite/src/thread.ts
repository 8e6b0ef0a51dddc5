/**
 * Starting one of the store's threads (the commit thread, the checkpointer).
 *
 * A thread does not share its process's module compile cache (`module.enableCompileCache`): it
 * turns one on at its own start-up only when NODE_COMPILE_CACHE is in its environment. Without
 * it, each thread loads Node's TypeScript stripper (a WebAssembly module: ~6 MB of memory and
 * ~4 MB of heap, held for the thread's life) and strips and compiles its modules again at every
 * start. So a thread is given the process's cache directory in its own environment (the
 * process's environment is left as it is); one that cannot be written is skipped by Node.
 */
import { getCompileCacheDir } from 'node:module';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * The environment a store thread starts with: this process's, with its compile cache named.
 * `cacheDir` is the process's (`getCompileCacheDir()`), the directory Node made for this Node
 * version and these V8 flags inside the one turned on: the thread is given the one turned on,
 * and so makes and uses the same.
 */
export function threadEnv(env: NodeJS.ProcessEnv = process.env, cacheDir: string | undefined = getCompileCacheDir()): NodeJS.ProcessEnv {
  if (cacheDir === undefined || env['NODE_DISABLE_COMPILE_CACHE'] !== undefined) return env;
  return { ...env, NODE_COMPILE_CACHE: dirname(cacheDir) };
}

/** the store's module `name` (the built package runs the .js beside this file; the sources run the .ts) */
export function storeModule(name: string): URL {
  return new URL(import.meta.url.endsWith('.ts') ? `./${name}.ts` : `./${name}.js`, import.meta.url);
}

/** starts the module at `url` as a thread, with the process's compile cache */
export function startThread(url: URL, workerData: unknown): Worker {
  return new Worker(url, { workerData, env: threadEnv() });
}
