/**
 * server.max_heap_mb: auto sizes the heap for what the config's bounds allow; a number below
 * that, or outside its bounds, is refused at load; and the flags that apply it are recognised
 * on a process's command line (the last of each wins, as in V8).
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_HEAP_SETTINGS, heapApplied, heapBudget, heapFlags, maxHeapMb, parseConfig, restartEnv } from '@mandate/server';

function refusal(input: unknown): string {
  try {
    parseConfig(input);
  } catch (e) {
    expect((e as { code?: string }).code).toBe('CONFIG_INVALID');
    return (e as Error).message;
  }
  throw new Error('the config was accepted');
}

describe('server.max_heap_mb', () => {
  it('is auto by default, and auto at the defaults is the limit the launcher starts serve with', () => {
    const c = parseConfig({});
    expect(c.server.max_heap_mb).toBe('auto');
    expect(maxHeapMb(c)).toBe(DEFAULT_HEAP_SETTINGS.maxHeapMb);
  });

  it('grows auto by the behaviour history the config enables', () => {
    const off = maxHeapMb(parseConfig({}));
    const on = parseConfig({ behaviour: { enabled: true } });
    // 20,000 tasks × (256 calls × 25 B + 3.1 KB) and 10,000 agents × 256 calls × 20 B
    expect(maxHeapMb(on) - off).toBe(Math.ceil((20_000 * (256 * 25 + 3.1 * 1024)) / 2 ** 20) + Math.ceil((10_000 * 256 * 20) / 2 ** 20));
    expect(maxHeapMb(parseConfig({ behaviour: { enabled: true, history: { per_task: 32, max_tasks: 1000 } } }))).toBeLessThan(maxHeapMb(on));
  });

  it('counts the state cache: a larger cache of tasks or agents needs a larger heap, and a heap too small for it is refused', () => {
    const base = maxHeapMb(parseConfig({}));
    // 80,000 more tasks at ~1.1 KB and 90,000 more agents at ~650 B
    expect(maxHeapMb(parseConfig({ cache: { tasks: 100_000 } })) - base).toBe(Math.ceil((100_000 * 1100) / 2 ** 20) - Math.ceil((20_000 * 1100) / 2 ** 20));
    expect(maxHeapMb(parseConfig({ cache: { agents: 100_000 } })) - base).toBe(Math.ceil((100_000 * 650) / 2 ** 20) - Math.ceil((10_000 * 650) / 2 ** 20));
    expect(refusal({ server: { max_heap_mb: 300 }, cache: { tasks: 1_000_000 } })).toContain('cache.tasks 1000000');
    expect(refusal({ cache: { tasks: 99 } })).toContain('cache.tasks');
    expect(refusal({ cache: { agents: 'many' } })).toContain('cache.agents');
  });

  it('counts the revocation cache and the budget counters: larger bounds need a larger heap, and a heap too small for them is refused', () => {
    const base = maxHeapMb(parseConfig({}));
    // 960,000 more token ids at ~120 B; 960,000 more task × tool counters with their totals at ~230 B
    expect(maxHeapMb(parseConfig({ cache: { revocations: 1_000_000 } })) - base).toBe(Math.ceil((1_000_000 * 120) / 2 ** 20) - Math.ceil((40_000 * 120) / 2 ** 20));
    expect(maxHeapMb(parseConfig({ cache: { budgets: 1_000_000 } })) - base).toBe(Math.ceil((1_000_000 * 230) / 2 ** 20) - Math.ceil((40_000 * 230) / 2 ** 20));
    expect(maxHeapMb(parseConfig({ cache: { revocations: 100, budgets: 100 } }))).toBeLessThan(base);
    expect(refusal({ server: { max_heap_mb: 300 }, cache: { revocations: 2_000_000 } })).toContain('cache.revocations 2000000');
    expect(refusal({ server: { max_heap_mb: 300 }, cache: { budgets: 1_000_000 } })).toContain('cache.budgets 1000000');
    expect(refusal({ cache: { revocations: 99 } })).toContain('cache.revocations');
    expect(refusal({ cache: { budgets: 10_000_001 } })).toContain('cache.budgets');
    expect(refusal({ cache: { budgets: 1.5 } })).toContain('cache.budgets');
  });

  it('counts the task ends remembered, and refuses a heap too small for them', () => {
    const base = maxHeapMb(parseConfig({}));
    // 990,000 more ends at ~400 B
    expect(maxHeapMb(parseConfig({ cache: { task_ends: 1_000_000 } })) - base).toBe(Math.ceil((1_000_000 * 400) / 2 ** 20) - Math.ceil((10_000 * 400) / 2 ** 20));
    expect(refusal({ server: { max_heap_mb: 300 }, cache: { task_ends: 1_000_000 } })).toContain('cache.task_ends 1000000');
    expect(refusal({ cache: { task_ends: 99 } })).toContain('cache.task_ends');
  });

  it('counts the allowed calls awaiting their outcome, and refuses a heap too small for them', () => {
    const base = maxHeapMb(parseConfig({}));
    // 950,000 more pending calls at ~140 B
    expect(maxHeapMb(parseConfig({ limits: { pending_outcomes: 1_000_000 } })) - base).toBe(Math.ceil((1_000_000 * 140) / 2 ** 20) - Math.ceil((50_000 * 140) / 2 ** 20));
    expect(refusal({ server: { max_heap_mb: 300 }, limits: { pending_outcomes: 2_000_000 } })).toContain('limits.pending_outcomes 2000000');
  });

  it('at the defaults, sizes the caches for the task cache and keeps the launcher\'s limit', () => {
    const c = parseConfig({});
    expect(c.cache.revocations).toBe(2 * c.cache.tasks);
    expect(c.cache.budgets).toBe(2 * c.cache.tasks);
    expect(heapBudget(c).describe()).toContain('cache.task_ends 10000: 4, cache.revocations 40000: 5, cache.budgets 40000: 9, limits.pending_outcomes 50000: 7');
  });

  it('accepts a number that holds what the bounds allow', () => {
    const need = heapBudget(parseConfig({})).totalMb;
    expect(maxHeapMb(parseConfig({ server: { max_heap_mb: need } }))).toBe(need);
    expect(maxHeapMb(parseConfig({ server: { max_heap_mb: 4096 } }))).toBe(4096);
  });

  it('refuses a number below what the bounds allow, naming the bounds', () => {
    const message = refusal({ server: { max_heap_mb: 300 }, behaviour: { enabled: true } });
    expect(message).toContain('server.max_heap_mb');
    expect(message).toContain('behaviour.history per_task 256 × max_tasks 20000');
    expect(refusal({ server: { max_heap_mb: 200 }, tokens: { dpop: { replay_cache_size: 2_000_000 } } })).toContain('tokens.dpop.replay_cache_size 2000000');
  });

  it.each([[95], [65_537], [128.5], ['256'], ['big'], [null]])('refuses max_heap_mb %j', (value) => {
    expect(refusal({ server: { max_heap_mb: value } })).toContain('max_heap_mb');
  });
});

describe('the environment serve starts again with', () => {
  it('adds glibc malloc settings (two arenas, 128 KiB trim and mmap thresholds) and keeps the rest', () => {
    expect(restartEnv({ PATH: '/bin', MANDATE_LOG_LEVEL: 'warn' })).toEqual({ PATH: '/bin', MANDATE_LOG_LEVEL: 'warn', MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '131072', MALLOC_MMAP_THRESHOLD_: '131072' });
  });

  it('leaves a malloc setting the operator chose as it is', () => {
    const env = restartEnv({ MALLOC_ARENA_MAX: '8', MALLOC_MMAP_THRESHOLD_: '65536' });
    expect(env['MALLOC_ARENA_MAX']).toBe('8');
    expect(env['MALLOC_MMAP_THRESHOLD_']).toBe('65536');
    expect(env['MALLOC_TRIM_THRESHOLD_']).toBe('131072');
  });
});

describe('the heap flags', () => {
  it('caps the young generation unless it may grow, and scavenges on one thread unless told otherwise', () => {
    expect(heapFlags({ maxHeapMb: 192, youngGenerationGrowth: false, parallelScavenge: false })).toEqual(['--max-old-space-size=192', '--max-semi-space-size=8', '--no-parallel-scavenge']);
    expect(heapFlags({ maxHeapMb: 300, youngGenerationGrowth: true, parallelScavenge: false })).toEqual(['--max-old-space-size=300', '--no-parallel-scavenge']);
    expect(heapFlags({ maxHeapMb: 300, youngGenerationGrowth: true, parallelScavenge: true })).toEqual(['--max-old-space-size=300']);
    expect(heapFlags(DEFAULT_HEAP_SETTINGS)).toContain('--no-parallel-scavenge');
  });

  it('tells a command line that applies them from one that does not (the last flag wins)', () => {
    const s = { maxHeapMb: 192, youngGenerationGrowth: false, parallelScavenge: false };
    const on = { maxHeapMb: 400, youngGenerationGrowth: true, parallelScavenge: true };
    expect(heapApplied(s, [])).toBe(false);
    expect(heapApplied(s, ['--max-old-space-size=192'])).toBe(false);
    expect(heapApplied(s, ['--max-old-space-size=192', '--max-semi-space-size=8'])).toBe(false);
    expect(heapApplied(s, ['--max-old-space-size=192', '--max-semi-space-size=8', '--no-parallel-scavenge'])).toBe(true);
    expect(heapApplied(s, ['--max-old-space-size=192', '--max-semi-space-size=8', '--no-parallel-scavenge', '--max-old-space-size=400'])).toBe(false);
    expect(heapApplied(s, ['--max-old-space-size=192', '--max-semi-space-size=8', '--no-parallel-scavenge', '--parallel-scavenge'])).toBe(false);
    expect(heapApplied(on, ['--max-old-space-size=192', '--max-semi-space-size=8', '--max-old-space-size=400'])).toBe(false);
    expect(heapApplied(on, ['--import', 'x', '--max-old-space-size=400'])).toBe(true);
    expect(heapApplied(on, ['--import', 'x', '--max-old-space-size=400', '--parallel-scavenge'])).toBe(true);
    expect(heapApplied(on, ['--import', 'x', '--max-old-space-size=400', '--no-parallel-scavenge'])).toBe(false);
    // every setting's own flags are what it is checked against
    for (const t of [s, on, DEFAULT_HEAP_SETTINGS, { maxHeapMb: 300, youngGenerationGrowth: true, parallelScavenge: false }]) expect(heapApplied(t, heapFlags(t))).toBe(true);
  });
});
