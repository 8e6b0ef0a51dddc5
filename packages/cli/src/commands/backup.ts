import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BackupBrokenError, backupSqlite } from '@mandate/server';
import { CliError, EXIT } from '../exit-codes.ts';
import type { CliIO } from '../io.ts';
import { backupHelp } from '../help.ts';

/** `mandate backup --out DIR`: an online, verified copy of the SQLite store (backup.ts). */
export async function backupCommand(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({ args, strict: true, options: { 'data-dir': { type: 'string' }, db: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } } });
  if (values.out === undefined) throw new CliError(EXIT.USAGE, `--out is required\n\n${backupHelp}`);
  const db = values.db ?? join(values['data-dir'] ?? io.env['MANDATE_DATA_DIR'] ?? './.mandate', 'mandate.db');
  try {
    const m = await backupSqlite(db, values.out);
    if (values.json) io.out(JSON.stringify(m));
    else io.out(`backup written to ${values.out} and verified: ${m.records} records, ${m.checkpoints_verified} signed checkpoint(s), head ${m.head_hash}`);
    return EXIT.OK;
  } catch (e) {
    if (e instanceof BackupBrokenError) {
      io.err(e.message);
      return EXIT.FAILED;
    }
    throw e;
  }
}
