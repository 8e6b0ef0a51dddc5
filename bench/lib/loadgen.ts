/**
 * The load generator, run as its own process (bench/lib/procs.ts runLoad): the spec is JSON in
 * argv[2], the result one JSON line on stdout. Out of the measured server's process, so its work
 * is never counted as the server's.
 *
 * - `connections` > 1: autocannon (keep-alive connections, its latency histogram in whole ms);
 * - `sequential: true`: one keep-alive connection, one request at a time, each timed with
 *   performance.now() (µs resolution: a p99 compared with a disk sync needs better than 1 ms).
 */
import { Agent, request } from 'node:http';
import autocannon from 'autocannon';
import type { LoadSpec } from './procs.ts';

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;

async function sequential(): Promise<{ samples: number[]; elapsedMs: number; non2xx: number; errors: number }> {
  const url = new URL(spec.url);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const body = spec.body === undefined ? undefined : Buffer.from(spec.body);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', ...spec.headers };
  if (body) headers['content-length'] = body.length;
  const one = () =>
    new Promise<number>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method: spec.method ?? 'POST', headers, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  const samples: number[] = [];
  let non2xx = 0;
  let errors = 0;
  const t0 = performance.now();
  const until = t0 + spec.duration * 1000;
  while (performance.now() < until) {
    const a = performance.now();
    try {
      const status = await one();
      if (status < 200 || status >= 300) non2xx += 1;
    } catch {
      errors += 1;
      continue;
    }
    samples.push(performance.now() - a);
  }
  const elapsedMs = performance.now() - t0;
  agent.destroy();
  return { samples, elapsedMs, non2xx, errors };
}

if (spec.sequential) {
  process.stdout.write(JSON.stringify(await sequential()) + '\n');
} else {
  const r = await autocannon({
    url: spec.url,
    method: spec.method ?? 'POST',
    headers: { 'content-type': 'application/json', ...spec.headers },
    ...(spec.body === undefined ? {} : { body: spec.body }),
    connections: spec.connections,
    duration: spec.duration,
  });
  process.stdout.write(JSON.stringify(r) + '\n');
}
