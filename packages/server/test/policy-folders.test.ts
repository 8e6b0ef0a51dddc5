/**
 * Several policy folders load as one set: a shipped rule set beside an organisation's facts about
 * its own tools. Their policies and catalogues join; a tool classified twice is an error, not a
 * silent choice by load order.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPolicyDir, parseConfig, sha256Hasher } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'mandate-policy-folders-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function folder(name: string, files: Record<string, string>): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(join(d, f), text);
  return d;
}

const RULES = folder('rules', { 'rules.cedar': '@id("r.calls") permit (principal, action == Mandate::Action::"call_tool", resource) when { resource.category == "read" };\npermit (principal, action == Mandate::Action::"start_task", resource);\n' });
const FACTS = folder('facts', { 'tools.yaml': 'tools:\n  - { name: kb.search, category: read, trusted_fields: [id], sink_args: [], content_args: [] }\n' });

describe('several policy folders', () => {
  it('load as one set: the policies of each (named after their folder) and the tools of all', () => {
    const set = loadPolicyDir([RULES, FACTS], sha256Hasher);
    expect(set.policies.map((p) => p.id)).toEqual(['r.calls', 'rules/rules.cedar#2']);
    expect(set.catalog.lookup('kb.search')).toMatchObject({ category: 'read', trustedFields: ['id'] });
    set.dispose();
  });

  it('refuse a tool classified in two folders, naming both', () => {
    const again = folder('again', { 'tools.yaml': 'tools:\n  - { name: kb.search, category: send }\n' });
    expect(() => loadPolicyDir([RULES, FACTS, again], sha256Hasher)).toThrow(/kb\.search is classified in both .*facts and .*again/);
  });

  it('refuse trusted fields on a trusted output, with the reason', () => {
    const bad = folder('bad', { 'tools.yaml': 'tools:\n  - { name: kb.get, category: read, output_trust: trusted, trusted_fields: [id] }\n' });
    expect(() => loadPolicyDir([RULES, bad], sha256Hasher)).toThrow(/trusted_fields only narrow an untrusted output/);
  });

  it('are configured as a list (or one folder, as before)', () => {
    expect(parseConfig({ policies: { dir: [RULES, FACTS] } }).policies.dir).toEqual([RULES, FACTS]);
    expect(parseConfig({ policies: { dir: RULES } }).policies.dir).toBe(RULES);
    expect(() => parseConfig({ policies: { dir: [] } })).toThrow();
  });
});
