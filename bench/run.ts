/**
 * Runs every benchmark in bench/ (each `bench/<name>.ts`, one child process apiece so they do not
 * share a heap or a JIT), prints their tables and a summary. `npm run bench [-- --quick]`.
 *
 *   node bench/run.ts [--quick] [--out DIR] [name…]
 *
 * Exits non-zero only when a benchmark fails to run; a missed performance target is reported,
 * not fatal.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatResult, formatSummary, type BenchResult } from './lib/report.ts';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

export function benchmarkFiles(dir: string = BENCH_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && f !== 'run.ts')
    .sort()
    .map((f) => join(dir, f));
}

function runOne(file: string, args: readonly string[]): Promise<BenchResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, '--json-only', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${basename(file)} exited with ${String(code)}`));
      const last = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(last) as BenchResult);
      } catch {
        reject(new Error(`${basename(file)} printed no JSON result`));
      }
    });
  });
}

async function main(argv: readonly string[]): Promise<number> {
  const passthrough: string[] = [];
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--out') passthrough.push(a, argv[++i] ?? '');
    else if (a.startsWith('--')) passthrough.push(a);
    else names.push(a);
  }
  const files = benchmarkFiles().filter((f) => names.length === 0 || names.includes(basename(f, '.ts')));
  if (files.length === 0) {
    process.stderr.write(`no benchmark matches ${names.join(', ')}\n`);
    return 2;
  }
  const results: BenchResult[] = [];
  let failed = 0;
  for (const file of files) {
    process.stderr.write(`\n== ${basename(file, '.ts')}\n`);
    try {
      const r = await runOne(file, passthrough);
      results.push(r);
      process.stdout.write('\n' + formatResult(r) + '\n');
    } catch (e) {
      failed += 1;
      process.stderr.write(`!! ${(e as Error).message}\n`);
    }
  }
  if (results.length > 1) process.stdout.write('\nSummary\n\n' + formatSummary(results) + '\n');
  process.stdout.write(`\n${results.length} benchmark(s) run${failed > 0 ? `, ${failed} failed` : ''}; results in bench/results/ (or --out)\n`);
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
