/**
 * Mandate regex constraints on RE2 (packages/core/src/mandate/regex.ts): what the bounds cost.
 *
 *   node bench/regex.ts [--quick] [--json-only] [--out DIR]
 *
 * - the classic ReDoS patterns against the 65,536-character values that freeze a backtracking
 *   engine (one evaluation each, program cached);
 * - the worst case one check may reach: patterns made to defeat RE2's DFA (so it falls back to
 *   the NFA), each run on the longest value its share of a check's work budget allows: the time
 *   a whole budget takes is the most one call can spend on patterns;
 * - compiling the costliest pattern the size bound lets through (Unicode classes, case folding);
 * - an everyday pattern on an everyday value.
 *
 * No target: the worst-case time is the figure to read (and to keep well under a second).
 */
import { REGEX_LIMITS, RegexWork, estimateProgramSize, matchWhole, regexCost, regexProblem } from '@mandate/core';
import { type BenchResult, type Figure, emitResult, figure, newResult, parseBenchArgs, startInfo, printer } from './lib/report.ts';
import { timeSync, type LoopOptions } from './lib/stats.ts';

const N = 65_536;

const REDOS: readonly [string, string, string][] = [
  ['redos_nested_plus', '(a+)+b', 'a'.repeat(N)],
  ['redos_alternation', '(a|aa)+$', 'a'.repeat(N - 1) + '!'],
  ['redos_dotstar_20', '(.*a){20}', 'a'.repeat(N - 1) + 'b'],
  ['redos_words', '^(\\w+\\s?)*$', 'a'.repeat(N - 1) + '!'],
  ['redos_email', '^([a-zA-Z0-9])(([\\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$', 'a'.repeat(N - 1) + '!'],
];

/** Patterns whose DFA has a state per position (`.*a.{k}` on random a/b text): RE2's slow path. */
const HOSTILE: readonly [string, string][] = [
  ['hostile_k20', '.*a.{20}'],
  ['hostile_k100', '.*a.{100}'],
  ['hostile_k400', '.*a.{400}'],
  ['hostile_classes', '(?:[ab]*a[ab]{100}){2}'],
];

function randomAB(length: number, seed: number): string {
  let s = seed;
  let out = '';
  for (let i = 0; i < length; i += 1) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    out += s & 0x10000 ? 'a' : 'b';
  }
  return out;
}

interface Plan {
  readonly redos: LoopOptions;
  readonly hostile: LoopOptions;
  readonly compile: LoopOptions;
  readonly everyday: LoopOptions;
}

const FULL: Plan = {
  redos: { warmup: 2, iterations: 20, maxMs: 3000, minIterations: 5 },
  hostile: { warmup: 1, iterations: 10, maxMs: 6000, minIterations: 3 },
  compile: { warmup: 2, iterations: 30, maxMs: 4000, minIterations: 5 },
  everyday: { warmup: 1000, iterations: 50_000, maxMs: 2000 },
};

/** a smoke run: proves the benchmark works; its numbers are rough */
const QUICK: Plan = {
  redos: { warmup: 0, iterations: 2, maxMs: 300, minIterations: 1 },
  hostile: { warmup: 0, iterations: 1, maxMs: 300, minIterations: 1 },
  compile: { warmup: 0, iterations: 2, maxMs: 300, minIterations: 1 },
  everyday: { warmup: 100, iterations: 2000, maxMs: 200 },
};

function mustMatch(pattern: string, value: string): boolean {
  const r = matchWhole(pattern, value, new RegexWork());
  if ('error' in r) throw new Error(`${pattern}: ${r.error}`);
  return r.matched;
}

export function runRegexBenchmark(argv: readonly string[]): BenchResult {
  const args = parseBenchArgs(argv);
  const plan = args.quick ? QUICK : FULL;
  const say = printer(args);
  const start = startInfo();
  say(`regex benchmark: RE2 (re2js) under Mandate's bounds (program ≤ ${REGEX_LIMITS.maxProgram}, value ≤ ${REGEX_LIMITS.maxInput}, ${REGEX_LIMITS.workPerCheck} work units a check); ${args.quick ? 'quick' : 'full'} run`);
  const figures: Record<string, Figure> = {};
  const derived: Record<string, number> = {};
  const add = (key: string, label: string, r: { samples: number[]; elapsedMs: number }) => {
    figures[key] = figure(label, r.samples, { concurrency: 1, elapsedMs: r.elapsedMs, opsBasis: 'inverse-mean' });
  };

  for (const [key, pattern, value] of REDOS) {
    add(key, `${pattern.length > 24 ? pattern.slice(0, 21) + '...' : pattern} on ${value.length} chars`, timeSync(() => mustMatch(pattern, value), plan.redos));
  }

  let worstMs = 0;
  let worstNsPerUnit = 0;
  for (const [key, pattern] of HOSTILE) {
    const size = estimateProgramSize(pattern);
    // the longest value one whole check's budget pays for, this pattern alone
    const length = Math.min(REGEX_LIMITS.maxInput, Math.floor(REGEX_LIMITS.workPerCheck / (size + REGEX_LIMITS.stepOverhead)) - REGEX_LIMITS.compileWeight);
    const value = randomAB(length, 7);
    const units = regexCost(size, length);
    const r = timeSync(() => mustMatch(pattern, value), plan.hostile);
    add(key, `${pattern} on ${length} chars (${(units / 1e6).toFixed(1)}M units)`, r);
    const f = figures[key] as Figure;
    worstMs = Math.max(worstMs, f.max);
    worstNsPerUnit = Math.max(worstNsPerUnit, (f.max * 1e6) / units);
  }
  derived['worst ms, one check at its full budget (extrapolated)'] = worstNsPerUnit * REGEX_LIMITS.workPerCheck / 1e6;
  derived['worst ms measured'] = worstMs;
  derived['worst ns per work unit'] = worstNsPerUnit;

  // compile: a fresh pattern each time (the cache would hide it), at the edge of the size bound
  let n = 0;
  const costly = () => `(?i)[\\pL\\pN]{1,480}${n++}`;
  if (estimateProgramSize(costly()) > REGEX_LIMITS.maxProgram) throw new Error('the compile pattern is over the size bound');
  add('compile_largest', `compile (?i)[\\pL\\pN]{1,480} (~${estimateProgramSize('(?i)[\\pL\\pN]{1,480}0')} instructions)`, timeSync(() => regexProblem(costly()), plan.compile));

  add('everyday', 'T-[0-9]+ on "T-1042" (cached)', timeSync(() => mustMatch('T-[0-9]+', 'T-1042'), plan.everyday));

  for (const [key, pattern, value] of REDOS) derived[`${key} matched`] = mustMatch(pattern, value) ? 1 : 0;
  const result: BenchResult = {
    ...newResult({ name: 'regex', title: 'Regex constraints on RE2 under Mandate\'s bounds', mode: args.quick ? 'quick' : 'full', params: { ...REGEX_LIMITS } }, start),
    figures,
    derived,
    notes: [
      'work unit = one character of a value × one instruction of a pattern\'s estimated program (plus stepOverhead per character); a compile is charged as compileWeight characters',
      'hostile patterns defeat the DFA (a state per input position) so RE2 runs its NFA: the slowest linear path',
      'the event loop is blocked for the whole of one evaluation: the worst figure is how long one call can hold it',
    ],
  };
  return emitResult(result, args, say);
}

if (import.meta.main) {
  runRegexBenchmark(process.argv.slice(2));
}
