import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { matchChain, type CallEvent } from '@mandate/core';
import { parseConfig } from '@mandate/server';

const PAGE = readFileSync(join(import.meta.dirname, '..', '..', '..', '..', 'docs', 'containment.md'), 'utf8');

describe('the behaviour example in docs/containment.md', () => {
  it('is a valid configuration, and its chain rules match the stories they tell', () => {
    const block = /```yaml\n(behaviour:\n[\s\S]*?)```/.exec(PAGE)?.[1];
    expect(block).toBeDefined();
    const config = parseConfig(parseYaml(block as string) as Record<string, unknown>);
    expect(config.behaviour.enabled).toBe(true);
    const rules = config.behaviour.detectors.chains.rules;
    expect(rules.map((r) => r.id)).toEqual(['secret-then-external', 'untrusted-recipient', 'search-then-bulk-export']);
    const ev = (i: number, over: Partial<CallEvent>): CallEvent => ({
      ts: i, callId: `c${i}`, tool: 'x', category: 'read', risk: 'low', dataClasses: [], resourceKind: undefined, argShape: '', untrustedArgs: [], policyEffect: 'allow', denied: false, argsHash: '', ...over,
    });
    const [secret, untrusted, bulk] = rules;
    expect(matchChain(secret!, [ev(1, { dataClasses: ['secret'] }), ev(2, {})], ev(3, { category: 'external_sink' }))).toEqual(['c1', 'c3']);
    expect(matchChain(untrusted!, [], ev(1, { category: 'external_sink', untrustedArgs: ['to'] }))).toEqual(['c1']);
    expect(matchChain(bulk!, [ev(1, { tool: 'crm.search_contacts' })], ev(2, { tool: 'crm.export_contacts', resourceKind: 'customer' }))).toEqual(['c1', 'c2']);
    expect(matchChain(bulk!, [ev(1, { tool: 'crm.search_contacts' })], ev(2, { tool: 'crm.export_contacts', resourceKind: 'invoice' }))).toBeUndefined();
  });
});
