/**
 * The AgentDojo suites are governed by one rule set, the shipped baseline
 * (policies/agent-baseline), and each suite's folder holds only facts about its tools
 * (tools.yaml: category, sink and content arguments, trusted output), written from the tool
 * catalogues, not from the benchmark's data: no e-mail address, IBAN, URL or domain appears in
 * the baseline or the facts, and no string an attacker's call carried in the recorded traces.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { extractTokens } from '@mandate/core';
import { loadPolicyDir, sha256Hasher } from '@mandate/server';

const PACKS = join(import.meta.dirname);
const BASELINE = join(import.meta.dirname, '..', '..', 'policies', 'agent-baseline');
const SUITES = ['workspace', 'banking', 'travel', 'slack'];
const DATA = process.env['AGENTDOJO_DIR'] ?? '/work/shared/benchmarks/agentdojo';
const hasData = existsSync(join(DATA, 'catalog'));

function folderText(dir: string): string {
  return readdirSync(dir)
    .filter((f) => !f.endsWith('.test.ts'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
}

/** every folder whose text must hold no benchmark data: the baseline and each suite's facts */
const FOLDERS: [string, string][] = [
  ['agent-baseline', BASELINE],
  ...SUITES.map((s): [string, string] => [s, join(PACKS, s)]),
  // the facts written from the catalogue alone, to score the baseline blind (bench/agentdojo.ts --facts)
  ['banking (blind)', join(PACKS, '..', 'agentdojo-blind', 'banking')],
];

function jsonl(file: string): Record<string, unknown>[] {
  return gunzipSync(readFileSync(file)).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** every string (and number) inside a JSON value */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (typeof v === 'number') out.push(String(v));
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) strings(x, out);
  return out;
}

/** the categories the baseline permits at all (its known-category rule) */
function baselineCategories(): string[] {
  const text = readFileSync(join(BASELINE, 'baseline.cedar'), 'utf8');
  const rule = /@id\("baseline\.call\.known-category"\)[\s\S]*?\[([^\]]*)\]\.contains\(resource\.category\)/.exec(text);
  return [...(rule?.[1] ?? '').matchAll(/"([a-z_]+)"/g)].map((m) => m[1] as string);
}

describe('AgentDojo suites under the agent baseline', () => {
  it.each(SUITES)('%s holds only tool facts, which load and validate with the baseline and classify every catalogued tool', (suite) => {
    expect(readdirSync(join(PACKS, suite))).toEqual(['tools.yaml']);
    const set = loadPolicyDir([BASELINE, join(PACKS, suite)], sha256Hasher);
    expect(set.policies.every((p) => p.source.startsWith('agent-baseline/'))).toBe(true);
    const known = new Set(baselineCategories());
    expect(set.catalog.entries.filter((e) => !known.has(e.category)).map((e) => e.name)).toEqual([]);
    if (hasData) {
      const catalog = JSON.parse(readFileSync(join(DATA, 'catalog', `${suite}.json`), 'utf8')) as { tools: { name: string; parameters?: { properties?: Record<string, unknown> } }[] };
      const classified = new Set(set.catalog.entries.map((e) => e.name));
      expect(catalog.tools.map((t) => t.name).filter((n) => !classified.has(n))).toEqual([]);
      // the arguments the facts name exist in the catalogue's schemas
      for (const e of set.catalog.entries) {
        const params = Object.keys(catalog.tools.find((t) => t.name === e.name)?.parameters?.properties ?? {});
        expect([...e.sink_args, ...e.content_args].filter((a) => !params.includes(a)), e.name).toEqual([]);
      }
    }
    set.dispose();
  });

  it('the baseline governs every category it permits: each has a rule of its own or is the read category, which only informs', () => {
    const text = readFileSync(join(BASELINE, 'baseline.cedar'), 'utf8');
    const forbids = text.split(/(?=@id\()/).filter((p) => /\bforbid\b/.test(p));
    for (const c of baselineCategories()) {
      if (c === 'read') continue;
      expect(forbids.some((p) => p.includes(`"${c}"`)), c).toBe(true);
    }
  });

  it.each(FOLDERS)('%s holds no e-mail address, IBAN, URL, domain or account number', (_name, dir) => {
    const found = extractTokens(folderText(dir)).filter((t) => t.kind !== 'path');
    expect(found).toEqual([]);
    // domains outside the extractor's list of top-level domains, too (policy ids, Cedar
    // attribute paths and output key paths are dotted names of their own, not hosts)
    const text = folderText(dir)
      .replace(/@id\("[^"]*"\)/g, '')
      .replace(/\b(?:context|resource|principal)(?:\.\w+)+/g, '')
      .replace(/\b[\w-]+\.(?:cedar|yaml|md|ts|jsonl|gz)\b/g, '');
    expect(text.match(/\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b/gi) ?? []).toEqual([]);
  });

  it.skipIf(!hasData)('holds no string that an attacker-induced call carried in the recorded traces', () => {
    const packs = FOLDERS.map(([, dir]) => folderText(dir)).join('\n').toLowerCase();
    const leaked = new Set<string>();
    let checked = 0;
    for (const suite of ['workspace', 'banking']) {
      const traces = new Map(jsonl(join(DATA, 'traces', `${suite}.jsonl.gz`)).map((t) => [t['id'] as string, t]));
      for (const label of jsonl(join(DATA, 'labels', `${suite}.jsonl.gz`))) {
        const steps = (traces.get(label['id'] as string)?.['steps'] ?? []) as { args: unknown }[];
        for (const call of label['calls'] as { step: number; label: string }[]) {
          if (call.label !== 'attack') continue;
          for (const s of strings(steps[call.step]?.args)) {
            const v = s.trim().toLowerCase();
            // short values ("13", "me", "true") are in any text; a value is compared as a whole word
            // a bare number, or one short everyday word ("files", "payment"), is vocabulary, not a value
            if (v.length < 4 || /^[\d.:-]+$/.test(v) || /^[a-z]{1,7}$/.test(v)) continue;
            checked += 1;
            if (new RegExp(`(?<![\\w])${v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w])`).test(packs)) leaked.add(v);
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
    expect([...leaked]).toEqual([]);
  });
});
