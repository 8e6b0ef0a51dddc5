import { configJsonSchema } from '@mandate/server';
import { CliError, EXIT } from '../exit-codes.ts';
import type { CliIO } from '../io.ts';
import { configHelp } from '../help.ts';

export async function configCommand(args: string[], io: CliIO): Promise<number> {
  if (args[0] !== 'schema' || args.length !== 1) throw new CliError(EXIT.USAGE, configHelp);
  io.out(JSON.stringify(configJsonSchema(), null, 2));
  return EXIT.OK;
}
