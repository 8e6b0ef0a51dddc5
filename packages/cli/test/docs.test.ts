// The README and docs/*.md stay navigable and honest: every relative link and #anchor resolves,
// the README stays short, and every shell block in the README either runs as written (cheap CLI
// commands, run here in the repository root) or says why it cannot (```sh needs-server / slow).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
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
