/**
 * The HTTP floor, run as its own process (bench/lib/procs.ts): a bare node:http server that reads
 * each request's body, parses it as JSON (as any JSON API must) and answers with the body given in
 * RAW_HTTP_BODY (a captured Mandate answer: the same bytes). Prints "listening on <url>".
 */
import { createServer } from 'node:http';

const body = process.env['RAW_HTTP_BODY'] ?? '{}';
const length = Buffer.byteLength(body);

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json; charset=utf-8' }).end('{"error":"bad json"}');
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) {
      res.writeHead(400, { 'content-type': 'application/json; charset=utf-8' }).end('{"error":"not an object"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': length });
    res.end(body);
  });
});
server.keepAliveTimeout = 72_000;
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`listening on http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
