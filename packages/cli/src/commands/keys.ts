import { parseArgs } from 'node:util';
import { loadConfig, rotateKek } from '@mandate/server';
import { CliError, EXIT } from '../exit-codes.ts';
import type { CliIO } from '../io.ts';

export const keysHelp = `mandate keys rotate-kek --new-kek-file FILE [--config FILE] [--data-dir DIR] [--store URL]
  Re-encrypts every private signing key (task tokens, the dev issuer, audit checkpoints) under
  the key encryption key in FILE, created (base64 of 32 bytes, mode 0600) when it does not exist.
  The current key comes from the configuration as at start (MANDATE_KEK, keys.kek_file or
  <data-dir>/kek.key). Stop Mandate first; afterwards set keys.kek_file (or MANDATE_KEK) to the
  new key and start it. Nothing is written unless every key decrypts with the current key
  (else exit 3, KEK_MISMATCH). A cluster rotates without stopping through keys.previous_kek_files.`;

export async function keysCommand(args: string[], io: CliIO): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'rotate-kek') throw new CliError(EXIT.USAGE, keysHelp);
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: { config: { type: 'string' }, 'data-dir': { type: 'string' }, store: { type: 'string' }, 'new-kek-file': { type: 'string' } },
  });
  const file = values['new-kek-file'];
  if (file === undefined) throw new CliError(EXIT.USAGE, `--new-kek-file is required\n\n${keysHelp}`);
  const overrides: Record<string, unknown> = {};
  if (values['data-dir'] !== undefined) overrides['data_dir'] = values['data-dir'];
  if (values.store !== undefined) overrides['store'] = values.store;
  const config = loadConfig(values.config ?? io.env['MANDATE_CONFIG'], io.env, overrides);
  const r = await rotateKek(config, io.env, file);
  io.out(`re-encrypted ${r.keys} private signing key(s) from ${r.from} to ${r.to}${r.created ? ` (new key written to ${r.file})` : ''}`);
  io.out(`now set keys.kek_file to ${r.file} (or MANDATE_KEK to its content) and start Mandate; keep the old key until you have checked it starts`);
  return EXIT.OK;
}
