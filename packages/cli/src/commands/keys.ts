import { parseArgs } from 'node:util';
import { loadConfig, rotateKek } from '@mandate/server';
import { CliError, EXIT } from '../exit-codes.ts';
import { keysHelp } from '../help.ts';
import type { CliIO } from '../io.ts';

export async function keysCommand(args: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'rotate-kek') throw new CliError(EXIT.USAGE, keysHelp);
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: { config: { type: 'string' }, 'data-dir': { type: 'string' }, store: { type: 'string' }, 'new-kek-file': { type: 'string' }, json: { type: 'boolean' } },
  });
  const file = values['new-kek-file'];
  if (file === undefined) throw new CliError(EXIT.USAGE, `--new-kek-file is required\n\n${keysHelp}`);
  const overrides: Record<string, unknown> = {};
  if (values['data-dir'] !== undefined) overrides['data_dir'] = values['data-dir'];
  if (values.store !== undefined) overrides['store'] = values.store;
  const config = loadConfig(values.config ?? io.env['MANDATE_CONFIG'], io.env, overrides);
  const r = await rotateKek(config, io.env, file);
  if (values.json) {
    io.out(JSON.stringify({ keys: r.keys, from: r.from, to: r.to, file: r.file, created: r.created }));
    return EXIT.OK;
  }
  io.out(`re-encrypted ${r.keys} private signing key(s) from ${r.from} to ${r.to}${r.created ? ` (new key written to ${r.file})` : ''}`);
  io.out(`now set keys.kek_file to ${r.file} (or MANDATE_KEK to its content) and start Mandate; keep the old key until you have checked it starts`);
  return EXIT.OK;
}
