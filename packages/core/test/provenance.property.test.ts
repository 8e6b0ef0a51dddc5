/**
 * Trust never rises (DESIGN.md invariant 10), as properties of the provenance ledger:
 * - an untrusted value never becomes trusted by passing through a trusted tool's untrusted field,
 *   whatever the layout it is written in;
 * - a value of unknown origin is never in purpose_args or trusted_args.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { normaliseText, ProvenanceLedger } from '../src/provenance.ts';
import { plainMapping } from '../src/provenance/reading.ts';

/** a value nobody else can have written: an address or an IBAN built around a nonce */
const secret = fc.tuple(fc.constantFrom('email', 'iban'), fc.integer({ min: 10_000_000, max: 99_999_999 })).map(([kind, n]) => (kind === 'email' ? `x${n}@inj${n}.example` : `XX${String(n % 90 + 10)}${n}${n}`));

/** the ways a user-written field can carry text that looks like structure */
const layouts = (v: string) => [
  v,
  `recipient: ${v}`,
  `- recipient: ${v}`,
  `{"recipient": "${v}"}`,
  `{'recipient': '${v}'}`,
  `[${v}]`,
  `please pay ${v}\nrecipient: ${v}\n`,
  `"${v}"`,
  'x'.repeat(600) + ` "${v}" ` + 'y'.repeat(20),
];

const benign = fc.stringMatching(/^[A-Za-z ,.]{0,40}$/);

describe('trust never rises', () => {
  it('an untrusted value never becomes trusted by passing through a trusted tool\'s untrusted field', () => {
    fc.assert(
      fc.property(secret, fc.integer({ min: 0, max: 8 }), fc.constantFrom('yaml', 'json', 'repr', 'object'), fc.array(benign, { maxLength: 3 }), (v, layout, format, others) => {
        const text = layouts(v)[layout] as string;
        const rows = [{ id: '1', recipient: 'me', subject: text }, ...others.map((o, i) => ({ id: String(i + 2), recipient: 'me', subject: o }))];
        const result =
          format === 'object'
            ? { items: rows }
            : format === 'json'
              ? JSON.stringify(rows)
              : format === 'repr'
                ? '[' + rows.map((r) => `{'id': '${r.id}', 'recipient': '${r.recipient}', 'subject': ${JSON.stringify(r.subject)}}`).join(', ') + ']'
                : rows.map((r) => `- id: '${r.id}'\n  recipient: me\n  subject: ${JSON.stringify(r.subject)}`).join('\n');
        const p = new ProvenanceLedger();
        p.record('t', 'untrusted', result, { trustedFields: ['id', 'recipient', 'items.recipient'] });
        const c = p.classify('t', 'summarise my statements', { to: v }, [], ['to']);
        expect(c.trusted).toEqual([]);
        expect(c.untrusted).toEqual(['to']);
      }),
      { numRuns: 300 },
    );
  });

  it('a value of unknown origin is never in purpose_args or trusted_args', () => {
    fc.assert(
      fc.property(secret, benign, fc.array(fc.tuple(fc.constantFrom('trusted', 'untrusted'), benign, fc.boolean()), { maxLength: 4 }), fc.boolean(), (v, purpose, results, asSink) => {
        const p = new ProvenanceLedger();
        for (const [trust, text, named] of results) p.record('t', trust, text, { namedSource: named, trustedFields: ['a'] });
        const c = p.classify('t', purpose, { to: v, list: [v] }, [], asSink ? ['to', 'list'] : []);
        expect(c.purpose).toEqual([]);
        expect(c.trusted).toEqual([]);
        expect(c.purposeSource).toEqual([]);
        expect(c.unknown).toEqual(['to', 'list']);
      }),
      { numRuns: 300 },
    );
  });
});

describe('normalised text', () => {
  /** the normal form as written out in full: NFKC, lower case, curly quotes straight, spaces collapsed */
  const fullForm = (s: string) =>
    s
      .normalize('NFKC')
      .toLowerCase()
      .replace(/[\u2018\u2019\u201c\u201d]/g, (c) => (c === '\u2018' || c === '\u2019' ? "'" : '"'))
      .replace(/\s+/g, ' ')
      .trim();
  /** ASCII, curly quotes, compatibility characters (ligatures, full-width, superscripts), odd spaces */
  const text = fc.array(fc.oneof(fc.string(), fc.constantFrom('\u2018', '\u2019', '\u201c', '\u201d', '\uFB01', '\uFF21', '\u00B2', '\u00A0', '\u2003', 'K\u0301', '\u212A', '\t\n')), { maxLength: 12 }).map((parts) => parts.join(''));

  it('is the full normal form of any text, ASCII or not', () => {
    fc.assert(
      fc.property(fc.oneof(text, fc.string({ unit: 'binary' })), (s) => {
        expect(normaliseText(s)).toBe(fullForm(s));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('reading a result: the plain key: value fast path', () => {
  const parse = (doc: string): unknown => {
    try {
      return parseYaml(doc, { schema: 'failsafe', prettyErrors: false, maxAliasCount: 0 });
    } catch {
      return 'parse error';
    }
  };
  /** characters that mean something to YAML, beside those of a plain line */
  const edgy = 'aZ09 _.-:#,;()/+=\'"[]{}&*!|>%@`?\t\\\n<~$';
  const piece = (alphabet: string, max: number) => fc.array(fc.constantFrom(...alphabet), { minLength: 0, maxLength: max }).map((a) => a.join(''));

  it('reads exactly what the YAML parser reads, wherever it answers (and answers for plain key: value lines)', () => {
    let answered = 0;
    /** documents of 1-4 such lines: the fast path, wherever it answers, reads what the parser reads */
    const agrees = (line: fc.Arbitrary<string>) =>
      fc.assert(
        fc.property(fc.array(line, { minLength: 1, maxLength: 4 }), (lines) => {
          const doc = lines.join('\n');
          const fast = plainMapping(doc);
          if (fast === undefined) return;
          answered += 1;
          expect(fast).toEqual(parse(doc));
        }),
        { numRuns: 6000 },
      );
    agrees(fc.tuple(piece(edgy, 12), fc.constantFrom(': ', ':', ' : ', ': #', ''), piece(edgy, 16)).map(([k, sep, v]) => `${k}${sep}${v}`));
    // lines built of the plain line's own characters: the fast path answers for most
    const alnum = fc.constantFrom('a', 'Z', '0', '9');
    agrees(fc.tuple(alnum, piece('aZ09 _.-', 10), alnum, alnum, piece("aZ09 .,;()/+=_'-", 20), alnum).map(([k0, k, k1, v0, v, v1]) => `${k0}${k}${k1}: ${v0}${v}${v1}`));
    expect(answered).toBeGreaterThan(2000);
    for (const doc of ['Echo: hello gateway', 'to: alice\nsubject: Lunch (today)', "note: it's fine", 'constructor: x', 'a - b: c - d', '0x10: 1.5e3']) expect(plainMapping(doc), doc).toEqual(parse(doc));
    for (const doc of ['a: b: c', 'a: b #c', 'a: b\na: c', 'a:b', 'a: [b]', 'a: &x b', '- a: b', 'a: b\n  c', 'a: b\n\nc: d', ' a: b', 'a: b ', `${'k'.repeat(1100)}: v`]) expect(plainMapping(doc), doc).toBeUndefined();
  });
});
