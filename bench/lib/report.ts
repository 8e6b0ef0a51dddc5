/**
 * Benchmark results: one JSON file per benchmark in bench/results/<name>.json (machine, Node,
 * commit, time, every figure with its percentiles and run count), and a plain-text table.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gitInfo, machineInfo, REPO_ROOT, summarize, type MachineInfo, type Summary } from './stats.ts';

export const DEFAULT_RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');

export interface Figure extends Summary {
  readonly label: string;
  /** unit of p50/p99/min/max/mean */
  readonly unit: 'ms';
  /** calls in flight at once while measured */
  readonly concurrency: number;
  /** operations per second */
  readonly opsPerSec: number;
  /** how opsPerSec was obtained: timed calls / wall time, or 1 / mean latency (synchronous code) */
  readonly opsBasis: 'wall' | 'inverse-mean';
  /** wall time of the timed part, ms */
  readonly elapsedMs: number;
}

export interface Target {
  readonly description: string;
  readonly metric: string;
  readonly required: number;
  readonly actual: number;
  readonly met: boolean;
  /** how actual is compared with required (default '>=': more is better) */
  readonly comparison?: '>=' | '<=' | undefined;
}

export interface BenchResult {
  readonly name: string;
  readonly title: string;
  readonly timestamp: string;
  readonly machine: MachineInfo;
  readonly node: string;
  readonly commit: string | null;
  readonly dirty: boolean | null;
  readonly mode: 'full' | 'quick';
  readonly params: Record<string, unknown>;
  readonly figures: Record<string, Figure>;
  /** derived numbers (ratios and the like), by name */
  readonly derived: Record<string, number>;
  readonly target?: Target | undefined;
  readonly notes?: readonly string[] | undefined;
}

export function figure(
  label: string,
  samples: readonly number[],
  o: { concurrency: number; elapsedMs: number; opsBasis: Figure['opsBasis'] },
): Figure {
  const s = summarize(samples);
  const opsPerSec = o.opsBasis === 'wall' ? (s.runs / o.elapsedMs) * 1000 : 1000 / s.mean;
  return { label, unit: 'ms', concurrency: o.concurrency, ...s, opsPerSec, opsBasis: o.opsBasis, elapsedMs: o.elapsedMs };
}

/** Machine facts, load and time, captured when a benchmark starts (before it loads the machine). */
export interface StartInfo {
  readonly timestamp: string;
  readonly machine: MachineInfo;
}

export function startInfo(): StartInfo {
  return { timestamp: new Date().toISOString(), machine: machineInfo() };
}

export function newResult(init: Pick<BenchResult, 'name' | 'title' | 'mode' | 'params'>, start: StartInfo = startInfo()): Omit<BenchResult, 'figures' | 'derived'> {
  const git = gitInfo();
  return { ...init, timestamp: start.timestamp, machine: start.machine, node: start.machine.node, commit: git.commit, dirty: git.dirty };
}

/** A file-name-safe description of the machine: cores and CPU model, e.g. `2cpu-intel-xeon-platinum-8375c`. */
export function machineSlug(m: MachineInfo): string {
  const model = m.cpu
    .toLowerCase()
    .replace(/\((r|tm)\)|cpu|@.*$|processor/g, ' ')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48);
  return `${m.cores}cpu-${model || 'unknown'}`;
}

/** bench/results/<date>-<machine>.json: the published figures of one day on one machine. */
export function publishedFile(result: BenchResult, dir: string = DEFAULT_RESULTS_DIR): string {
  return join(dir, `${result.timestamp.slice(0, 10)}-${machineSlug(result.machine)}.json`);
}

export interface Published {
  readonly machine: MachineInfo & { readonly slug: string };
  /** each benchmark's last published result that day on that machine */
  readonly results: Record<string, BenchResult>;
}

/**
 * Adds `result` to bench/results/<date>-<machine>.json (kept in git: the numbers docs/benchmarks.md
 * quotes can be checked there), replacing that benchmark's earlier result of the same day.
 */
export function publishResult(result: BenchResult, dir: string = DEFAULT_RESULTS_DIR): string {
  mkdirSync(dir, { recursive: true });
  const file = publishedFile(result, dir);
  const prev: Published | undefined = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Published) : undefined;
  const out: Published = { machine: { ...result.machine, slug: machineSlug(result.machine) }, results: { ...prev?.results, [result.name]: result } };
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  return file;
}

export function writeResult(result: BenchResult, dir: string = DEFAULT_RESULTS_DIR): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${result.name}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  return file;
}

/**
 * Writes bench/results/<name>.json and reports: the JSON line alone with --json-only (what
 * bench/run.ts reads), the table otherwise.
 */
export function emitResult(result: BenchResult, args: BenchArgs, say: (line: string) => void): BenchResult {
  const file = writeResult(result, args.outDir);
  const published = args.publish ? publishResult(result, args.outDir) : undefined;
  if (args.jsonOnly) process.stdout.write(JSON.stringify(result) + '\n');
  else say(`\n${formatResult(result)}\n\nwrote ${file}${published === undefined ? '' : ` and ${published}`}`);
  return result;
}

/** Progress lines: stdout normally, stderr under --json-only (stdout then carries the result line alone). */
export function printer(args: Pick<BenchArgs, 'jsonOnly'>): (line: string) => void {
  return (line) => void (args.jsonOnly ? process.stderr : process.stdout).write(line + '\n');
}

export interface BenchArgs {
  readonly quick: boolean;
  readonly jsonOnly: boolean;
  readonly outDir: string;
  /** also add the result to bench/results/<date>-<machine>.json (the committed record) */
  readonly publish: boolean;
}

export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  let outDir = DEFAULT_RESULTS_DIR;
  const i = argv.indexOf('--out');
  if (i !== -1) {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error('--out needs a folder');
    outDir = v;
  }
  const known = new Set(['--quick', '--json-only', '--out', '--publish']);
  for (const a of argv) if (a.startsWith('--') && !known.has(a)) throw new Error(`unknown option ${a} (known: ${[...known].join(', ')})`);
  if (argv.includes('--publish') && argv.includes('--quick')) throw new Error('--publish records full runs only (drop --quick)');
  return { quick: argv.includes('--quick'), jsonOnly: argv.includes('--json-only'), outDir, publish: argv.includes('--publish') };
}

// ---------------------------------------------------------------------------------------------

function fmtMs(v: number): string {
  if (!Number.isFinite(v)) return '-';
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

function fmtOps(v: number): string {
  if (!Number.isFinite(v)) return '-';
  return Math.round(v).toLocaleString('en-US');
}

/** a target's numbers: small ones (ms, ratios) keep their decimals */
function fmtTarget(v: number): string {
  return Number.isFinite(v) && Math.abs(v) < 100 ? fmtMs(v) : fmtOps(v);
}

function table(rows: readonly (readonly string[])[], rightAlign: ReadonlySet<number>): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  const line = (r: readonly string[]) => r.map((cell, c) => (rightAlign.has(c) ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0))).join('  ');
  const out = [line(rows[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of rows.slice(1)) out.push(line(r));
  return out.join('\n');
}

export function formatFigures(figures: readonly Figure[]): string {
  const rows: string[][] = [['figure', 'conc', 'runs', 'p50 ms', 'p99 ms', 'min ms', 'max ms', 'mean ms', 'ops/s']];
  for (const f of figures) {
    rows.push([
      f.label,
      String(f.concurrency),
      String(f.runs),
      fmtMs(f.p50),
      fmtMs(f.p99),
      fmtMs(f.min),
      fmtMs(f.max),
      fmtMs(f.mean),
      fmtOps(f.opsPerSec) + (f.opsBasis === 'inverse-mean' ? '*' : ''),
    ]);
  }
  return table(rows, new Set([1, 2, 3, 4, 5, 6, 7, 8]));
}

export function formatResult(r: BenchResult): string {
  const lines: string[] = [];
  lines.push(`${r.title}  [${r.mode}]`);
  lines.push(
    `${r.machine.cpu} x${r.machine.cores}, ${r.machine.memoryGiB} GiB, ${r.machine.platform}/${r.machine.arch}, node ${r.node}, ` +
      `commit ${r.commit === null ? 'n/a' : r.commit.slice(0, 12)}${r.dirty ? ' (dirty)' : ''}, ${r.timestamp}`,
  );
  lines.push(`load average at start ${r.machine.loadavg.join(' / ')} (1/5/15 min)${(r.machine.loadavg[0] ?? 0) > r.machine.cores / 2 ? '  !! busy machine: figures are noisy' : ''}`);
  lines.push('');
  const figs = Object.values(r.figures);
  lines.push(formatFigures(figs));
  if (figs.some((f) => f.opsBasis === 'inverse-mean')) lines.push('* synchronous call: ops/s = 1 / mean latency');
  const derived = Object.entries(r.derived);
  if (derived.length > 0) {
    lines.push('');
    const w = Math.max(...derived.map(([k]) => k.length));
    for (const [k, v] of derived) lines.push(`${k.padEnd(w)}  ${Number.isInteger(v) ? String(v) : v.toFixed(2)}`);
  }
  if (r.target) {
    lines.push('');
    lines.push(`target: ${r.target.description}`);
    lines.push(`        ${r.target.metric}: required ${r.target.comparison ?? '>='} ${fmtTarget(r.target.required)}, actual ${fmtTarget(r.target.actual)}  => ${r.target.met ? 'PASS' : 'FAIL'}`);
  }
  for (const n of r.notes ?? []) lines.push(`note: ${n}`);
  return lines.join('\n');
}

/** A one-line-per-figure summary of several benchmarks (used by bench/run.ts). */
export function formatSummary(results: readonly BenchResult[]): string {
  const rows: string[][] = [['benchmark', 'figure', 'conc', 'runs', 'p50 ms', 'p99 ms', 'ops/s', 'target']];
  for (const r of results) {
    for (const [i, f] of Object.values(r.figures).entries()) {
      rows.push([i === 0 ? r.name : '', f.label, String(f.concurrency), String(f.runs), fmtMs(f.p50), fmtMs(f.p99), fmtOps(f.opsPerSec), '']);
    }
    if (r.target) rows.push(['', `target: ${r.target.metric}`, '', '', '', '', fmtTarget(r.target.actual), `${r.target.met ? 'PASS' : 'FAIL'} (${r.target.comparison ?? '>='} ${fmtTarget(r.target.required)})`]);
  }
  return table(rows, new Set([2, 3, 4, 5, 6]));
}
