import { parseArgs } from 'node:util';
import { CliError, EXIT } from '../exit-codes.ts';
import { callApi, expectOk, serverTarget } from '../http-client.ts';
import type { CliIO } from '../io.ts';
import { killHelp } from '../help.ts';

export async function killCommand(args: string[], io: CliIO, release = false): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { agent: { type: 'string' }, task: { type: 'string' }, all: { type: 'boolean' }, reason: { type: 'string' }, url: { type: 'string' }, 'api-key': { type: 'string' }, 'data-dir': { type: 'string' } },
  });
  const targets = [values.agent !== undefined, values.task !== undefined, values.all === true].filter(Boolean).length;
  if (targets !== 1 || values.reason === undefined || (release && values.task !== undefined)) throw new CliError(EXIT.USAGE, killHelp);
  const { url, apiKey } = serverTarget(values, io);
  const body = values.all ? { all: true, reason: values.reason } : values.agent !== undefined ? { agent: values.agent, reason: values.reason } : { task: values.task, reason: values.reason };
  const r = expectOk(await callApi(url, apiKey, 'POST', release ? '/v1/unkill' : '/v1/kill', body), release ? 'unkill' : 'kill');
  io.out(JSON.stringify(r, null, 2));
  return EXIT.OK;
}

export function unkillCommand(args: string[], io: CliIO): Promise<number> {
  return killCommand(args, io, true);
}
