import { parseArgs } from 'node:util';
import { configJsonSchema, loadConfig } from '@mandate/server';
import { CliError, EXIT } from '../exit-codes.ts';
import type { CliIO } from '../io.ts';
import { configHelp } from '../help.ts';

export async function configCommand(args: string[], io: CliIO): Promise<number> {
  if (args[0] === 'schema' && args.length === 1) {
    io.out(JSON.stringify(configJsonSchema(), null, 2));
    return EXIT.OK;
  }
  if (args[0] === 'validate') {
    const { values, positionals } = parseArgs({ args: args.slice(1), options: { json: { type: 'boolean' } }, allowPositionals: true });
    const [file, ...extra] = positionals;
    if (file === undefined) throw new CliError(EXIT.USAGE, `missing the configuration FILE to validate\n\n${configHelp}`);
    if (extra.length > 0) throw new CliError(EXIT.USAGE, `one FILE only (got ${String(positionals.length)})\n\n${configHelp}`);
    // throws CONFIG_INVALID (exit 3) naming the file and each problem's path in it
    loadConfig(file, {});
    io.out(values.json === true ? JSON.stringify({ ok: true, file }) : `ok: ${file} is a valid configuration`);
    return EXIT.OK;
  }
  throw new CliError(EXIT.USAGE, configHelp);
}
