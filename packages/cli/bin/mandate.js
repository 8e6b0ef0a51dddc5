#!/usr/bin/env node
// The `mandate` command. Plain JavaScript so that nothing is type-stripped before Node's compile
// cache is on: the first run fills it (packages/cli/.cache/compile, or NODE_COMPILE_CACHE), later
// runs load every module's stripped and compiled code from it instead of loading the TypeScript
// stripper and compiling again. NODE_DISABLE_COMPILE_CACHE=1 turns it off; a cache that cannot be
// written is skipped. Entries are keyed by each file's content, so an edited file is never stale.
import { enableCompileCache } from 'node:module';

enableCompileCache(new URL('../.cache/compile', import.meta.url).pathname);
const { runCli } = await import('../src/main.ts');
const { processIO } = await import('../src/io.ts');
process.exitCode = await runCli(process.argv.slice(2), processIO);
