/**
 * The load generator, run as its own process (bench/lib/procs.ts runLoad): autocannon with the
 * spec given as JSON in argv[2], its result printed as one JSON line. Out of the measured server's
 * process, so its work is never counted as the server's.
 */
import autocannon from 'autocannon';
import type { LoadSpec } from './procs.ts';

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
const r = await autocannon({
  url: spec.url,
  method: spec.method ?? 'POST',
  headers: { 'content-type': 'application/json', ...spec.headers },
  ...(spec.body === undefined ? {} : { body: spec.body }),
  connections: spec.connections,
  duration: spec.duration,
});
process.stdout.write(JSON.stringify(r) + '\n');
