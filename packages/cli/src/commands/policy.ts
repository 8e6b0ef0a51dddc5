import { parseArgs } from 'node:util';
import { isMandateError, type PolicyProblem } from '@mandate/core';
import { loadPolicyDir, sha256Hasher } from '@mandate/server';
import { CliError, EXIT } from '../exit-codes.ts';
import type { CliIO } from '../io.ts';
import { policyHelp } from '../help.ts';

export async function policyCommand(args: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'reload') return (await import('./policy-reload.ts')).policyReloadCommand(rest, io);
  if (sub !== 'validate') throw new CliError(EXIT.USAGE, policyHelp);
  const { positionals, values } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: { 'allow-empty': { type: 'boolean' } } });
  const dir = positionals[0];
  if (dir === undefined || positionals.length !== 1) throw new CliError(EXIT.USAGE, policyHelp);
  try {
    const set = loadPolicyDir(dir, sha256Hasher);
    // a folder with no policy validates to a set that denies every call: almost always a wrong path
    if (set.policies.length === 0 && values['allow-empty'] !== true) {
      io.err(`${dir}: holds no policy (no *.cedar file with a policy); loaded, it would deny every call. Pass --allow-empty if that is meant.`);
      io.err('invalid: 1 problem(s)');
      return EXIT.FAILED;
    }
    io.out(`ok: ${set.policies.length} policies, ${set.catalog.entries.length} classified tools, version ${set.version}`);
    return EXIT.OK;
  } catch (e) {
    if (!isMandateError(e) || e.code !== 'POLICY_INVALID') throw e;
    const problems = (e.details?.['problems'] as PolicyProblem[] | undefined) ?? [{ policyId: undefined, source: dir, message: e.message }];
    for (const p of problems) io.err(`${p.source}${p.policyId ? ` [${p.policyId}]` : ''}: ${p.message}`);
    io.err(`invalid: ${problems.length} problem(s)`);
    return EXIT.FAILED;
  }
}
