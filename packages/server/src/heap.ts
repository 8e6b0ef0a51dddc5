/**
 * The V8 heap of a process that `mandate serve` owns.
 *
 * V8 grows its old generation lazily while memory is plentiful: with its own limit (~4 GiB here)
 * a server over 10k live tasks held ~600 MB resident after 1M decisions, most of it garbage not
 * yet collected (docs/operations.md, memory). `server.max_heap_mb` sets the limit instead. V8
 * reads it only when the heap is created: `v8.setFlagsFromString('--max-old-space-size=…')` at
 * run time leaves `heap_size_limit` unchanged (measured on Node 24), so the process is started
 * again in place (`process.execve`: the same pid, nothing left behind) with the flags on its
 * command line. bin/mandate.js does that with the defaults before it loads anything, so a start
 * with the shipped config pays one bare Node start-up; a config that names other values is
 * started once more after it is read.
 *
 * The young generation doubles (up to 32 MiB a semi-space, ~96 MiB resident) whenever enough
 * objects survive its collections, and never shrinks back: `mandate serve` had grown it to 32-64
 * MiB before it was ready. A server answering a stream of small requests allocates fast but keeps
 * little, so the semi-space is capped from the start unless `server.young_generation_growth` is on.
 *
 * For the same reason its collections have little to copy (~30 KiB survived one, at one call at a
 * time and at 50 in flight alike), so V8's parallel scavenge, which wakes helper threads to share
 * the copying, spends more in waking them than it shares: the young generation is collected on
 * the thread that allocated it unless `server.parallel_scavenge` is on.
 */
import { setFlagsFromString } from 'node:v8';

/** `server.max_heap_mb`'s default: the old generation's limit, MiB (see docs/operations.md, memory) */
export const DEFAULT_MAX_HEAP_MB = 309;
/**
 * the young generation's semi-space, MiB, when it may not grow. Same-run soaks (10k tasks, server
 * CPU per decision): 1 MiB cost 25-32 % more CPU than V8's growth (more scavenges, more objects
 * promoted while their requests are still in flight), 4 MiB ~6 %, 8 and 16 MiB none measurable
 */
const SMALL_SEMI_SPACE_MB = 8;

export interface HeapSettings {
  /** the old generation's limit, MiB */
  readonly maxHeapMb: number;
  readonly youngGenerationGrowth: boolean;
  /** V8's parallel scavenge (helper threads for young-generation collections) */
  readonly parallelScavenge: boolean;
}

/** the shipped defaults, for the launcher (bin/mandate.js), which starts before the config is read */
export const DEFAULT_HEAP_SETTINGS: HeapSettings = { maxHeapMb: DEFAULT_MAX_HEAP_MB, youngGenerationGrowth: false, parallelScavenge: false };

/**
 * glibc malloc's settings for the restarted process, each unless the operator set it (other C
 * libraries ignore them). glibc gives each thread that allocates its own arena (V8's compiler and
 * GC helpers, libuv's pool, the store's threads), and freed memory stays in them: two arenas held
 * ~30 MB less after 80k decisions at no measured cost. Fixed trim and mmap thresholds of 128 KiB
 * stop glibc raising them after large blocks are freed (up to 32 MiB), so that large blocks are
 * mapped and given back instead of kept (docs/operations.md, memory).
 */
const MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '131072', MALLOC_MMAP_THRESHOLD_: '131072' };
const OLD = '--max-old-space-size=';
const SEMI = '--max-semi-space-size=';
const PARALLEL_SCAVENGE = '--parallel-scavenge';
const NO_PARALLEL_SCAVENGE = '--no-parallel-scavenge';

/** the V8 flags that give a process these settings */
export function heapFlags(s: HeapSettings): string[] {
  return [`${OLD}${s.maxHeapMb}`, ...(s.youngGenerationGrowth ? [] : [`${SEMI}${SMALL_SEMI_SPACE_MB}`]), ...(s.parallelScavenge ? [] : [NO_PARALLEL_SCAVENGE])];
}

/** the value a process's command line gives a flag (the last one wins, as in V8) */
function lastValue(execArgv: readonly string[], prefix: string): string | undefined {
  let v: string | undefined;
  for (const a of execArgv) if (a.startsWith(prefix)) v = a.slice(prefix.length);
  return v;
}

/** whether a process started with `execArgv` runs with exactly these settings */
export function heapApplied(s: HeapSettings, execArgv: readonly string[] = process.execArgv): boolean {
  // V8's own default is parallel: only a `--no-` as the last of the two turns it off
  const parallel = execArgv.findLast((a) => a === PARALLEL_SCAVENGE || a === NO_PARALLEL_SCAVENGE) !== NO_PARALLEL_SCAVENGE;
  return lastValue(execArgv, OLD) === String(s.maxHeapMb) && lastValue(execArgv, SEMI) === (s.youngGenerationGrowth ? undefined : String(SMALL_SEMI_SPACE_MB)) && parallel === s.parallelScavenge;
}

/**
 * Starts this process again in place with these settings (same pid, same arguments and
 * environment); returns only if it cannot (`process.execve` missing: Node < 23.11), with false.
 */
export function restartWithHeap(s: HeapSettings): boolean {
  const execve = (process as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
  if (typeof execve !== 'function') return false;
  const kept = process.execArgv.filter((a) => !a.startsWith(OLD) && !a.startsWith(SEMI) && a !== PARALLEL_SCAVENGE && a !== NO_PARALLEL_SCAVENGE);
  execve.call(process, process.execPath, [process.execPath, ...kept, ...heapFlags(s), ...process.argv.slice(1)], restartEnv(process.env));
  return false;
}

/**
 * The environment the restarted process gets: this one, with glibc malloc's settings added where
 * it does not name them. Child processes do not inherit them: an MCP stdio upstream gets only
 * PATH, HOME and the like and its config's `env` (the MCP SDK's default environment).
 */
export function restartEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [k, v] of Object.entries(MALLOC_ENV)) out[k] ??= v;
  return out;
}

/** Keeps the young generation at the size it has now (a process-wide V8 setting). */
export function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

/**
 * Collects the young generation on the thread that allocated it (a process-wide V8 setting, read
 * at each collection): for a process that was not started with the flag (run inside another
 * program, or on a Node without process.execve).
 */
export function scavengeOnOneThread(): void {
  setFlagsFromString(NO_PARALLEL_SCAVENGE);
}
