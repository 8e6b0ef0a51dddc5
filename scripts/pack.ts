/**
 * Packs the publishable packages into npm tarballs: builds them (tsc -b tsconfig.build.json, and
 * the dashboard if it is not built), stages each package with a package.json whose exports point
 * at its build (dist/*.js with dist/*.d.ts types), the LICENSE, and what it needs at run time (the
 * CLI's example policies, the server's dashboard files), then runs `npm pack` on the staged copy.
 * The repository's own package.json files keep pointing at the TypeScript sources.
 *
 *   node scripts/pack.ts [--out DIR] [--no-build]
 *
 * Prints one tarball path per line.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = resolve(import.meta.dirname, '..');
/** the packages installed by users, in dependency order */
export const PUBLISHABLE = ['core', 'store-sql', 'store-sqlite', 'store-postgres', 'gateway', 'server', 'cli', 'sdk'] as const;

type Exports = Record<string, string>;
interface Manifest {
  name: string;
  version: string;
  description?: string;
  exports: Exports;
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, unknown>;
}

/** ./src/x.ts → { types: ./dist/x.d.ts, default: ./dist/x.js } */
function distExport(src: string): { types: string; default: string } {
  if (!src.startsWith('./src/') || !src.endsWith('.ts')) throw new Error(`export ${src} is not a ./src/*.ts file`);
  const base = './dist/' + src.slice('./src/'.length, -'.ts'.length);
  return { types: `${base}.d.ts`, default: `${base}.js` };
}

/** the package.json published for one package */
export function publishedManifest(m: Manifest): Record<string, unknown> {
  const exports: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m.exports)) exports[k] = distExport(v);
  exports['./package.json'] = './package.json';
  return {
    name: m.name,
    version: m.version,
    ...(m.description !== undefined ? { description: m.description } : {}),
    license: 'Apache-2.0',
    type: 'module',
    engines: { node: '>=22.13' },
    exports,
    ...(m.bin ? { bin: m.bin } : {}),
    ...(m.dependencies ? { dependencies: m.dependencies } : {}),
    ...(m.peerDependencies ? { peerDependencies: m.peerDependencies } : {}),
    ...(m.peerDependenciesMeta ? { peerDependenciesMeta: m.peerDependenciesMeta } : {}),
  };
}

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 900_000 });
}

export function packAll(out: string, build: boolean): string[] {
  if (build) {
    run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', 'tsconfig.build.json'], ROOT);
    if (!existsSync(join(ROOT, 'packages', 'dashboard', 'dist', 'index.html'))) run('npm', ['run', '-s', 'build:dashboard'], ROOT);
  }
  mkdirSync(out, { recursive: true });
  const stage = mkdtempSync(join(tmpdir(), 'mandate-pack-'));
  const tarballs: string[] = [];
  try {
    for (const name of PUBLISHABLE) {
      const pkgDir = join(ROOT, 'packages', name);
      const dir = join(stage, name);
      mkdirSync(dir);
      if (!existsSync(join(pkgDir, 'dist'))) throw new Error(`packages/${name}/dist is missing: run without --no-build`);
      cpSync(join(pkgDir, 'dist'), join(dir, 'dist'), { recursive: true, filter: (p) => !p.endsWith('.tsbuildinfo') });
      cpSync(join(ROOT, 'LICENSE'), join(dir, 'LICENSE'));
      if (existsSync(join(pkgDir, 'README.md'))) cpSync(join(pkgDir, 'README.md'), join(dir, 'README.md'));
      const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as Manifest;
      if (name === 'cli') {
        cpSync(join(pkgDir, 'bin'), join(dir, 'bin'), { recursive: true });
        cpSync(join(ROOT, 'examples', 'policies'), join(dir, 'policies'), { recursive: true });
      }
      if (name === 'server') cpSync(join(ROOT, 'packages', 'dashboard', 'dist'), join(dir, 'dashboard'), { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify(publishedManifest(manifest), null, 2) + '\n');
      const file = run('npm', ['pack', '--silent', '--pack-destination', out], dir).trim().split('\n').pop();
      if (!file) throw new Error(`npm pack printed no file name for ${manifest.name}`);
      tarballs.push(join(out, file));
    }
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  return tarballs;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, 'no-build': { type: 'boolean' } } });
  const out = resolve(values.out ?? join(ROOT, 'dist', 'packages'));
  for (const t of packAll(out, values['no-build'] !== true)) process.stdout.write(t + '\n');
}
