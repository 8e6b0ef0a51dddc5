// The README and docs/*.md stay navigable and honest: every relative link and #anchor resolves,
// the README stays short, and every shell block in the README either runs as written (cheap CLI
// commands, run here in the repository root) or says why it cannot (```sh needs-server / slow);
// so does every shell block in docs/*.md, run in a temporary folder that sees the repository's
// files (package.json, node_modules, packages, examples, policies) and a `mandate` on the PATH.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const DOCS = join(ROOT, 'docs');
const FILES = [join(ROOT, 'README.md'), ...readdirSync(DOCS).filter((f) => f.endsWith('.md')).map((f) => join(DOCS, f))];

/** the text outside fenced code blocks, with inline code spans blanked */
function prose(md: string): string {
  const out: string[] = [];
  let fence = false;
  for (const line of md.split('\n')) {
    if (/^\s*```/.test(line)) { fence = !fence; continue; }
    if (!fence) out.push(line.replace(/`[^`]*`/g, ''));
  }
  return out.join('\n');
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered */
function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fence = false;
  for (const line of md.split('\n')) {
    if (/^\s*```/.test(line)) { fence = !fence; continue; }
    const m = fence ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = (m[1] ?? '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function links(md: string): string[] {
  return [...prose(md).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1] ?? '');
}

describe('the README and docs', () => {
  it('every relative link and #anchor in README.md and docs/*.md resolves', () => {
    const broken: string[] = [];
    for (const file of FILES) {
      const md = readFileSync(file, 'utf8');
      for (const link of links(md)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto: …
        const [path = '', anchor] = link.split('#', 2);
        const target = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
        const where = `${relative(ROOT, file)}: ${link}`;
        if (!existsSync(target)) { broken.push(`${where} (no such file)`); continue; }
        if (anchor === undefined) continue;
        if (statSync(target).isDirectory() || !target.endsWith('.md')) { broken.push(`${where} (anchor into a non-Markdown target)`); continue; }
        if (!anchors(readFileSync(target, 'utf8')).has(anchor)) broken.push(`${where} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('the anchor rule matches GitHub on the headings these docs use', () => {
    expect([...anchors('# Replay and AgentDojo\n## `mandate replay`: the CLI\n## Step-up approvals\n## Audit\n## Audit\n')])
      .toEqual(['replay-and-agentdojo', 'mandate-replay-the-cli', 'step-up-approvals', 'audit', 'audit-1']);
  });

  it('the README stays short (≤ 300 lines)', () => {
    const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').length;
    expect(lines).toBeLessThanOrEqual(300);
  });

  it('every shell block in the README runs as written, or is marked needs-server or slow', () => {
    const md = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const blocks = [...md.matchAll(/^```(sh|bash|shell)([^\n]*)\n([\s\S]*?)^```/gm)];
    expect(blocks.length).toBeGreaterThan(0);
    const runnable = blocks.filter((b) => !/\b(needs-server|slow)\b/.test(b[2] ?? ''));
    expect(runnable.length, 'the README shows at least one command that runs as written').toBeGreaterThan(0);
    for (const b of runnable) {
      const script = b[3] ?? '';
      try {
        execFileSync('sh', ['-ec', script], { cwd: ROOT, stdio: 'pipe', timeout: 120_000 });
      } catch (e) {
        const err = e as { status?: number; stderr?: Buffer };
        expect.fail(`README block failed (exit ${err.status}):\n${script}\n${err.stderr?.toString() ?? ''}`);
      }
    }
  }, 300_000);
});

/** why a block is not run: it needs a running server, takes minutes (or the network), or needs an installation's own files and values */
const MARKER = /\b(needs-server|slow|needs-deployment)\b/;

function shellBlocks(md: string): Array<{ line: number; info: string; script: string }> {
  return [...md.matchAll(/^```(sh|bash|shell)([^\n]*)\n([\s\S]*?)^```/gm)].map((m) => ({ line: md.slice(0, m.index).split('\n').length, info: m[2] ?? '', script: m[3] ?? '' }));
}

/** a folder of its own for a block: the repository's files linked in, writes stay inside it */
function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-docs-block-'));
  for (const name of ['package.json', 'node_modules', 'packages', 'examples', 'policies']) symlinkSync(join(ROOT, name), join(dir, name));
  const bin = join(dir, '.bin');
  execFileSync('mkdir', [bin]);
  writeFileSync(join(bin, 'mandate'), `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, 'packages', 'cli', 'bin', 'mandate.js')}" "$@"\n`);
  chmodSync(join(bin, 'mandate'), 0o755);
  return dir;
}

/**
 * Runs a block in its own folder and process group; the group is stopped when the block ends or
 * after a minute, so that a server a block starts never outlives it.
 */
function run(script: string): Promise<string | undefined> {
  const dir = scratch();
  const env = { ...process.env, PATH: `${join(dir, '.bin')}:${dirname(process.execPath)}:${process.env['PATH'] ?? ''}` };
  return new Promise((done) => {
    const child = spawn('sh', ['-ec', script], { cwd: dir, env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
    const stopGroup = () => { try { process.kill(-(child.pid ?? 0), 'SIGKILL'); } catch { /* the group is gone */ } };
    const timer = setTimeout(stopGroup, 60_000);
    // on exit, not close: a process left behind may hold stderr open
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      stopGroup();
      rmSync(dir, { recursive: true, force: true });
      done(code === 0 ? undefined : `exit ${code ?? signal}: ${stderr}`);
    });
  });
}

describe('the shell blocks in docs/', () => {
  it('every shell block in docs/*.md runs as written in a scratch folder, or is marked needs-server, slow or needs-deployment', async () => {
    const blocks = readdirSync(DOCS).filter((f) => f.endsWith('.md')).sort().flatMap((f) => shellBlocks(readFileSync(join(DOCS, f), 'utf8')).map((b) => ({ ...b, where: `docs/${f}:${b.line}` })));
    expect(blocks.length).toBeGreaterThan(20);
    const runnable = blocks.filter((b) => !MARKER.test(b.info));
    expect(runnable.length, 'docs/ shows at least one command that runs as written').toBeGreaterThan(0);
    // two at a time: each starts the CLI (a second or so of CPU) on a shared machine
    const failures: string[] = [];
    const queue = [...runnable];
    await Promise.all([0, 1].map(async () => {
      for (let b = queue.shift(); b !== undefined; b = queue.shift()) {
        const problem = await run(b.script);
        if (problem !== undefined) failures.push(`${b.where} failed (${problem})\n${b.script}`);
      }
    }));
    expect(failures).toEqual([]);
  }, 240_000);

  it('a block that fails is reported', async () => {
    expect(await run('mandate policy validate ./no-such-folder')).toMatch(/^exit [1-9]/);
    expect(await run('mandate --version')).toBeUndefined();
  }, 60_000);

  it('a process a block leaves behind (a server) is stopped with it', async () => {
    const marker = `${process.pid}${Date.now()}`.slice(-9);
    expect(await run(`(sleep 1${marker} &) ; echo started`)).toBeUndefined();
    const alive = (): boolean => {
      try {
        execFileSync('pgrep', ['-f', `sleep 1${marker}`], { stdio: 'ignore' });
        return true;
      } catch {
        return false; // pgrep exits 1 when nothing matches
      }
    };
    // a killed process can linger a moment before it is reaped
    for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive()).toBe(false);
  }, 60_000);
});
