/**
 * The gateway's HTTP client transport over TLS: an https: upstream is verified against Node's
 * CA store, as fetch does (its bundled roots and NODE_EXTRA_CA_CERTS); a certificate no CA
 * vouches for is refused before anything is sent.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeHttpClientTransport } from '../src/http-client.ts';

const run = promisify(execFile);
const CLIENT = new URL('./fixtures/https-client.ts', import.meta.url).pathname;

describe('the gateway\'s HTTP client transport over TLS', () => {
  let dir: string;
  let server: Server;
  let url: string;
  let posts = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mandate-tls-'));
    // a throwaway self-signed certificate for 127.0.0.1
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    server = createServer({ key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) }, (req, res) => {
      posts += 1;
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { over: 'tls' } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  }, 60_000);
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses an upstream whose certificate no trusted CA signed', async () => {
    const t = new NodeHttpClientTransport(new URL(url));
    t.onerror = () => undefined;
    await t.start();
    await expect(t.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} })).rejects.toThrow(/self-signed|self signed/);
    await t.close();
    expect(posts).toBe(0);
  });

  it('trusts a CA named by NODE_EXTRA_CA_CERTS', async () => {
    const { stdout } = await run(process.execPath, [CLIENT, url], { env: { PATH: process.env['PATH'] ?? '', NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') }, timeout: 60_000 });
    expect(stdout.trim()).toBe(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { over: 'tls' } }));
    expect(posts).toBe(1);
  }, 60_000);
});
