/**
 * What the behaviour detectors' memory costs: live tasks that each made some calls, judged by the
 * real monitor (`BehaviourMonitor.assess`, shipped defaults otherwise), and the heap (plus array
 * buffers) they hold after a full GC. Two fills of the same tasks, few calls and many, give the
 * cost of one remembered call (their difference) and of a task's scope besides its calls; a third
 * fill at the defaults, with agent scopes on (ten tasks per agent), gives the whole.
 *
 *   node bench/behaviour-memory.ts [--quick] [--json-only] [--out DIR] [--publish]
 *
 * Calls carry what the engine gives the monitor: a `sha256:<hex>` arguments hash, a fresh call id,
 * a resource, tools from the catalogue. Each fill runs in a fresh monitor, measured against the
 * heap before it; rounds are repeated and the median reported.
 */
import { createHash } from 'node:crypto';
import { loadavg } from 'node:os';
import { BehaviourMonitor, behaviourCoreConfigSchema, NO_PROVENANCE, type BehaviourCoreConfigInput, type Task, type ToolInfo } from '@mandate/core';
import { exposedGc } from './lib/gc.ts';
import { type BenchResult, emitResult, newResult, parseBenchArgs, printer, startInfo } from './lib/report.ts';

// a full collection before each reading
const gc = exposedGc();

const T0 = Date.UTC(2026, 10, 2, 10, 0, 0);
const TOOLS: ToolInfo[] = [
  { name: 'helpdesk.search_tickets', category: 'read', risk: 'low', dataClasses: ['internal'], outputTrust: 'trusted' },
  { name: 'helpdesk.get_ticket', category: 'read', risk: 'medium', dataClasses: ['internal', 'customer-pii'], outputTrust: 'trusted' },
  { name: 'helpdesk.draft_reply', category: 'write', risk: 'medium', dataClasses: ['internal'], outputTrust: 'trusted' },
  { name: 'kb.search', category: 'read', risk: 'low', dataClasses: ['internal'], outputTrust: 'trusted' },
  { name: 'mail.send', category: 'external_sink', risk: 'high', dataClasses: ['internal'], outputTrust: 'trusted' },
];

function task(i: number, agents: number): Task {
  return {
    id: `tsk_${i.toString(36).padStart(8, '0')}${'x'.repeat(16)}`,
    agentId: `spiffe://acme.test/agents/a${i % agents}`,
    mandate: { purpose: 'Triage new support tickets, draft replies and mail the summaries.', environment: 'prod', tools: [{ name: 'helpdesk.*' }, { name: 'kb.search' }, { name: 'mail.send' }], data_classes: [], budgets: { calls: 1000 } },
    mandateHash: 'h',
    state: 'active',
    txn: 'txn',
    parentId: undefined,
    depth: 0,
    createdAt: T0,
    expiresAt: T0 + 86_400_000,
    maxExpiresAt: T0 + 86_400_000,
    endedAt: undefined,
    endReason: undefined,
  };
}

function heap(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** bytes the monitor holds after `tasks` tasks made `calls` calls each (interleaved over tasks, as a busy server sees them) */
function fill(tasks: number, calls: number, agentScopes: boolean): number {
  const scope = { task: true, agent: agentScopes };
  const cfg: BehaviourCoreConfigInput = { detectors: { rate: { scope }, retry: { scope }, chains: { scope } } };
  const ts = Array.from({ length: tasks }, (_, i) => task(i, Math.max(1, tasks / 10)));
  const before = heap();
  let n = 0;
  const m = new BehaviourMonitor({ clock: { now: () => T0 }, ids: { next: (p) => `${p}_${++n}` }, config: behaviourCoreConfigSchema.parse(cfg), store: { addRestrictions: async () => undefined, listRestrictions: async () => [] } });
  for (let c = 0; c < calls; c++) {
    for (let i = 0; i < tasks; i++) {
      n += 1;
      const tool = TOOLS[(c + i) % TOOLS.length] as ToolInfo;
      const args = { ticket: `T-${n}`, limit: 10 };
      m.assess({
        task: ts[i] as Task,
        agentType: 'support',
        tool,
        resource: `ticket:T-${n}`,
        args,
        provenance: NO_PROVENANCE,
        callId: `call_${n.toString(36).padStart(10, '0')}${'y'.repeat(14)}`,
        argsHash: 'sha256:' + createHash('sha256').update(JSON.stringify(args)).digest('hex'),
        // 10 s between a task's calls: no rate signal, as on a steady server
        now: T0 + c * 10_000 + i,
        policy: { effect: 'allow', reasons: [] },
      });
    }
  }
  const after = heap();
  if (m.history.taskCount !== tasks) throw new Error(`expected ${tasks} tasks remembered, found ${m.history.taskCount}`);
  return after - before;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export function runBehaviourMemoryBenchmark(argv: readonly string[]): BenchResult {
  const args = parseBenchArgs(argv);
  const say = printer(args);
  const start = startInfo();
  const tasks = args.quick ? 1_000 : 10_000;
  const few = 10;
  const many = 100;
  const rounds = args.quick ? 1 : 3;
  say(`behaviour memory: ${tasks} live tasks × ${few} and × ${many} calls, ${rounds} round(s); load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const perCall: number[] = [];
  const perTask: number[] = [];
  const whole: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const a = fill(tasks, few, false);
    const b = fill(tasks, many, false);
    const call = (b - a) / (tasks * (many - few));
    const scope = a / tasks - few * call;
    const all = fill(tasks, many, true);
    perCall.push(call);
    perTask.push(scope);
    whole.push(all);
    say(`  round ${r + 1}: ${call.toFixed(1)} B a remembered call, ${(scope / 1024).toFixed(2)} KB a task scope besides its calls; defaults with agent scopes: ${(all / 1e6).toFixed(1)} MB for ${tasks} tasks × ${many} calls`);
  }
  const result: BenchResult = {
    ...newResult({ name: 'behaviour-memory', title: 'behaviour detectors: memory per remembered call and per task', mode: args.quick ? 'quick' : 'full', params: { tasks, calls_few: few, calls_many: many, rounds, agents: tasks / 10, measure: 'heapUsed + arrayBuffers after gc', loadavg_end: loadavg().map((l) => Math.round(l * 100) / 100) } }, start),
    figures: {},
    derived: {
      'bytes per remembered call': median(perCall),
      'bytes per task scope besides its calls': median(perTask),
      [`MB held, ${tasks} tasks × ${many} calls, defaults (agent scopes on)`]: median(whole) / 1e6,
    },
    notes: ['per call: (fill of 100 calls − fill of 10 calls) / (tasks × 90), agent scopes off; per task: the 10-call fill less its calls', 'the whole: shipped defaults, agent scopes on, 10 tasks per agent (each agent remembers its last 256 calls)'],
  };
  return emitResult(result, args, say);
}

if (import.meta.main) runBehaviourMemoryBenchmark(process.argv.slice(2));
