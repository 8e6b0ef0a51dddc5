import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { readTraceFile, replayTraces, type ReplaySummary } from '@mandate/server';
import { openAtomic, type AtomicFile } from '../atomic-file.ts';
import { CliError, EXIT, requireOptions } from '../exit-codes.ts';
import type { CliIO } from '../io.ts';
import { replayHelp } from '../help.ts';

function fmtSummary(s: ReplaySummary): string[] {
  const pct = (a: number, b: number) => (b === 0 ? '-' : ((100 * a) / b).toFixed(2) + ' %');
  const lines = [
    `traces ${s.traces}, calls ${s.calls}: allowed ${s.allowed}, denied ${s.denied}, held for approval ${s.held} (blocked ${pct(s.denied + s.held, s.calls)} of calls)`,
    `traces with a blocked call: ${s.tracesBlocked} (${pct(s.tracesBlocked, s.traces)})`,
    `policy version ${s.policyVersion}`,
    `${(s.elapsedMs / 1000).toFixed(2)} s: ${s.tracesPerSec.toFixed(0)} traces/s, ${s.callsPerSec.toFixed(0)} calls/s`,
  ];
  if (s.shadow) {
    lines.push(`shadow ${s.shadow.candidateVersion ?? '?'}: ${s.shadow.divergences} divergence(s) in ${s.shadow.evaluated} evaluated calls ${JSON.stringify(s.shadow.byKind)}`);
  }
  return lines;
}

/** divergent calls listed on the terminal (all of them are in --out) */
const MAX_LISTED = 200;


export async function replayCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      traces: { type: 'string' },
      policies: { type: 'string', multiple: true },
      out: { type: 'string' },
      shadow: { type: 'string', multiple: true },
      explain: { type: 'string' },
      concurrency: { type: 'string' },
      environment: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  requireOptions(values, ['traces', 'policies', 'out'], replayHelp);
  if (positionals.length > 0 || values.traces === undefined || values.policies === undefined || values.policies.length === 0 || values.out === undefined) throw new CliError(EXIT.USAGE, replayHelp);
  const concurrency = values.concurrency === undefined ? 16 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new CliError(EXIT.USAGE, '--concurrency must be an integer from 1 to 256');

  if (!existsSync(values.traces)) throw new CliError(EXIT.USAGE, `no trace file at ${values.traces}`);
  // written beside their final names and renamed once complete: a failed run leaves any earlier
  // --out and --explain as they were, never emptied or cut short
  const options: ReplayOptions = { traces: values.traces, policies: values.policies, out: values.out, shadow: values.shadow, explain: values.explain, environment: values.environment, json: values.json };
  const files: AtomicFile[] = [];
  try {
    files.push(await openAtomic(values.out, '--out'));
    if (values.explain !== undefined) files.push(await openAtomic(values.explain, '--explain'));
    const result = await run(files, options, concurrency);
    for (const f of files) await f.commit();
    report(result.summary, result.divergent, result.byRule, options, io);
    return EXIT.OK;
  } finally {
    for (const f of files) f.abort();
  }
}

interface ReplayOptions {
  traces: string;
  policies: string[];
  out: string;
  shadow?: string[] | undefined;
  explain?: string | undefined;
  environment?: string | undefined;
  json: boolean;
}

async function run(files: AtomicFile[], values: ReplayOptions, concurrency: number): Promise<{ summary: ReplaySummary; divergent: string[]; byRule: Map<string, number> }> {
  const out = (files[0] as AtomicFile).stream;
  const report = files[1]?.stream;
  const byRule = new Map<string, number>();
  const divergent: string[] = [];
  const summary = await replayTraces(readTraceFile(values.traces), {
    policiesDir: values.policies,
    shadowDir: values.shadow,
    explain: report !== undefined,
    concurrency,
    ...(values.environment !== undefined ? { environment: values.environment } : {}),
    onTrace: (decisions) => {
      let chunk = '';
      let explained = '';
      for (const d of decisions) {
        const { explain, ...line } = d;
        chunk += JSON.stringify(line) + '\n';
        if (explain !== undefined) {
          explained += JSON.stringify({ id: d.id, step: d.step, decision: d.decision, policy_ids: d.policy_ids, reasons: d.reasons, ...explain }) + '\n';
          for (const rule of d.policy_ids.length > 0 ? d.policy_ids : d.reasons) byRule.set(rule, (byRule.get(rule) ?? 0) + 1);
        }
        if (d.shadow !== undefined && divergent.length < MAX_LISTED) divergent.push(`${d.id} step ${d.step}: ${d.decision} -> ${d.shadow.decision} (${d.shadow.policy_ids.join(', ') || 'no policy'})`);
      }
      out.write(chunk);
      if (report !== undefined && explained !== '') report.write(explained);
    },
  });
  return { summary, divergent, byRule };
}

function report(summary: ReplaySummary, divergent: string[], byRule: Map<string, number>, values: ReplayOptions, io: CliIO): void {
  if (values.json) io.out(JSON.stringify(summary));
  else {
    for (const l of fmtSummary(summary)) io.out(l);
    if (divergent.length > 0) {
      io.out(`divergent calls${(summary.shadow?.divergences ?? 0) > divergent.length ? ` (first ${divergent.length})` : ''}:`);
      for (const l of divergent) io.out(`  ${l}`);
    }
    if (values.explain !== undefined) {
      io.out('blocked or held calls by rule:');
      for (const [rule, n] of [...byRule.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) io.out(`  ${String(n).padStart(7)}  ${rule}`);
    }
  }
  // with --json, stdout carries the summary alone
  const wrote = `wrote ${values.out}${values.explain !== undefined ? ` and ${values.explain}` : ''}`;
  if (values.json) io.err(wrote);
  else io.out(wrote);
}
