/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by subsystem and the top
 * functions by self time (and, with --inclusive, by inclusive time).
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof bench/decision.ts
 *   node bench/lib/cpuprofile.ts /tmp/prof/<file>.cpuprofile [top=30] [--inclusive] [--busy]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
export interface Profile {
  readonly startTime?: number;
  readonly endTime?: number;
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/**
 * Subsystems in priority order: a sample belongs to the first one that any frame of its stack
 * matches (so the SQLite time under budgets.ts counts as budgets, not as the shared sql.ts).
 */
const CATEGORIES: readonly [string, (f: CallFrame) => boolean][] = [
  ['policy cross-check (sampled cedar-wasm re-evaluation)', (f) => f.url.includes('policy/cross-check')],
  ['profiler itself', (f) => f.url === 'node:inspector'],
  ['cedar (wasm + bindings)', (f) => f.url.includes('cedar_wasm') || f.url.startsWith('wasm://')],
  ['sqlite: budgets', (f) => f.url.includes('store-sqlite/src/budgets')],
  ['sqlite: audit (group commit)', (f) => f.url.includes('store-sqlite/src/audit')],
  ['sqlite: revocations', (f) => f.url.includes('store-sqlite/src/revocations')],
  ['sqlite: other', (f) => f.url.includes('store-sqlite/src/')],
  ['audit checkpointer', (f) => f.url.includes('checkpointer')],
  ['audit chain hashing', (f) => f.url.includes('audit/chain')],
  ['mandate checks', (f) => f.url.includes('core/src/mandate/')],
  ['compiled policy evaluation', (f) => f.url.includes('core/src/policy/compile') || f.url.includes('core/src/policy/engine')],
  ['provenance classification', (f) => f.url.includes('core/src/provenance')],
  ['behaviour detectors', (f) => f.url.includes('core/src/behaviour/')],
  ['audit redaction', (f) => f.url.includes('core/src/audit/redact')],
  ['cedar request building', (f) => f.url.includes('policy/context')],
  ['token verification', (f) => f.url.includes('tokens/') || f.url.includes('/jose/')],
  ['request body checks (duplicate keys, bounds)', (f) => f.functionName === 'findDuplicateKey' || f.functionName === 'checkJsonBounds'],
  ['canonical json', (f) => f.url.includes('core/src/json')],
  ['decide() itself', (f) => f.url.includes('core/src/decide')],
  ['mcp gateway: secret scrubbing', (f) => f.url.includes('gateway/src/secrets')],
  ['zod validation', (f) => f.url.includes('/zod/')],
  ['pino logging', (f) => f.url.includes('/pino') || f.url.includes('/sonic-boom/')],
  ['server: event bus', (f) => f.url.includes('server/src/events')],
  ['server: http routes, auth, body parsing', (f) => f.url.includes('server/src/http/') || f.url.includes('server/src/authzen/')],
  ['server: other', (f) => f.url.includes('server/src/')],
  ['core: other', (f) => f.url.includes('core/src/')],
  ['undici (fetch, the upstream hop)', (f) => f.url.includes('undici')],
  ['@hono/node-server (node:http ⇄ Request/Response)', (f) => f.url.includes('@hono/node-server')],
  ['mcp sdk: streamable http server transport', (f) => f.url.includes('sdk/dist/esm/server/') && f.url.includes('treamableHttp')],
  ['mcp sdk: streamable http client transport', (f) => f.url.includes('sdk/dist/esm/client/streamableHttp')],
  ['mcp sdk: protocol, client, server', (f) => f.url.includes('@modelcontextprotocol/sdk/')],
  ['mcp gateway: other', (f) => f.url.includes('gateway/src/')],
  ['web streams', (f) => f.url.startsWith('node:internal/webstreams')],
  ['fastify', (f) => f.url.includes('/fastify/') || f.url.includes('/find-my-way/') || f.url.includes('/avvio/') || f.url.includes('/light-my-request/') || f.url.includes('/fast-json-stringify/')],
  ['node:http / net / streams', (f) => f.url.startsWith('node:_http') || f.url.startsWith('node:net') || f.url.startsWith('node:internal/streams') || f.url.startsWith('node:internal/http')],
  ['benchmark harness', (f) => f.url.includes('/bench/')],
  ['garbage collector', (f) => f.functionName === '(garbage collector)'],
  ['idle', (f) => f.functionName === '(idle)'],
];

const fnKey = (f: CallFrame) => `${f.functionName || '(anonymous)'}  ${f.url.split('/').slice(-3).join('/')}:${f.lineNumber + 1}`;

export interface SummaryOptions {
  /** also the top functions by inclusive time */
  readonly inclusive?: boolean;
  /** only the samples taken this many µs before the profile's end or fewer (the steady part of a run) */
  readonly lastUs?: number;
  /** …and at least this many µs before it (the shutdown left out) */
  readonly skipLastUs?: number;
  /** percentages of the busy (non-idle) samples */
  readonly busy?: boolean;
}

/** Self time by subsystem and the top functions by self time (and by inclusive time when asked). */
export function summariseProfile(p: Profile, top = 30, o: SummaryOptions | boolean = {}): string {
  const opt: SummaryOptions = typeof o === 'boolean' ? { inclusive: o } : o;
  const inclusive = opt.inclusive === true;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  // sample times, from the start; a window is counted back from the end
  const times: number[] = [];
  let at = p.startTime ?? 0;
  for (const d of p.timeDeltas) times.push((at += d));
  const end = p.endTime ?? at;
  const inWindow = (i: number) => (opt.lastUs === undefined || (times[i] ?? 0) >= end - opt.lastUs) && (opt.skipLastUs === undefined || (times[i] ?? 0) <= end - opt.skipLastUs);
  p.samples.forEach((id, i) => {
    if (inWindow(i)) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  const idleId = p.nodes.find((n) => n.callFrame.functionName === '(idle)')?.id ?? -1;
  const idle = self.get(idleId) ?? 0;
  let sampled = 0;
  for (const t of self.values()) sampled += t;
  if (opt.busy === true) self.delete(idleId);
  const total = opt.busy === true ? sampled - idle : sampled;

  const category = (id: number): string => {
    const stack: CallFrame[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (n) stack.push(n.callFrame);
    }
    for (const [name, test] of CATEGORIES) if (stack.some(test)) return name;
    return 'other (node internals, start-up)';
  };

  const cats = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, t] of self) {
    const f = byId.get(id)?.callFrame;
    if (!f) continue;
    const c = category(id);
    cats.set(c, (cats.get(c) ?? 0) + t);
    const k = fnKey(f);
    fns.set(k, (fns.get(k) ?? 0) + t);
  }
  // inclusive: a sample counts once for every distinct function on its stack
  const incl = new Map<string, number>();
  for (const [id, t] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)?.callFrame;
      if (f) seen.add(fnKey(f));
    }
    for (const k of seen) incl.set(k, (incl.get(k) ?? 0) + t);
  }
  const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)} %`;
  const lines = [`sampled ${(sampled / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms${opt.busy === true ? '; percentages of the busy time' : ''}`, '', 'self time by subsystem:'];
  for (const [k, t] of [...cats].sort((a, b) => b[1] - a[1])) lines.push(`  ${pct(t)}  ${k}`);
  lines.push('', `top ${top} functions by self time:`);
  for (const [k, t] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(t)}  ${k}`);
  if (inclusive) {
    lines.push('', `top ${top} functions by inclusive time:`);
    for (const [k, t] of [...incl].filter(([k]) => !k.startsWith('(root)')).sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(t)}  ${k}`);
  }
  return lines.join('\n');
}

if (import.meta.main) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: node bench/lib/cpuprofile.ts <file.cpuprofile> [top]\n');
    process.exitCode = 2;
  } else {
    process.stdout.write(summariseProfile(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(process.argv.slice(3).find((a) => /^\d+$/.test(a)) ?? 30), { inclusive: process.argv.includes('--inclusive'), busy: process.argv.includes('--busy') }) + '\n');
  }
}
