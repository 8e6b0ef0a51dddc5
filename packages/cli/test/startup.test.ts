/**
 * What `mandate` loads before it does anything: help and usage errors load no command, no Mandate
 * package and no dependency (it used to load them all, the server, Cedar and the MCP SDK
 * included: 1.2-1.5 s on an idle machine, 7 s on a busy one, to print text), and a command loads
 * its own module only. The times themselves are bench/startup.ts's business, not a test's.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const BIN = join(ROOT, 'packages', 'cli', 'bin', 'mandate.js');
const MAIN = join(ROOT, 'packages', 'cli', 'src', 'main.ts');

let dir: string;
let hook: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-startup-'));
  // a module hook that names every module the process loads, on stderr
  hook = join(dir, 'trace-loads.mjs');
  await writeFile(
    hook,
    `import { registerHooks } from 'node:module';
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); process.stderr.write('LOADED ' + r.url + '\\n'); return r; } });
`,
  );
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

/** the modules (file URLs, node: builtins left out) a `mandate` run loaded, and how it ended */
function loads(entry: string, args: readonly string[]): { status: number | null; out: string; modules: string[] } {
  const r = spawnSync(process.execPath, ['--import', hook, entry, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: '1' } });
  const modules = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('LOADED file:'))
    .map((l) => l.slice('LOADED '.length));
  return { status: r.status, out: r.stdout, modules };
}

const HEAVY = ['node_modules/', '/packages/core/', '/packages/server/', '/packages/gateway/', '/packages/store-', '/packages/cli/src/commands/'];

describe('what mandate loads', () => {
  it.each([
    ['--help', ['--help'], 0],
    ['a command\'s --help', ['serve', '--help'], 0],
    ['no arguments', [], 2],
    ['an unknown command', ['frobnicate'], 2],
  ] as const)('prints %s without loading a command, a Mandate package or a dependency', (_what, args, code) => {
    for (const entry of [BIN, MAIN]) {
      const r = loads(entry, args);
      expect(r.status, entry).toBe(code);
      expect(r.modules.length, entry).toBeGreaterThan(0);
      expect(r.modules.filter((m) => HEAVY.some((h) => m.includes(h))), entry).toEqual([]);
    }
  });

  it('loads a command\'s own module only when it runs', () => {
    const r = loads(BIN, ['config', 'schema']);
    expect(r.status).toBe(0);
    expect(r.out).toContain('"$schema"');
    const commands = r.modules.filter((m) => m.includes('/packages/cli/src/commands/')).map((m) => m.slice(m.lastIndexOf('/') + 1));
    expect(commands).toEqual(['config.ts']);
  });
});
