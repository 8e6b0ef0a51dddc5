#!/usr/bin/env node
// The `mandate` command. Plain JavaScript so that nothing is type-stripped before Node's compile
// cache is on: the first run fills it (packages/cli/.cache/compile, or NODE_COMPILE_CACHE), later
// runs load every module's stripped and compiled code from it instead of loading the TypeScript
// stripper and compiling again. NODE_DISABLE_COMPILE_CACHE=1 turns it off; a cache that cannot be
// written is skipped. Entries are keyed by each file's content, so an edited file is never stale.
//
// In the repository it runs the TypeScript sources (src/, Node 24's type stripping); an installed
// package has no src/ and runs its build (dist/, plain JavaScript: any Node >= 22).
import { existsSync } from 'node:fs';
import { enableCompileCache } from 'node:module';

enableCompileCache(new URL('../.cache/compile', import.meta.url).pathname);
const fromSource = existsSync(new URL('../src/main.ts', import.meta.url));
// `serve` runs with a bounded V8 heap (server.max_heap_mb), which V8 reads only when the heap is
// created: before loading anything, start again in place with the default's flags (one bare Node
// start-up); serve starts once more only if its config names other values (server/src/heap.ts)
const serving = process.argv[2] === 'serve' && !process.argv.includes('--help') && !process.argv.includes('-h');
if (serving && !process.execArgv.some((a) => a.startsWith('--max-old-space-size='))) {
  const { DEFAULT_HEAP_SETTINGS, restartWithHeap } = await import('@mandate/server/heap');
  restartWithHeap(DEFAULT_HEAP_SETTINGS);
}
const { runCli } = await import(fromSource ? '../src/main.ts' : '../dist/main.js');
const { processIO } = await import(fromSource ? '../src/io.ts' : '../dist/io.js');
process.exitCode = await runCli(process.argv.slice(2), processIO);
