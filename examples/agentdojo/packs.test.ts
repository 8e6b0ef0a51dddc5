/**
 * The AgentDojo policy packs are written from the tool catalogues, not from the benchmark's data:
 * no e-mail address, IBAN, URL or domain appears in them, and no string an attacker's call
 * carried in the recorded traces. They load and validate, and classify every catalogued tool.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { extractTokens } from '@mandate/core';
import { loadPolicyDir, sha256Hasher } from '@mandate/server';

const PACKS = join(import.meta.dirname);
const SUITES = ['workspace', 'banking', 'travel', 'slack'];
const DATA = process.env['AGENTDOJO_DIR'] ?? '/work/shared/benchmarks/agentdojo';
const hasData = existsSync(join(DATA, 'catalog'));

function packText(suite: string): string {
  const dir = join(PACKS, suite);
  return readdirSync(dir)
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
}

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

describe('AgentDojo policy packs', () => {
  it.each(SUITES)('%s loads, validates and classifies its tools', (suite) => {
    const set = loadPolicyDir(join(PACKS, suite), sha256Hasher);
    expect(set.policies.length).toBeGreaterThan(2);
    if (hasData) {
      const catalog = JSON.parse(readFileSync(join(DATA, 'catalog', `${suite}.json`), 'utf8')) as { tools: { name: string }[] };
      const classified = new Set(set.catalog.entries.map((e) => e.name));
      expect(catalog.tools.map((t) => t.name).filter((n) => !classified.has(n))).toEqual([]);
    }
    set.dispose();
  });

  it.each(SUITES)('%s holds no e-mail address, IBAN, URL, domain or account number', (suite) => {
    const found = extractTokens(packText(suite)).filter((t) => t.kind !== 'path');
    expect(found).toEqual([]);
    // domains outside the extractor's list of top-level domains, too (policy ids and Cedar
    // attribute paths are dotted names of their own, not hosts)
    const text = packText(suite)
      .replace(/@id\("[^"]*"\)/g, '')
      .replace(/\b(?:context|resource|principal)(?:\.\w+)+/g, '')
      .replace(/\*\.(?:cedar|yaml)\b/g, '');
    expect(text.match(/\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b/gi) ?? []).toEqual([]);
  });

  it.skipIf(!hasData)('holds no string that an attacker-induced call carried in the recorded traces', () => {
    const packs = SUITES.map(packText).join('\n').toLowerCase();
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
