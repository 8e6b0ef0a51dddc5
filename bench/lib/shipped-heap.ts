/**
 * The V8 heap that `mandate serve` runs with (server/src/heap.ts: the old generation's limit, the
 * young generation's cap, collections on one thread), for a benchmark that times the decision
 * path in its own process. Without those flags the benchmark runs itself again with them, and
 * with glibc malloc's settings as serve sets them, and this process exits with its status: it
 * then measures what the server runs, not V8's own defaults (an unbounded old generation and a
 * young generation that grows), which decided faster at 128 in flight than the shipped bounds.
 *
 * BENCH_V8_HEAP=defaults keeps the flags it was started with (V8's defaults, for a comparison); the
 * result's params say which.
 */
import { DEFAULT_HEAP_SETTINGS, heapApplied, heapFlags, restartEnv } from '@mandate/server';
import { runSelfAgainWith } from './gc.ts';

export interface HeapUsed {
  /** 'shipped': mandate serve's flags; otherwise what the process was started with */
  readonly heap: 'shipped' | 'other';
  /** the process's own command-line options (its execArgv) */
  readonly flags: readonly string[];
}

/** the heap this process runs with */
export function heapInUse(): HeapUsed {
  return { heap: heapApplied(DEFAULT_HEAP_SETTINGS) ? 'shipped' : 'other', flags: [...process.execArgv] };
}

/** Runs this benchmark again with serve's heap, unless it has it or BENCH_V8_HEAP=defaults; call first, at the entry point. */
export function shippedHeap(): void {
  if (process.env['BENCH_V8_HEAP'] === 'defaults' || heapApplied(DEFAULT_HEAP_SETTINGS)) return;
  runSelfAgainWith(heapFlags(DEFAULT_HEAP_SETTINGS), restartEnv(process.env));
}
