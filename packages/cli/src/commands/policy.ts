import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { ceilingViolations, isMandateError, parseCeiling, parseMandate, type Ceiling, type Mandate, type PolicyProblem } from '@mandate/core';
import { loadPolicyDir, sha256Hasher } from '@mandate/server';
import { CliError, EXIT } from '../exit-codes.ts';
import type { CliIO } from '../io.ts';
import { policyHelp } from '../help.ts';

function readYaml(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(EXIT.USAGE, `cannot read ${path}: ${(e as Error).message}`);
  }
  return parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 });
}

/** Validates each file with `parse`; the problems are written to stderr (and `problems`), the good ones returned. */
function validateFiles<T>(paths: readonly string[], what: string, parse: (v: unknown) => T, io: CliIO, problems: string[]): { ok: { path: string; value: T }[]; bad: number } {
  const ok: { path: string; value: T }[] = [];
  let bad = 0;
  for (const path of paths) {
    try {
      ok.push({ path, value: parse(readYaml(path)) });
    } catch (e) {
      if (e instanceof CliError) throw e;
      bad += 1;
      const line = `${path}: ${what}: ${isMandateError(e) ? `${e.code}: ${e.message}` : `not valid YAML: ${(e as Error).message}`}`;
      problems.push(line);
      io.err(line);
    }
  }
  return { ok, bad };
}

export async function policyCommand(args: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'reload') return (await import('./policy-reload.ts')).policyReloadCommand(rest, io);
  if (sub !== 'validate') throw new CliError(EXIT.USAGE, policyHelp);
  const { values, positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: { 'allow-empty': { type: 'boolean' }, ceiling: { type: 'string', multiple: true }, mandate: { type: 'string', multiple: true }, json: { type: 'boolean' } } });
  const dir = positionals[0];
  const ceilings = values.ceiling ?? [];
  const mandates = values.mandate ?? [];
  if (positionals.length > 1 || (dir === undefined && ceilings.length === 0 && mandates.length === 0)) throw new CliError(EXIT.USAGE, policyHelp);
  let failed = false;
  // --json: one document on stdout ({ok, policies, files, problems}); the problems are on stderr too
  const problems: string[] = [];
  const report: { ok: boolean; policies: { dir: string; count: number; classified_tools: number; version: string } | null; files: { ceilings: number; mandates: number } | null; problems: string[] } = { ok: true, policies: null, files: null, problems };
  const problem = (line: string): void => {
    problems.push(line);
    io.err(line);
  };
  const say = (line: string): void => {
    if (values.json !== true) io.out(line);
  };
  if (dir !== undefined) {
    try {
      const set = loadPolicyDir(dir, sha256Hasher);
      // a folder with no policy validates to a set that denies every call: almost always a wrong path
      if (set.policies.length === 0 && values['allow-empty'] !== true) {
        problem(`${dir}: holds no policy (no *.cedar file with a policy); loaded, it would deny every call. Pass --allow-empty if that is meant.`);
        io.err('invalid: 1 problem(s)');
        failed = true;
      } else {
        report.policies = { dir, count: set.policies.length, classified_tools: set.catalog.entries.length, version: set.version };
        say(`ok: ${set.policies.length} policies, ${set.catalog.entries.length} classified tools, version ${set.version}`);
      }
    } catch (e) {
      if (!isMandateError(e) || e.code !== 'POLICY_INVALID') throw e;
      const found = (e.details?.['problems'] as PolicyProblem[] | undefined) ?? [{ policyId: undefined, source: dir, message: e.message }];
      for (const p of found) problem(`${p.source}${p.policyId ? ` [${p.policyId}]` : ''}: ${p.message}`);
      io.err(`invalid: ${found.length} problem(s)`);
      failed = true;
    }
  }
  if (ceilings.length > 0 || mandates.length > 0) {
    const c = validateFiles<Ceiling>(ceilings, 'ceiling', parseCeiling, io, problems);
    const m = validateFiles<Mandate>(mandates, 'mandate', parseMandate, io, problems);
    let beyond = 0;
    for (const mandate of m.ok) {
      for (const ceiling of c.ok) {
        for (const v of ceilingViolations(mandate.value, ceiling.value)) {
          beyond += 1;
          problem(`${mandate.path}: beyond the ceiling ${ceiling.path}: ${v}`);
        }
      }
    }
    if (c.bad + m.bad + beyond > 0) {
      io.err(`invalid: ${c.bad} ceiling(s) and ${m.bad} mandate(s) invalid, ${beyond} ceiling violation(s)`);
      failed = true;
    } else say(`ok: ${c.ok.length} ceiling(s), ${m.ok.length} mandate(s)${c.ok.length > 0 && m.ok.length > 0 ? ', every mandate within every ceiling' : ''}`);
    report.files = { ceilings: c.ok.length, mandates: m.ok.length };
  }
  report.ok = !failed;
  if (values.json === true) io.out(JSON.stringify(report));
  return failed ? EXIT.FAILED : EXIT.OK;
}
