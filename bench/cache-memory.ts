/**
 * What an entry of the bounded in-memory structures of one node costs: the task cache
 * (`cache.tasks`: tasks of one mandate, which share it, and tasks each with a mandate of its own),
 * the verified task tokens (`tokens.verified_cache_size`),
 * the revocation cache (`cache.revocations`), the budget counters (`cache.budgets`), the allowed calls awaiting
 * their outcome (`limits.pending_outcomes`) and a task's provenance (per character of tool results
 * kept, `limits.provenance_chars_per_task`), each filled through its real class, the caches over
 * a SQLite store, with ids from the server's own generator (`randomIds`: a prefix, 10 sortable
 * time characters and 22 random ones, as jtis, task ids and call ids are made).
 *
 *   node bench/cache-memory.ts [--quick] [--json-only] [--out DIR] [--publish]
 *
 * Method: heap used plus array buffers after two full collections (--expose-gc), before and after
 * a fill of N entries in a fresh structure, divided by N; nothing else keeps the ids alive, so an
 * entry is charged its key's text too (on a server the jti and the task id may be shared with the
 * token and task caches: the figures are the upper end). Budgets: N tasks with one tool, then N
 * with two: the second tool's counter is their difference, the per-task total the rest. Rounds
 * are repeated and the median reported.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CachedBudgets, CachedRevocations, CachedTasks, KeyRing, PendingOutcomes, ProvenanceLedger, TaskTokens, mandateHash, type JsonValue, type KeyStore, type Mandate, type SigningKey, type Task } from '@mandate/core';
import { randomIds, sha256Hasher } from '@mandate/server';
import { openSqliteStore, type SqliteStore } from '@mandate/store-sqlite';
import { TaskEnds } from '../packages/server/src/task-ends.ts';
import { exposedGc } from './lib/gc.ts';
import { type BenchResult, emitResult, newResult, parseBenchArgs, printer, startInfo } from './lib/report.ts';

// a full collection before each reading
const gc = exposedGc();

const NOW = Date.UTC(2026, 11, 7, 2, 0, 0);
/** tool names as the policy catalogue holds them (one string each, shared by every entry) */
const TOOLS = ['helpdesk.search_tickets', 'helpdesk.get_ticket', 'kb.search', 'mail.send'] as const;

function heap(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** bytes held by `n` token ids read once each (a third of them revoked, as the store answers) */
async function fillRevocations(store: SqliteStore, n: number): Promise<number> {
  // as long as a generated id, and made again for each read (the cache alone keeps it)
  const revoked = (i: number) => `jti_${i}`.padEnd(36, '.');
  for (let i = 0; i < n; i += 3) await store.revocations.revokeToken(revoked(i), 'task', NOW + 3_600_000, 'bench', NOW - 1);
  const before = heap();
  const cache = new CachedRevocations(store.revocations, n + 1);
  for (let i = 0; i < n; i++) await cache.isTokenRevoked(i % 3 === 0 ? revoked(i) : randomIds.next('jti'), NOW);
  const after = heap();
  if (!(await cache.isTokenRevoked(revoked(0), NOW))) throw new Error('a revoked token read as valid');
  return after - before;
}

/** bytes held by the counters of `tasks` tasks that each used `tools` tools */
async function fillBudgets(store: SqliteStore, tasks: number, tools: number): Promise<number> {
  const before = heap();
  const cache = new CachedBudgets(store.budgets, tasks * tools + 1);
  let last = '';
  for (let i = 0; i < tasks; i++) {
    last = randomIds.next('tsk');
    for (let t = 0; t < tools; t++) await cache.usage(last, TOOLS[t] as string);
  }
  const after = heap();
  if ((await cache.usage(last, TOOLS[0])).calls !== 0) throw new Error('a task that made no call counted one');
  return after - before;
}

const AGENT = 'spiffe://acme.test/agents/support';

/** `n` active tasks of one agent in the store: one mandate for all, or each its own (its purpose names it) */
async function storeTasks(store: SqliteStore, n: number, own: boolean): Promise<string[]> {
  if (!(await store.agents.getAgent(AGENT))) await store.agents.createAgent({ id: AGENT, owner: 'bench', type: 'support', status: 'active', ceiling: {}, createdAt: NOW, updatedAt: NOW });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const mandate: Mandate = {
      purpose: own ? `answer support ticket ${i} from the helpdesk` : 'answer support tickets from the helpdesk',
      environment: 'prod',
      data_classes: ['internal'],
      budgets: { calls: 1000 },
      tools: [{ name: 'helpdesk.search_tickets' }, { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } }],
    };
    const id = randomIds.next('task');
    await store.tasks.createTask({ id, agentId: AGENT, mandate, mandateHash: mandateHash(mandate, sha256Hasher), state: 'active', txn: randomIds.next('txn'), parentId: undefined, depth: 0, createdAt: NOW, expiresAt: NOW + 3_600_000, maxExpiresAt: NOW + 7_200_000, endedAt: undefined, endReason: undefined });
    ids.push(id);
  }
  return ids;
}

/** bytes the task cache holds per task, each read once from the store (as a server reads them after a start) */
async function fillTasks(store: SqliteStore, ids: readonly string[]): Promise<number> {
  const before = heap();
  const cache = new CachedTasks(store.tasks, ids.length + 1);
  for (const id of ids) if (!(await cache.getTask(id))) throw new Error(`task ${id} not found`);
  const after = heap();
  return (after - before) / ids.length;
}

/** signing keys in memory: the bench measures the token cache, not the store's key encryption */
class MemoryKeys implements KeyStore {
  private readonly keys: SigningKey[] = [];
  listKeys(purpose: SigningKey['purpose']): Promise<SigningKey[]> {
    return Promise.resolve(this.keys.filter((k) => k.purpose === purpose));
  }
  addKey(key: SigningKey): Promise<void> {
    this.keys.push(key);
    return Promise.resolve();
  }
  retireKey(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * bytes the verified-token cache holds per token: `n` tokens of one agent and one mandate, each
 * verified once. Measured from before the tokens were minted to after their texts were dropped,
 * so only what the cache keeps is counted (the texts' own memory moves as a verify flattens them).
 */
async function fillTokens(n: number): Promise<number> {
  const clock = { now: () => NOW };
  const ring = await KeyRing.open(new MemoryKeys(), 'task-token', clock, randomIds, 3_600_000);
  const tokens = new TaskTokens(ring, { issuer: 'mandate', audience: 'mandate', clock, ids: randomIds, cacheSize: n + 1, hasher: sha256Hasher });
  const hash = 'sha256:' + sha256Hasher.sha256Hex('one mandate');
  const before = heap();
  const texts: string[] = [];
  for (let i = 0; i < n; i++) texts.push((await tokens.mint({ agentId: AGENT, taskId: randomIds.next('task'), mandateHash: hash, txn: randomIds.next('txn'), expiresAt: NOW + 300_000 })).token);
  for (const t of texts) await tokens.verify(t);
  texts.length = 0;
  const after = heap();
  if (tokens.cached !== n) throw new Error(`expected ${n} verified tokens, found ${tokens.cached}`);
  return (after - before) / n;
}

/** bytes held by `n` allowed calls awaiting their outcome, ten calls a task */
function fillPending(n: number): number {
  const taskIds = Array.from({ length: Math.ceil(n / 10) }, () => randomIds.next('tsk'));
  const before = heap();
  const pending = new PendingOutcomes<unknown>(n);
  for (let i = 0; i < n; i++) pending.remember(taskIds[i % taskIds.length] as string, randomIds.next('call'), { tool: TOOLS[i % TOOLS.length] as string, namedSource: i % 2 === 0, shared: undefined });
  const after = heap();
  if (pending.size !== n) throw new Error(`expected ${n} pending calls, found ${pending.size}`);
  return after - before;
}

/** bytes held by `n` task ends heard (a kill with an operator's reason), the tasks as the engine holds them */
function fillTaskEnds(n: number): number {
  const before = heap();
  const ends = new TaskEnds(() => Promise.resolve(undefined), () => undefined, n);
  for (let i = 0; i < n; i++) {
    const task = { id: randomIds.next('tsk'), agentId: `spiffe://acme.test/agents/support-${i % 100}`, state: 'killed', endReason: 'operator kill' } as unknown as Task;
    ends.ended(task, 'runaway job: stopped by the on-call operator');
  }
  const after = heap();
  if (ends.watched !== 0) throw new Error('nothing watches');
  return (after - before) / n;
}

const WORDS = ['invoice', 'customer', 'refund', 'shipping', 'ticket', 'escalate', 'priority', 'account', 'password', 'reset', 'order', 'delivery', 'support', 'manager', 'review'];

/** a helpdesk search's result: 40 tickets, each with an id, an address, a link and a subject (~8,000 characters) */
function ticketList(t: number, i: number): JsonValue {
  return {
    items: Array.from({ length: 40 }, (_, k) => ({
      id: `T-${t}-${i}-${k}`,
      email: `user${t}_${i}_${k}@example${k % 7}.com`,
      url: `https://portal.example.com/tickets/${t}/${i}/${k}`,
      subject: `${Array.from({ length: 12 }, (_, j) => WORDS[(t + i + k + j) % WORDS.length]).join(' ')} ref ${t * 1000 + i * 40 + k}`,
    })),
  };
}

/** bytes a task's provenance holds per character of tool results kept (half trusted, half untrusted) */
function fillProvenance(tasks: number, results: number): number {
  const before = heap();
  const ledger = new ProvenanceLedger();
  let chars = 0;
  for (let t = 0; t < tasks; t++) {
    const id = randomIds.next('tsk');
    for (let i = 0; i < results; i++) chars += ledger.record(id, i % 2 === 0 ? 'trusted' : 'untrusted', ticketList(t, i)).chars;
  }
  const after = heap();
  if (ledger.size !== tasks) throw new Error(`expected ${tasks} tasks, found ${ledger.size}`);
  return (after - before) / chars;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export async function runCacheMemoryBenchmark(argv: readonly string[]): Promise<BenchResult> {
  const args = parseBenchArgs(argv);
  const say = printer(args);
  const start = startInfo();
  const n = args.quick ? 10_000 : 100_000;
  const rounds = args.quick ? 1 : 3;
  say(`cache memory: ${n} entries a fill, ${rounds} round(s); load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'mandate-cache-memory-'));
  const revocation: number[] = [];
  const total: number[] = [];
  const perTool: number[] = [];
  const pending: number[] = [];
  const provenance: number[] = [];
  const taskEnd: number[] = [];
  const taskShared: number[] = [];
  const taskOwn: number[] = [];
  const token: number[] = [];
  try {
    // a small fill of each first, so that the code it compiles is not charged to the entries
    const warm = openSqliteStore({ path: join(dir, 'warm.db'), hasher: sha256Hasher, durability: 'normal' });
    try {
      await fillRevocations(warm, 1000);
      await fillBudgets(warm, 1000, 1);
      await fillBudgets(warm, 1000, 2);
      fillPending(1000);
      fillProvenance(2, 2);
      fillTaskEnds(1000);
      await fillTasks(warm, await storeTasks(warm, 1000, true));
      await fillTokens(1000);
    } finally {
      await warm.close();
    }
    for (let r = 0; r < rounds; r++) {
      const store = openSqliteStore({ path: join(dir, `r${r}.db`), hasher: sha256Hasher, durability: 'normal' });
      try {
        const rev = (await fillRevocations(store, n)) / n;
        const one = (await fillBudgets(store, n, 1)) / n;
        const two = (await fillBudgets(store, n, 2)) / n;
        const pend = fillPending(n) / n;
        const prov = fillProvenance(args.quick ? 10 : 50, 10);
        const end = fillTaskEnds(n);
        const tasksN = args.quick ? 2_000 : 10_000;
        const shared = await fillTasks(store, await storeTasks(store, tasksN, false));
        const own = await fillTasks(store, await storeTasks(store, tasksN, true));
        taskShared.push(shared);
        taskOwn.push(own);
        const tok = await fillTokens(tasksN);
        token.push(tok);
        revocation.push(rev);
        perTool.push(two - one);
        total.push(one - (two - one));
        pending.push(pend);
        provenance.push(prov);
        taskEnd.push(end);
        say(`  round ${r + 1}: ${rev.toFixed(0)} B a token id; ${(one - (two - one)).toFixed(0)} B a task's total and ${(two - one).toFixed(0)} B a task × tool counter; ${pend.toFixed(0)} B an allowed call awaiting its outcome; ${prov.toFixed(2)} B a character of tool results a task's provenance keeps; ${end.toFixed(0)} B a task end; ${shared.toFixed(0)} B a cached task of a shared mandate, ${own.toFixed(0)} B with a mandate of its own; ${tok.toFixed(0)} B a verified task token`);
      } finally {
        await store.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const result: BenchResult = {
    ...newResult({ name: 'cache-memory', title: 'bounded caches of one node: memory per entry', mode: args.quick ? 'quick' : 'full', params: { entries: n, rounds, measure: 'heapUsed + arrayBuffers after gc', loadavg_end: loadavg().map((l) => Math.round(l * 100) / 100) } }, start),
    figures: {},
    derived: {
      'bytes per token id (cache.revocations)': median(revocation),
      'bytes per task total (cache.budgets)': median(total),
      'bytes per task × tool counter (cache.budgets)': median(perTool),
      'bytes per allowed call awaiting its outcome (limits.pending_outcomes)': median(pending),
      'bytes per character of tool results kept for provenance (limits.provenance_chars_per_task)': median(provenance),
      'bytes per task end remembered (cache.task_ends)': median(taskEnd),
      'bytes per cached task, one mandate for all (cache.tasks)': median(taskShared),
      'bytes per cached task, a mandate of its own (cache.tasks)': median(taskOwn),
      'bytes per verified task token (tokens.verified_cache_size)': median(token),
    },
    notes: [
      'each fill in a fresh structure against the heap before it; keys are fresh ids, charged to the entry',
      'budgets: one tool a task, then two; the second fill less the first is a task × tool counter',
      'verified tokens: 10,000 of one agent and one mandate, each verified once; the claims and the key (the SHA-256 of the text), not the text',
      'tasks: 10,000 of one agent with a two-tool mandate, read once each from the store through a fresh cache; the task id is charged to the entry',
      "provenance: tasks × 10 results of a 40-ticket list (~8,000 characters each), half trusted, half untrusted; the text kept and the values found in it",
    ],
  };
  return emitResult(result, args, say);
}

if (import.meta.main) await runCacheMemoryBenchmark(process.argv.slice(2));
