import { parseArgs } from 'node:util';
import { CliError, EXIT } from '../exit-codes.ts';
import { callApi, expectOk, serverTarget } from '../http-client.ts';
import type { CliIO } from '../io.ts';
import { secretHelp } from '../help.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export async function secretCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { 'from-env': { type: 'string' }, stdin: { type: 'boolean' }, url: { type: 'string' }, 'api-key': { type: 'string' }, 'data-dir': { type: 'string' } },
  });
  const [verb, name] = positionals;
  const { url, apiKey } = serverTarget(values, io);
  if (verb === 'list' && name === undefined) {
    io.out(JSON.stringify(expectOk(await callApi(url, apiKey, 'GET', '/v1/secrets'), 'secret list'), null, 2));
    return EXIT.OK;
  }
  if (verb === 'delete' && name !== undefined) {
    expectOk(await callApi(url, apiKey, 'DELETE', `/v1/secrets/${encodeURIComponent(name)}`), 'secret delete');
    io.out(`deleted ${name}`);
    return EXIT.OK;
  }
  if (verb !== 'set' || name === undefined || (values['from-env'] === undefined) === (values.stdin !== true)) throw new CliError(EXIT.USAGE, secretHelp);
  const value = values['from-env'] !== undefined ? io.env[values['from-env']] : await readStdin();
  if (value === undefined || value === '') throw new CliError(EXIT.USAGE, 'the secret value is empty');
  const r = expectOk(await callApi(url, apiKey, 'PUT', `/v1/secrets/${encodeURIComponent(name)}`, { value }), 'secret set');
  io.out(JSON.stringify(r));
  return EXIT.OK;
}
