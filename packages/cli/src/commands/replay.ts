import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { readTraceFile, replayTraces, type ReplaySummary } from '@mandate/server';
import { CliError, EXIT } from '../exit-codes.ts';
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

export async function replayCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      traces: { type: 'string' },
      policies: { type: 'string' },
      out: { type: 'string' },
      shadow: { type: 'string' },
      concurrency: { type: 'string' },
      environment: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length > 0 || values.traces === undefined || values.policies === undefined || values.out === undefined) throw new CliError(EXIT.USAGE, replayHelp);
  const concurrency = values.concurrency === undefined ? 16 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new CliError(EXIT.USAGE, '--concurrency must be an integer from 1 to 256');

  const out = createWriteStream(values.out);
  let pending = 0;
  const summary = await replayTraces(readTraceFile(values.traces), {
    policiesDir: values.policies,
    shadowDir: values.shadow,
    concurrency,
    ...(values.environment !== undefined ? { environment: values.environment } : {}),
    onTrace: (decisions) => {
      let chunk = '';
      for (const d of decisions) chunk += JSON.stringify(d) + '\n';
      if (!out.write(chunk)) pending += 1;
    },
  });
  if (pending > 0 && out.writableNeedDrain) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
  if (values.json) io.out(JSON.stringify(summary));
  else for (const l of fmtSummary(summary)) io.out(l);
  io.out(`wrote ${values.out}`);
  return EXIT.OK;
}
