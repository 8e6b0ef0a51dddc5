/**
 * Purpose words only narrow: a verb a purpose names to forbid, exclude or make conditional never
 * declares that action. The corpus (purpose-corpus.json) is written the way operators describe
 * tasks; every case names the tools whose drift must stay raised and those that must stay quiet.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectDrift } from '../../src/index.ts';
import { call, config, input } from './trace.ts';

interface Case {
  purpose: string;
  raised?: string[];
  quiet?: string[];
  note?: string;
}

const corpus = JSON.parse(readFileSync(new URL('./purpose-corpus.json', import.meta.url), 'utf8')) as { cases: Case[] };
const cfg = config().detectors.drift;
const T = Date.UTC(2026, 10, 2, 10, 0, 0);

function driftOf(purpose: string, tool: string) {
  return detectDrift(input(purpose, [call('helpdesk.search_tickets', T), call(tool, T + 1000)]), cfg);
}

describe('purpose words only narrow (the corpus)', () => {
  it('holds at least 50 phrasings, each with something to check', () => {
    expect(corpus.cases.length).toBeGreaterThanOrEqual(50);
    for (const c of corpus.cases) expect((c.raised?.length ?? 0) + (c.quiet?.length ?? 0)).toBeGreaterThan(0);
  });

  it('silences no drift signal with a negated, excluded or conditional verb, and keeps declared actions quiet', () => {
    const silenced: string[] = [];
    const noisy: string[] = [];
    for (const c of corpus.cases) {
      for (const tool of c.raised ?? []) if (driftOf(c.purpose, tool).length === 0) silenced.push(`${tool} under ${JSON.stringify(c.purpose)}`);
      for (const tool of c.quiet ?? []) {
        const s = driftOf(c.purpose, tool);
        if (s.length > 0) noisy.push(`${tool} under ${JSON.stringify(c.purpose)}: ${s.map((x) => String(x.evidence['class'])).join(', ')}`);
      }
    }
    expect(silenced).toEqual([]);
    expect(noisy).toEqual([]);
  });

  it('gives a forbidden verb the same drift as a purpose that never names it', () => {
    const plain = driftOf('summarise support tickets', 'payments.transfer');
    const forbidding = driftOf('summarise support tickets; never transfer money, never run shell commands', 'payments.transfer');
    expect(plain.length).toBeGreaterThan(0);
    expect(forbidding.map((s) => [s.severity, s.evidence['class']])).toEqual(plain.map((s) => [s.severity, s.evidence['class']]));
  });
});
