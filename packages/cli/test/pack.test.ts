/**
 * The packed packages install and run outside the repository: scripts/pack.ts builds and packs
 * every publishable package, npm installs the tarballs into an empty folder (third-party
 * dependencies from the npm registry), and the installed `mandate` runs there: on this Node (24)
 * and on Node 22 (fetched with `npx -p node@22`; skipped, with the reason, when it cannot be had).
 * Nothing from the repository's sources is reachable from that folder: the installed bin runs
 * dist/ (plain JavaScript), and the server serves the dashboard packed into it.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitReady } from '../../server/test/serve-process.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..', '..');

const SLOW = 900_000;
let work: string;
let app: string;
let bin: string;
let node22: string | undefined;
let node22Why = '';

// asynchronous throughout: a synchronous minute-long child would starve the test worker's RPC
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'mandate-pack-test-'));
  const packed = await run(process.execPath, [join(ROOT, 'scripts', 'pack.ts'), '--out', join(work, 'tarballs')], { cwd: ROOT, timeout: SLOW, maxBuffer: 64 << 20 });
  const tarballs = packed.stdout.trim().split('\n');
  expect(tarballs.length).toBeGreaterThanOrEqual(8);
  app = join(work, 'app');
  mkdirSync(app, { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'mandate-pack-consumer', private: true, type: 'module' }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', ...tarballs], { cwd: app, timeout: SLOW, maxBuffer: 64 << 20 });
  bin = join(app, 'node_modules', '@mandate', 'cli', 'bin', 'mandate.js');
  try {
    const r = await run('npx', ['-y', '-p', 'node@22', 'node', '-p', 'process.execPath'], { cwd: work, timeout: 600_000 });
    node22 = r.stdout.trim().split('\n').pop();
  } catch (e) {
    node22Why = `npx -p node@22 could not provide Node 22 here: ${String(e).slice(0, 300)}`;
  }
}, SLOW);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** runs the installed mandate; never throws on a non-zero exit (the test asserts the status) */
async function mandate(node: string, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const r = await run(node, [bin, ...args], { cwd: app, timeout: 300_000, env: { ...process.env, NODE_OPTIONS: '' } });
    return { status: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: unknown; stdout?: string; stderr?: string };
    return { status: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? String(e) };
  }
}

describe('the packed packages', () => {
  it('install without the repository sources and point their exports at dist', () => {
    const cli = join(app, 'node_modules', '@mandate', 'cli');
    expect(existsSync(join(cli, 'src'))).toBe(false);
    expect(existsSync(join(cli, 'dist', 'main.js'))).toBe(true);
    expect(existsSync(join(cli, 'LICENSE'))).toBe(true);
    const server = JSON.parse(readFileSync(join(app, 'node_modules', '@mandate', 'server', 'package.json'), 'utf8')) as { exports: Record<string, unknown>; license: string };
    expect(server.exports['.']).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
    expect(server.license).toBe('Apache-2.0');
  });

  it('mandate --version and the demo run on Node 24', async () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(24);
    const v = await mandate(process.execPath, ['--version']);
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout.trim()).toBe((JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string }).version);
    const d = await mandate(process.execPath, ['demo']);
    expect(d.status, d.stderr).toBe(0);
    expect(d.stdout).toContain('demo passed');
  }, SLOW);

  it('mandate --version and the demo run on Node 22 (no type stripping)', async (ctx) => {
    if (node22 === undefined) return ctx.skip(node22Why);
    const ver = spawnSync(node22, ['--version'], { encoding: 'utf8' }).stdout.trim();
    expect(ver).toMatch(/^v22\./);
    expect((await mandate(node22, ['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const d = await mandate(node22, ['demo']);
    expect(d.status, d.stderr).toBe(0);
    expect(d.stdout).toContain('demo passed');
  }, SLOW);

  it('the installed server serves the dashboard packed into it', async () => {
    const data = join(work, 'data');
    let out = '';
    const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--data-dir', data, '--dev-issuer'], { cwd: app, env: { ...process.env, NODE_OPTIONS: '' } });
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    try {
      const url = await waitReady(child, () => out);
      const res = await fetch(`${url}/dashboard/`);
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toContain('<script');
      const asset = /src="(\/dashboard\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      expect(asset).toBeDefined();
      expect((await fetch(`${url}${String(asset)}`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    }
  }, SLOW);

  it('the SDK is imported by a plain JavaScript consumer', () => {
    writeFileSync(join(app, 'consumer.mjs'), "import * as sdk from '@mandate/sdk';\nconsole.log(Object.keys(sdk).length > 0 ? 'ok' : 'empty');\n");
    const r = spawnSync(node22 ?? process.execPath, [join(app, 'consumer.mjs')], { cwd: app, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('ok');
  }, SLOW);
});
