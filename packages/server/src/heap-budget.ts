/**
 * How large a heap `mandate serve` needs: a base for the process (its code, the policy set, the
 * caches that are not listed here, requests in flight) and room for the garbage between
 * collections, plus the most that each in-memory structure bounded by config may hold, at the
 * costs measured in docs/operations.md (memory). `server.max_heap_mb: auto` is this sum; a number
 * below it is refused, so a heap that cannot hold what the bounds allow fails at start, loudly,
 * not hours later.
 */

/** the least `server.max_heap_mb` accepted, MiB */
export const MIN_MAX_HEAP_MB = 96;
/**
 * The process's own old generation and the garbage between its collections, MiB. Measured with
 * the shipped defaults (bench/soak.ts --tasks, 10k live tasks): ~27 MiB live at rest, ~50 MiB
 * once the tasks started (heap snapshot), ~102 MiB after 1M decisions, 30,000 verified tokens
 * (~30 MiB) included; a 128 MiB limit (base and parts) ended the process after 348k decisions
 * (V8's out-of-memory error). Same-run soaks at 127 MiB spent no more CPU per decision than
 * V8's own (~4 GiB) limit. The 10,000 tasks' cached copies (~10 MiB) are counted below, with the
 * cache's bound, not here; so are the revocation cache, the budget counters and the allowed calls
 * awaiting their outcome: their share of that soak (~21 MiB: 50,000 pending calls at ~310 B,
 * 20,000 tokens' ids at ~150 B, 10,000 tasks' budget counters for two tools at ~450 B) was taken
 * off the 178 MiB measured. The provenance ledger is counted below at its node-wide bound; the
 * soak reports no outcomes, so it held nothing there.
 */
const BASE_MB = 157;
/** behaviour history (docs/operations.md, memory): bytes per remembered call and per task scope */
const TASK_CALL_BYTES = 25;
const TASK_SCOPE_BYTES = 3.1 * 1024;
const AGENT_CALL_BYTES = 20;
/**
 * a verified task token remembered: the SHA-256 of its text as the key (~80 B), its claims
 * and the map's slots: ~400 B when its agent and mandate hash are shared with other tokens
 * (bench/cache-memory.ts), ~550 B when not; counted unshared and rounded up
 */
const VERIFIED_TOKEN_BYTES = 700;
/**
 * a task and an agent held by the state cache, as the SQLite store returns them (a heap
 * measurement of 10,000 each): a task with a two-tool mandate of its own ~1,040 B (~335 B when its
 * mandate is shared with other cached tasks: bench/cache-memory.ts), an agent with a small
 * ceiling ~600 B; counted unshared and rounded up, since mandates and ceilings can be larger
 */
const CACHED_TASK_BYTES = 1100;
const CACHED_AGENT_BYTES = 650;
/** a DPoP proof id remembered against replay (its key text and expiry; an estimate) */
const DPOP_PROOF_BYTES = 150;
/**
 * Measured by `npx node bench/cache-memory.ts` (2026-12-07, Node 24, x64): heap used plus array
 * buffers after two full collections, before and after 100,000 entries read through the real
 * class over a SQLite store with ids from `randomIds`, divided by the entries (median of three
 * rounds; each key's text is charged to its entry, though on a server the jti and the task id
 * are often shared with the token and task caches). Rounded up.
 *
 * a token id's revocation state (cache.revocations): the jti's text and the map's slots, ~108 B
 */
const CACHED_REVOCATION_BYTES = 120;
/** a task × tool counter (~105 B) and, at most one each, a task's total (~113 B): cache.budgets */
const CACHED_BUDGET_BYTES = 230;
/** an allowed call awaiting its outcome (limits.pending_outcomes): its key text, map and ring slots, ~135 B */
const PENDING_OUTCOME_BYTES = 140;
/**
 * a task end remembered for late watchers (cache.task_ends): its record, the task and agent ids,
 * ~293 B; more with a long kill reason (cut at 500 characters)
 */
const TASK_END_BYTES = 400;

/**
 * a character of tool results remembered for provenance (limits.provenance_chars): its normalised
 * text and the values found in it (bench/cache-memory.ts measured ~6.2 B); rounded up
 */
const PROVENANCE_CHAR_BYTES = 6.5;

/** the parts of the config whose bounds hold memory (a subset of MandateConfig) */
export interface HeapBoundsConfig {
  readonly behaviour: { readonly enabled: boolean; readonly history: { readonly per_task: number; readonly max_tasks: number; readonly per_agent: number; readonly max_agents: number } };
  readonly cache: { readonly tasks: number; readonly agents: number; readonly task_ends: number; readonly revocations: number; readonly budgets: number };
  readonly limits: { readonly pending_outcomes: number; readonly provenance_chars: number };
  readonly tokens: { readonly verified_cache_size: number; readonly dpop: { readonly replay_cache_size: number } };
  readonly server: { readonly max_heap_mb: number | 'auto' };
}

export interface HeapBudget {
  /** base and parts, rounded up to a whole MiB */
  readonly totalMb: number;
  readonly parts: readonly { readonly what: string; readonly mb: number }[];
  describe(): string;
}

const MIB = 1024 * 1024;

export function heapBudget(c: HeapBoundsConfig): HeapBudget {
  const h = c.behaviour.history;
  const parts = [
    { what: 'base', mb: BASE_MB },
    { what: `cache.tasks ${c.cache.tasks}`, mb: (c.cache.tasks * CACHED_TASK_BYTES) / MIB },
    { what: `cache.agents ${c.cache.agents}`, mb: (c.cache.agents * CACHED_AGENT_BYTES) / MIB },
    { what: `cache.task_ends ${c.cache.task_ends}`, mb: (c.cache.task_ends * TASK_END_BYTES) / MIB },
    { what: `cache.revocations ${c.cache.revocations}`, mb: (c.cache.revocations * CACHED_REVOCATION_BYTES) / MIB },
    { what: `cache.budgets ${c.cache.budgets}`, mb: (c.cache.budgets * CACHED_BUDGET_BYTES) / MIB },
    { what: `limits.pending_outcomes ${c.limits.pending_outcomes}`, mb: (c.limits.pending_outcomes * PENDING_OUTCOME_BYTES) / MIB },
    { what: `limits.provenance_chars ${c.limits.provenance_chars}`, mb: (c.limits.provenance_chars * PROVENANCE_CHAR_BYTES) / MIB },
    { what: `tokens.verified_cache_size ${c.tokens.verified_cache_size}`, mb: (c.tokens.verified_cache_size * VERIFIED_TOKEN_BYTES) / MIB },
    { what: `tokens.dpop.replay_cache_size ${c.tokens.dpop.replay_cache_size}`, mb: (c.tokens.dpop.replay_cache_size * DPOP_PROOF_BYTES) / MIB },
    ...(c.behaviour.enabled
      ? [
          { what: `behaviour.history per_task ${h.per_task} × max_tasks ${h.max_tasks}`, mb: (h.max_tasks * (h.per_task * TASK_CALL_BYTES + TASK_SCOPE_BYTES)) / MIB },
          { what: `behaviour.history per_agent ${h.per_agent} × max_agents ${h.max_agents}`, mb: (h.max_agents * h.per_agent * AGENT_CALL_BYTES) / MIB },
        ]
      : []),
  ].map((p) => ({ what: p.what, mb: Math.ceil(p.mb) }));
  const totalMb = parts.reduce((s, p) => s + p.mb, 0);
  return { totalMb, parts, describe: () => parts.map((p) => `${p.what}: ${p.mb}`).join(', ') };
}

/** the old generation's limit the config gives `mandate serve`, MiB */
export function maxHeapMb(c: HeapBoundsConfig): number {
  return c.server.max_heap_mb === 'auto' ? heapBudget(c).totalMb : c.server.max_heap_mb;
}
