/** How drift reads a purpose: clauses, cues, and what a cue reaches (purpose.ts). */
import { describe, expect, it } from 'vitest';
import { readPurpose, verbForms } from '../../src/index.ts';

describe('reading a purpose', () => {
  const isVerb = (w: string) => ['send', 'transfer', 'draft', 'run'].includes(w);
  const read = (p: string) => readPurpose(p.toLowerCase(), isVerb).map((c) => `${c.negated ? '-' : '+'}${c.words.join(' ')}`);

  it('cuts clauses at sentence ends, semicolons and connectors, not inside a tool name', () => {
    expect(read('Never call payments.transfer; then send the summary.')).toEqual(['-never call payments transfer', '+then send the summary']);
  });

  it('keeps a comma list under its negation, and splits at a comma only when a cue follows', () => {
    expect(read('never transfer money, delete files or run shell commands')).toEqual(['-never transfer money delete files or run shell commands']);
    expect(read('draft replies, never send them')).toEqual(['+draft replies', '-never send them']);
  });

  it('lets a bare negation or a verbless condition answer the clause before it', () => {
    expect(read('transfers: never')).toEqual(['-transfers', '-never']);
    expect(read('transfer money, only with approval')).toEqual(['-transfer money', '-only with approval']);
    expect(read('send the report, never to outsiders')).toEqual(['+send the report', '-never to outsiders']);
  });

  it('reads a purpose of the longest size a mandate allows', () => {
    const long = 'do not transfer money, '.repeat(170);
    expect(readPurpose(long, isVerb).every((c) => c.negated)).toBe(true);
  });
});

describe('verb forms', () => {
  it('matches a verb with its regular inflections and nothing that merely starts with it', () => {
    expect(verbForms('transfer')).toEqual(expect.arrayContaining(['transfers', 'transferred', 'transferring']));
    expect(verbForms('delete')).toEqual(expect.arrayContaining(['deleted', 'deleting', 'deletes']));
    expect(verbForms('reply')).toEqual(expect.arrayContaining(['replies', 'replied', 'replying']));
    expect(verbForms('run')).toContain('running');
    expect(verbForms('pay')).not.toContain('paypal');
    expect(verbForms('post')).not.toContain('poster');
  });
});
