/**
 * A process with the safety net installed and a PostgreSQL client that nobody listens to, as a
 * forgotten listener would leave it. argv[2]: 'database' (its backend is terminated) or 'bug'
 * (an ordinary uncaught exception). Prints "alive" if it is still running a second later.
 */
import pg from 'pg';
import { installSafetyNet } from '../../src/safety-net.ts';

const url = process.env['MANDATE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const log = { error: (obj: object, msg: string) => process.stdout.write(JSON.stringify({ ...obj, msg }) + '\n') };
installSafetyNet(log);

if (process.argv[2] === 'database') {
  const orphan = new pg.Client({ connectionString: url });
  await orphan.connect();
  const pid = (await orphan.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
  const other = new pg.Client({ connectionString: url });
  other.on('error', () => undefined);
  await other.connect();
  await other.query('SELECT pg_terminate_backend($1)', [pid]);
  await other.end();
} else {
  setTimeout(() => {
    throw new TypeError('a bug');
  }, 10);
}
setTimeout(() => process.stdout.write('alive\n'), 1_000);
