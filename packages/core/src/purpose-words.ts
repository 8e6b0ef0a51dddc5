/**
 * The words of a declared purpose, as policy reads them: lower case, each inflected form also
 * under its base form ("deleting", "deleted", "deletes" → "delete"; "paid" → "pay"), and
 * negation-aware: a word inside the scope of a negation ("never", "not", "don't", "without",
 * "except", "no"…), up to the end of its clause (`,` `;` `.` `:` `!` `?` or "but"), does not count.
 * "Summarise the thread but do not reply to anyone" has "summarise" and "thread", not "reply".
 *
 * Policy tests words, never substrings: `context.task.purpose_words.contains("book")` is true for
 * "book a table" and false for "my notebook" or "Facebook". A word that occurs both inside and
 * outside a negation counts (the user asked for it somewhere).
 *
 * Pure, bounded (the purpose is at most a few thousand characters), computed once per purpose.
 */

export interface PurposeReading {
  /** every counted word, with its base forms */
  readonly words: ReadonlySet<string>;
  /** `words` as a list, in the same order (the policy context's `purpose_words`, made once) */
  readonly wordList: readonly string[];
  /** words that occur only under a negation (not in `words`) */
  readonly negated: ReadonlySet<string>;
}

/** words that open a negation's scope */
const NEGATORS = new Set([
  'not', 'never', 'no', 'nor', 'neither', 'without', 'except', 'excluding', 'unless', 'cannot', 'dont', 'doesnt', 'didnt', 'wont', 'wouldnt', 'shouldnt', 'mustnt', 'cant', 'isnt', 'arent', 'avoid', 'refrain',
]);
/** words that close it (with clause punctuation) */
const CLAUSE_BREAKS = new Set(['but', 'however', 'instead', 'then']);

/** irregular forms that policy vocabularies name by their base */
const IRREGULAR: Readonly<Record<string, string>> = {
  paid: 'pay', sent: 'send', wrote: 'write', written: 'write', made: 'make', gave: 'give', given: 'give', took: 'take', taken: 'take',
  bought: 'buy', sold: 'sell', put: 'put', set: 'set', got: 'get', gotten: 'get', left: 'leave', kept: 'keep', told: 'tell',
  forgot: 'forget', forgotten: 'forget', began: 'begin', begun: 'begin', chose: 'choose', chosen: 'choose', met: 'meet', read: 'read',
  found: 'find', brought: 'bring', thought: 'think', spent: 'spend', lent: 'lend', drew: 'draw', drawn: 'draw', withdrew: 'withdraw', withdrawn: 'withdraw',
};

const VOWELS = 'aeiou';

/** The forms a word is also counted under: its base forms by the regular English suffix rules (over-inclusive on purpose). */
export function baseForms(word: string): string[] {
  const out = [word];
  const irregular = IRREGULAR[word];
  if (irregular !== undefined) out.push(irregular);
  const stem = (s: string) => {
    if (s.length < 2) return;
    out.push(s);
    // "cancell" → "cancel", "shipp" → "ship"
    const last = s[s.length - 1] as string;
    if (s.length >= 3 && last === s[s.length - 2] && !VOWELS.includes(last)) out.push(s.slice(0, -1));
    // "delet" → "delete", "schedul" → "schedule"
    if (!VOWELS.includes(last)) out.push(s + 'e');
  };
  if (word.length > 4 && word.endsWith('ing')) stem(word.slice(0, -3));
  if (word.length > 3 && word.endsWith('ed')) {
    stem(word.slice(0, -2));
    if (word.endsWith('ied')) out.push(word.slice(0, -3) + 'y');
  }
  if (word.length > 3 && word.endsWith('ies')) out.push(word.slice(0, -3) + 'y');
  else if (word.length > 3 && word.endsWith('es')) out.push(word.slice(0, -2), word.slice(0, -1));
  else if (word.length > 2 && word.endsWith('s') && !word.endsWith('ss')) out.push(word.slice(0, -1));
  return out;
}

const TOKEN = /[a-z0-9]+(?:'[a-z]+)?|[.,;:!?]/g;

/** Reads a purpose (see the module comment). */
export function readPurposeWords(purpose: string): PurposeReading {
  const counted = new Set<string>();
  const underNegation = new Set<string>();
  const text = purpose.normalize('NFKC').toLowerCase().replace(/[\u2018\u2019]/g, "'");
  let negated = false;
  for (const m of text.matchAll(TOKEN)) {
    const tok = m[0];
    if (/^[.,;:!?]$/.test(tok)) {
      negated = false;
      continue;
    }
    // "don't" → "dont", "bob's" → "bob"
    const word = tok.endsWith("'s") ? tok.slice(0, -2) : tok.replace(/'/g, '');
    if (CLAUSE_BREAKS.has(word)) {
      negated = false;
      counted.add(word);
      continue;
    }
    if (NEGATORS.has(word)) {
      negated = true;
      continue;
    }
    for (const f of baseForms(word)) (negated ? underNegation : counted).add(f);
  }
  for (const w of counted) underNegation.delete(w);
  return { words: counted, wordList: [...counted], negated: underNegation };
}

const MAX_CACHED = 10_000;
const cache = new Map<string, PurposeReading>();

/** `readPurposeWords`, memoised per purpose text (bounded; oldest dropped first). */
export function purposeReading(purpose: string): PurposeReading {
  let r = cache.get(purpose);
  if (r === undefined) {
    r = readPurposeWords(purpose);
    if (cache.size >= MAX_CACHED) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(purpose, r);
  }
  return r;
}
