import { parseArgs } from 'node:util';
import { CliError, EXIT, requireOneOf, requireOptions } from '../exit-codes.ts';
import { callApi, expectOk, serverTarget } from '../http-client.ts';
import type { CliIO } from '../io.ts';
import { killHelp } from '../help.ts';

export async function killCommand(args: string[], io: CliIO, release = false): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { agent: { type: 'string' }, task: { type: 'string' }, all: { type: 'boolean' }, reason: { type: 'string' }, json: { type: 'boolean' }, url: { type: 'string' }, 'api-key': { type: 'string' }, 'data-dir': { type: 'string' } },
  });
  // name what is missing before asking for a key: a usage error is not an authentication problem
  if (release && values.task !== undefined) throw new CliError(EXIT.USAGE, `unkill takes --agent or --all, not --task: a killed task stays killed\n\n${killHelp}`);
  requireOneOf(values, release ? ['agent', 'all'] : ['agent', 'task', 'all'], killHelp);
  requireOptions(values, ['reason'], killHelp);
  const { url, apiKey } = serverTarget(values, io);
  const body = values.all ? { all: true, reason: values.reason } : values.agent !== undefined ? { agent: values.agent, reason: values.reason } : { task: values.task, reason: values.reason };
  const r = expectOk(await callApi(url, apiKey, 'POST', release ? '/v1/unkill' : '/v1/kill', body), release ? 'unkill' : 'kill');
  // JSON either way (what was ended); --json on one line
  io.out(JSON.stringify(r, null, values.json ? undefined : 2));
  return EXIT.OK;
}

export function unkillCommand(args: string[], io: CliIO): Promise<number> {
  return killCommand(args, io, true);
}
