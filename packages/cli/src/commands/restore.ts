import { parseArgs } from 'node:util';
import { BackupBrokenError, restoreSqlite } from '@mandate/server';
import { CliError, EXIT } from '../exit-codes.ts';
import type { CliIO } from '../io.ts';
import { restoreHelp } from '../help.ts';

/** `mandate restore --from DIR --data-dir DIR`: verifies a backup, then puts it in place (backup.ts). */
export async function restoreCommand(args: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({ args, strict: true, options: { from: { type: 'string' }, 'data-dir': { type: 'string' }, replace: { type: 'boolean' }, json: { type: 'boolean' } } });
  if (values.from === undefined) throw new CliError(EXIT.USAGE, `--from is required\n\n${restoreHelp}`);
  const dataDir = values['data-dir'] ?? io.env['MANDATE_DATA_DIR'];
  if (dataDir === undefined) throw new CliError(EXIT.USAGE, `--data-dir is required (or MANDATE_DATA_DIR)\n\n${restoreHelp}`);
  try {
    const r = await restoreSqlite(values.from, dataDir, { replace: values.replace === true });
    if (values.json) io.out(JSON.stringify({ ok: r.report.ok, set_aside: r.setAside ?? null, report: r.report }));
    else {
      if (r.setAside !== undefined) io.out(`the store that was in ${dataDir} is now in ${r.setAside}`);
      io.out(`${r.report.ok ? 'restored and verified' : 'restored but does NOT verify'}: ${r.report.records} records, ${r.report.checkpoints_verified} signed checkpoint(s), head ${r.report.head_hash}`);
    }
    return r.report.ok ? EXIT.OK : EXIT.FAILED;
  } catch (e) {
    if (e instanceof BackupBrokenError) {
      io.err(e.message);
      return EXIT.FAILED;
    }
    throw e;
  }
}
