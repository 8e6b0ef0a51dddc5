import { parseArgs } from 'node:util';
import { CliError, EXIT, requireOptions, requirePositional } from '../exit-codes.ts';
import { callApi, expectOk, serverTarget } from '../http-client.ts';
import { taskHelp } from '../help.ts';
import type { CliIO } from '../io.ts';

interface Lifted {
  task: { id: string; state: string };
  lifted: { action: string; tool: string | null; detector: string }[];
  resumed: boolean;
  kept: { action: string; tool: string | null }[];
  audit_seq: number | null;
}

export async function taskCommand(args: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    strict: true,
    allowPositionals: true,
    options: { reason: { type: 'string' }, json: { type: 'boolean' }, url: { type: 'string' }, 'api-key': { type: 'string' }, 'data-dir': { type: 'string' } },
  });
  if (sub !== 'lift') throw new CliError(EXIT.USAGE, sub === undefined || sub.startsWith('-') ? `missing the sub-command (lift)\n\n${taskHelp}` : `unknown sub-command "${sub}"\n\n${taskHelp}`);
  const id = requirePositional(positionals, 'the TASK_ID', taskHelp);
  requireOptions(values, ['reason'], taskHelp);
  const { url, apiKey } = serverTarget(values, io);
  const r = expectOk(await callApi(url, apiKey, 'POST', `/v1/tasks/${encodeURIComponent(id)}/containment/lift`, { reason: values.reason as string }), 'task lift') as Lifted;
  if (values.json) {
    io.out(JSON.stringify(r));
    return EXIT.OK;
  }
  const what = r.lifted.map((x) => (x.tool === null ? x.action : `${x.action} ${x.tool}`)).join(', ');
  io.out(`${r.task.id}: lifted ${what === '' ? 'nothing stored' : what}${r.resumed ? '; the task resumed' : ''}; task is ${r.task.state} (audit seq ${String(r.audit_seq)})`);
  if (r.kept.length > 0) io.out(`kept (never lifted): ${r.kept.map((x) => x.action).join(', ')}`);
  return EXIT.OK;
}
