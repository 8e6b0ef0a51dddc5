/**
 * The Dockerfile and compose.yaml, checked without a container engine (none is available where
 * the tests run, so the image is not built here): the instructions parse, every file the build
 * copies exists in the build context and is not excluded by .dockerignore, the scripts it runs
 * exist, the final stage runs as a non-root user with a health check on /readyz and the data
 * folder on a volume; compose runs three nodes on PostgreSQL, each with its own data volume, on a
 * read-only root file system, with a configuration Mandate accepts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '@mandate/server';

const ROOT = join(import.meta.dirname, '..', '..', '..');

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions: comments dropped, continued lines joined */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = pending + raw;
    if (line.endsWith('\\')) {
      pending = line.slice(0, -1) + ' ';
      continue;
    }
    pending = '';
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (m) out.push({ op: (m[1] as string).toUpperCase(), args: (m[2] as string).trim() });
    else expect(line.trim(), `a line that is no instruction: ${line}`).toBe('');
  }
  return out;
}

/** the stages, by name: each with its instructions */
function stages(list: Instruction[]): Map<string, Instruction[]> {
  const out = new Map<string, Instruction[]>();
  let current: Instruction[] | undefined;
  for (const i of list) {
    if (i.op === 'FROM') {
      const name = /\bAS\s+(\S+)$/i.exec(i.args)?.[1];
      expect(name, `every stage is named: FROM ${i.args}`).toBeDefined();
      current = [];
      out.set(name as string, current);
    } else {
      expect(current, `${i.op} before any FROM`).toBeDefined();
      current?.push(i);
    }
  }
  return out;
}

function dockerignore(): RegExp[] {
  return readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((p) => new RegExp('^' + p.replace(/\./g, '\\.').replace(/\*\*\//g, '(.*/)?').replace(/\*/g, '[^/]*') + '(/.*)?$'));
}

describe('the Dockerfile', () => {
  const all = instructions(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const byStage = stages(all);
  const names = [...byStage.keys()];
  const final = byStage.get(names.at(-1) as string) as Instruction[];

  it('has a build stage and a runtime stage from the same Node 24 image', () => {
    expect(names.length).toBeGreaterThanOrEqual(2);
    const bases = all.filter((i) => i.op === 'FROM').map((i) => i.args.split(/\s+/)[0]);
    for (const b of bases) expect(b).toMatch(/^node:24[-.\w]*$/);
  });

  it('copies only files that exist in the build context (the repository root) and that .dockerignore keeps', () => {
    const ignored = dockerignore();
    for (const [stage, list] of byStage) {
      for (const copy of list.filter((i) => i.op === 'COPY' || i.op === 'ADD')) {
        const words = copy.args.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const paths = words.filter((w) => !w.startsWith('--'));
        const sources = paths.slice(0, -1);
        expect(sources.length, `${stage}: ${copy.args}`).toBeGreaterThan(0);
        if (from !== undefined) {
          expect(names.slice(0, names.indexOf(stage)), `${stage} copies from an earlier stage`).toContain(from);
          continue;
        }
        for (const src of sources) {
          expect(existsSync(join(ROOT, src)), `${stage}: COPY ${src} exists`).toBe(true);
          expect(ignored.some((re) => re.test(src)), `${stage}: COPY ${src} is not excluded by .dockerignore`).toBe(false);
        }
      }
    }
    // what the build needs is not excluded: the lock file, the packages' sources, the pack script
    expect(dockerignore().some((re) => re.test('packages/cli/src/main.ts') || re.test('package-lock.json') || re.test('scripts/pack.ts'))).toBe(false);
  });

  it('builds with the scripts package.json defines (npm ci, then the pack script)', () => {
    const build = byStage.get(names[0] as string) as Instruction[];
    const run = build.filter((i) => i.op === 'RUN').map((i) => i.args).join(' ');
    expect(run).toContain('npm ci');
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const m of run.matchAll(/npm run(?: -s)? ([\w:-]+)/g)) expect(Object.keys(scripts)).toContain(m[1]);
    expect(scripts['pack:packages']).toContain('scripts/pack.ts');
  });

  it('runs the installed mandate as a non-root user, with /readyz as health check and the data folder on a volume', () => {
    const user = final.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    const health = final.find((i) => i.op === 'HEALTHCHECK')?.args ?? '';
    expect(health).toContain('/readyz');
    const env = final.filter((i) => i.op === 'ENV').map((i) => i.args).join(' ');
    const dataDir = /MANDATE_DATA_DIR=(\S+)/.exec(env)?.[1];
    expect(dataDir).toBeDefined();
    expect(final.find((i) => i.op === 'VOLUME')?.args).toContain(dataDir);
    expect(final.find((i) => i.op === 'ENTRYPOINT')?.args).toContain('node_modules/.bin/mandate');
    // the image's port is the server's
    expect(final.find((i) => i.op === 'EXPOSE')?.args).toBe(/MANDATE_PORT=(\d+)/.exec(env)?.[1]);
  });
});

describe('compose.yaml', () => {
  const doc = parseYaml(readFileSync(join(ROOT, 'compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<string, { build?: { context: string; dockerfile: string }; read_only?: boolean; environment?: Record<string, string>; volumes?: string[]; image?: string }>;
    volumes: Record<string, unknown>;
  };
  const nodes = Object.entries(doc.services).filter(([, s]) => s.build !== undefined);

  it('runs three Mandate nodes from this Dockerfile on one PostgreSQL, each with a data volume of its own, read-only', () => {
    expect(nodes).toHaveLength(3);
    const db = Object.entries(doc.services).find(([, s]) => s.image?.startsWith('postgres:'));
    expect(db).toBeDefined();
    const dataVolumes = new Set<string>();
    for (const [name, s] of nodes) {
      expect(s.build, name).toEqual({ context: '.', dockerfile: 'Dockerfile' });
      expect(s.read_only, name).toBe(true);
      expect(s.environment?.['MANDATE_STORE'], name).toMatch(new RegExp(`^postgres://[^@]+@${db?.[0] ?? '?'}:5432/`));
      const data = (s.volumes ?? []).find((v) => v.endsWith(':/var/lib/mandate'));
      expect(data, `${name} mounts a data volume`).toBeDefined();
      dataVolumes.add((data as string).split(':')[0] as string);
      for (const v of s.volumes ?? []) {
        const host = v.split(':')[0] as string;
        if (host.startsWith('./') && !host.startsWith('./deploy/secrets')) expect(existsSync(join(ROOT, host)), `${name}: ${host} exists`).toBe(true);
        else if (!host.startsWith('./')) expect(Object.keys(doc.volumes), `${name}: volume ${host} is declared`).toContain(host);
      }
    }
    expect(dataVolumes.size).toBe(3);
  });

  it('gives the nodes a configuration Mandate accepts, on PostgreSQL with shared key files', () => {
    const config = loadConfig(join(ROOT, 'deploy', 'mandate.yaml'), { MANDATE_STORE: 'postgres://mandate:mandate@db:5432/mandate' });
    expect(config.store).toMatch(/^postgres:/);
    expect(config.data_dir).toBe('/var/lib/mandate');
    expect(config.audit.key_file).toMatch(/^\/etc\/mandate\/secrets\//);
    expect(config.keys.kek_file).toMatch(/^\/etc\/mandate\/secrets\//);
    expect(config.server.host).toBe('0.0.0.0');
  });
});
