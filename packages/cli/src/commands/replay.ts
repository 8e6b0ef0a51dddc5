import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { readTraceFile, replayTraces, type ReplaySummary } from '@mandate/server';
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

/** Ends a file stream once everything written is flushed (write() buffers; end() waits for it). */
async function close(stream: WriteStream): Promise<void> {
  stream.end();
  await once(stream, 'finish');
}

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

  const out = createWriteStream(values.out);
  const report = values.explain === undefined ? undefined : createWriteStream(values.explain);
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
  await Promise.all([close(out), ...(report !== undefined ? [close(report)] : [])]);
  if (values.json) io.out(JSON.stringify(summary));
  else {
    for (const l of fmtSummary(summary)) io.out(l);
    if (divergent.length > 0) {
      io.out(`divergent calls${(summary.shadow?.divergences ?? 0) > divergent.length ? ` (first ${divergent.length})` : ''}:`);
      for (const l of divergent) io.out(`  ${l}`);
    }
    if (report !== undefined) {
      io.out('blocked or held calls by rule:');
      for (const [rule, n] of [...byRule.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))) io.out(`  ${String(n).padStart(7)}  ${rule}`);
    }
  }
  io.out(`wrote ${values.out}${values.explain !== undefined ? ` and ${values.explain}` : ''}`);
  return EXIT.OK;
}
