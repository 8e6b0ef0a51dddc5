/**
 * What a task's purpose declares, as drift reads it. Purpose words only ever narrow: a verb
 * counts as declaring an action only where the purpose says to do it, never where it is
 * negated, excluded or made conditional ("never transfer money", "drafts only, without
 * sending", "refund if the order is late"). When a clause is in doubt, its verbs declare
 * nothing: that only costs a drift signal, where reading a prohibition as a declaration would
 * silence one.
 *
 * The reading, in one pass over the words (linear in the purpose's length):
 *
 *  1. lower case; "don't", "mustn't", "can't"… become "do not", "must not", "cannot"
 *  2. clauses end at `;`, a line break, a bullet, and a `.`, `!` or `?` followed by a space or
 *     the end (so "payments.transfer" stays one word); a clause also starts at a connector
 *     that begins a new instruction ("then", "but", "however", "afterwards", "finally"), except
 *     "then" after an "if" (the condition's own consequence stays conditional)
 *  3. a comma, a colon, a dash or a bracket followed by a cue ("…, never …", "…: forbidden")
 *     starts a new clause too, so "draft replies, never send them" still declares drafting
 *  4. a clause that holds a cue anywhere (never, not, no, nor, without, except, unless, if,
 *     avoid, forbid(den), prohibit(ed), refrain, cannot, instead of, other than, out of
 *     scope…) declares nothing
 *  5. a clause made only of cues and filler ("never.", "absolutely not", "not allowed") negates
 *     the clause before it ("transfers: never"); so does a clause split off at a comma, dash or
 *     connector that starts with a cue, holds an exclusion or a condition, and names no verb of
 *     its own ("transfer money, only with approval", "refund, if the order is late")
 *
 * Verbs match as whole words with their regular inflections (send, sends, sent is not
 * inferred; transfer, transfers, transferred, transferring), never as a word's prefix: an
 * unknown word ("paypal", "poster") never declares a class.
 */

/** Words that negate the clause they stand in. */
const NEGATIONS = [
  'never', 'not', 'no', 'nor', 'neither', 'none', 'nothing', 'nobody', 'noone', 'nowhere', 'zero',
  'cannot', 'cant', 'dont', 'doesnt', 'didnt', 'wont', 'mustnt', 'shouldnt', 'isnt', 'arent', 'wasnt', 'werent', 'wouldnt', 'couldnt', 'neednt', 'shant',
  'avoid', 'avoids', 'avoiding', 'refrain', 'refrains', 'refraining',
  'forbid', 'forbids', 'forbade', 'forbidden', 'forbidding',
  'prohibit', 'prohibits', 'prohibited', 'prohibiting', 'prohibition',
  'disallow', 'disallows', 'disallowed', 'ban', 'bans', 'banned', 'barred',
  'prevent', 'prevents', 'unauthorized', 'unauthorised',
];
/** Words that exclude something from the clause, or make it conditional. */
const CONDITIONS = ['without', 'except', 'excepting', 'excluding', 'exclude', 'excludes', 'excluded', 'unless', 'lest', 'if', 'whether', 'provided', 'providing', 'assuming', 'instead', 'rather'];
const CUES = new Set([...NEGATIONS, ...CONDITIONS]);
const CONDITION_WORDS = new Set(CONDITIONS);

/** Cues of two words: the first word alone says nothing. `condition`: an exclusion or a condition. */
const CUE_PAIRS = new Map<string, { readonly second: ReadonlySet<string>; readonly condition: boolean }>([
  ['other', { second: new Set(['than']), condition: true }],
  ['apart', { second: new Set(['from']), condition: true }],
  ['aside', { second: new Set(['from']), condition: true }],
  ['only', { second: new Set(['when', 'after', 'once', 'with', 'upon', 'on', 'for']), condition: true }],
  ['in', { second: new Set(['case']), condition: true }],
  ['as', { second: new Set(['long']), condition: true }],
  ['so', { second: new Set(['long']), condition: true }],
  ['off', { second: new Set(['limits', 'limit']), condition: false }],
  ['out', { second: new Set(['of']), condition: false }], // "out of scope", "out of bounds"
  ['hands', { second: new Set(['off']), condition: false }],
  ['steer', { second: new Set(['clear']), condition: false }],
  ['keep', { second: new Set(['away']), condition: false }],
  ['stay', { second: new Set(['away']), condition: false }],
]);

/** Words that start a new instruction when they follow one. */
const CONNECTORS = new Set(['then', 'but', 'however', 'afterwards', 'afterward', 'finally', 'next', 'thereafter']);
/** Two-word connectors: "after that", "and then" (the second word is what the first leads to). */
const CONNECTOR_PAIRS = new Map<string, ReadonlySet<string>>([
  ['after', new Set(['that', 'which'])],
  ['and', new Set(['then'])],
]);

/** Words that may stand between a soft break and its cue ("…, and never…", "…, you must not…"). */
const LEAD_INS = new Set(['and', 'or', 'but', 'so', 'you', 'we', 'it', 'they', 'please', 'do', 'does', 'did', 'must', 'should', 'may', 'can', 'will', 'shall', 'is', 'are', 'be', 'absolutely', 'strictly', 'also', 'just']);

/** Words that add nothing to a cue ("absolutely not", "never, under any circumstances", "not allowed"). */
const FILLER = new Set([
  'ever', 'even', 'once', 'at', 'all', 'absolutely', 'definitely', 'certainly', 'strictly', 'really', 'please', 'under', 'any', 'circumstance', 'circumstances',
  'way', 'whatsoever', 'is', 'are', 'be', 'been', 'it', 'this', 'that', 'these', 'those', 'they', 'allowed', 'permitted', 'ok', 'okay', 'acceptable', 'so', 'of', 'course',
  'period', 'the', 'a', 'an', 'case', 'in', 'time', 'for', 'reason', 'reasons', 'matter', 'what', 'and', 'or', 'must', 'should', 'may', 'can', 'do', 'does', 'will', 'shall',
  'you', 'we', 'here', 'scope', 'bounds', 'limits', 'limit', 'than', 'from', 'go', 'again', 'too', 'either', 'also', 'just', 'point', 'by', 'means', 'thanks', 'done',
]);

interface Piece {
  readonly words: string[];
  /** how the piece began: a hard break (or the start), a soft break (comma, colon, dash, bracket) or a connector */
  readonly start: 'hard' | 'soft' | 'connector';
}

export interface PurposeClause {
  /** the clause's words, in order */
  readonly words: readonly string[];
  /** whether it holds a cue (or a following cue clause reaches back to it): it declares nothing */
  readonly negated: boolean;
}

function expand(text: string): string {
  return text
    .toLowerCase()
    .replace(/[\u2018\u2019\u02bc\u0060\u00b4]/g, "'")
    .replace(/\bcan't\b/g, 'cannot')
    .replace(/\bwon't\b/g, 'will not')
    .replace(/\bshan't\b/g, 'shall not')
    .replace(/n't\b/g, ' not');
}

const WORD = /[a-z0-9]/;
const HARD = new Set([';', '\n', '\r', '\u2022']);
const SENTENCE = new Set(['.', '!', '?']);
const SOFT = new Set([',', ':', '(', ')', '[', ']', '\u2014', '\u2013']);

/** The purpose cut into pieces at every break, each with the kind of break that started it. */
function pieces(text: string): Piece[] {
  const out: Piece[] = [];
  let words: string[] = [];
  let start: Piece['start'] = 'hard';
  let word = '';
  const cut = (next: Piece['start']) => {
    if (word !== '') words.push(word);
    word = '';
    if (words.length > 0) out.push({ words, start });
    words = [];
    start = next;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text.charAt(i);
    if (WORD.test(ch)) {
      word += ch;
      continue;
    }
    if (word !== '') words.push(word);
    word = '';
    const after = text.charAt(i + 1);
    const spaceOrEnd = after === '' || /\s/.test(after);
    const lineStart = i === 0 || text.charAt(i - 1) === '\n';
    if (HARD.has(ch) || (SENTENCE.has(ch) && spaceOrEnd) || ((ch === '-' || ch === '*') && lineStart)) cut('hard');
    else if (SOFT.has(ch) || (ch === '-' && spaceOrEnd && i > 0 && /\s/.test(text.charAt(i - 1)))) cut(words.length === 0 ? start : 'soft');
  }
  cut('hard');
  return out;
}

/** whether a cue starts at `words[i]` (one word, or a pair) */
function cueAt(words: readonly string[], i: number): boolean {
  const w = words[i] as string;
  if (CUES.has(w)) return true;
  const pair = CUE_PAIRS.get(w);
  return pair !== undefined && i + 1 < words.length && pair.second.has(words[i + 1] as string);
}

/** whether the words hold an exclusion or a condition ("without", "unless", "only with"…) */
function hasCondition(words: readonly string[]): boolean {
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    if (CONDITION_WORDS.has(w)) return true;
    const pair = CUE_PAIRS.get(w);
    if (pair?.condition === true && i + 1 < words.length && pair.second.has(words[i + 1] as string)) return true;
  }
  return false;
}

/** whether the piece starts with a cue, perhaps after a few lead-in words */
function startsWithCue(words: readonly string[]): boolean {
  for (let i = 0; i < Math.min(words.length, 4); i++) {
    if (cueAt(words, i)) return true;
    if (!LEAD_INS.has(words[i] as string)) return false;
  }
  return false;
}

function hasCue(words: readonly string[]): boolean {
  for (let i = 0; i < words.length; i++) if (cueAt(words, i)) return true;
  return false;
}

function onlyCuesAndFiller(words: readonly string[]): boolean {
  let cue = false;
  for (let i = 0; i < words.length; i++) {
    if (cueAt(words, i)) {
      cue = true;
      if (!CUES.has(words[i] as string)) i += 1; // the pair's second word
    } else if (!FILLER.has(words[i] as string)) return false;
  }
  return cue;
}

/** the words after a leading connector ("but only with approval" → "only with approval") */
function afterConnector(words: readonly string[]): readonly string[] {
  const first = words[0] as string;
  if (CONNECTORS.has(first)) return words.slice(1);
  if (CONNECTOR_PAIRS.get(first)?.has(words[1] as string) === true) return words.slice(2);
  return words;
}

/** Splits a piece further at connectors ("…, then send…"); "then" after an "if" stays. */
function atConnectors(p: Piece): Piece[] {
  const out: Piece[] = [];
  let cur: string[] = [];
  let start = p.start;
  let conditional = false;
  for (let i = 0; i < p.words.length; i++) {
    const w = p.words[i] as string;
    const pair = CONNECTOR_PAIRS.get(w);
    const connector = CONNECTORS.has(w) || (pair !== undefined && i + 1 < p.words.length && pair.has(p.words[i + 1] as string));
    if (connector && cur.length > 0 && !(w === 'then' && conditional) && !(w === 'and' && conditional)) {
      out.push({ words: cur, start });
      cur = [];
      start = 'connector';
      conditional = false;
    }
    if (w === 'if' || w === 'unless' || w === 'whether') conditional = true;
    cur.push(w);
  }
  if (cur.length > 0) out.push({ words: cur, start });
  return out;
}

/**
 * The purpose's clauses, each marked negated or not. Pure and linear in the text; the text is
 * a mandate's purpose (at most 4,000 characters).
 */
export function readPurpose(purpose: string, isVerb: (word: string) => boolean): PurposeClause[] {
  const split: Piece[] = [];
  for (const p of pieces(expand(purpose))) {
    // a soft break starts a clause only when a cue follows it; otherwise the piece continues the last
    const last = split.at(-1);
    if (p.start === 'soft' && last !== undefined && !startsWithCue(p.words)) split[split.length - 1] = { words: [...last.words, ...p.words], start: last.start };
    else split.push(p);
  }
  const clauses: { words: string[]; negated: boolean; start: Piece['start'] }[] = [];
  for (const p of split.flatMap(atConnectors)) {
    const negated = hasCue(p.words);
    const prev = clauses.at(-1);
    if (negated && prev !== undefined) {
      // "transfers: never", "transfer money, only with approval": the cue speaks of the clause before
      const modifier = onlyCuesAndFiller(p.words) || (p.start !== 'hard' && startsWithCue(afterConnector(p.words)) && hasCondition(p.words) && !p.words.some(isVerb));
      if (modifier) prev.negated = true;
    }
    clauses.push({ words: p.words, negated, start: p.start });
  }
  return clauses.map((c) => ({ words: c.words, negated: c.negated }));
}

/** A verb's regular forms: send → sends, sending; delete → deletes, deleted, deleting; reply → replies, replied; drop → dropped. */
export function verbForms(verb: string): string[] {
  const v = verb.toLowerCase();
  if (!/^[a-z]+$/.test(v)) return [v];
  const forms = new Set([v, v + 's', v + 'es', v + 'ed', v + 'ing']);
  if (v.endsWith('e')) {
    forms.add(v + 'd');
    forms.add(v.slice(0, -1) + 'ing');
  }
  if (/[^aeiou]y$/.test(v)) {
    forms.add(v.slice(0, -1) + 'ies');
    forms.add(v.slice(0, -1) + 'ied');
  }
  if (/[^aeiou][aeiou][bcdfgklmnprstvz]$/.test(v)) {
    const last = v.charAt(v.length - 1);
    forms.add(v + last + 'ed');
    forms.add(v + last + 'ing');
  }
  return [...forms];
}
