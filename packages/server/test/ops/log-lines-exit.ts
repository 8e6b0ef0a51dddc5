/**
 * A process that logs through `stdoutLines` and exits in the same turn (as a fatal error does):
 * the lines of that turn must still reach standard output. Run by log-lines.test.ts.
 */
import { pino } from 'pino';
import { stdoutLines } from '../../src/log-lines.ts';

const out = stdoutLines();
const log = pino({ level: 'info' }, out.stream);
log.info({ n: 1 }, 'first line');
log.error({ n: 2 }, 'uncaught exception; stopping');
process.exit(3);
