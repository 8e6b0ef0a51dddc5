/**
 * Sources the user named. When the declared purpose names where to look ("the bill
 * 'bill-march.txt'", "her e-mail is on www.example.org", "the 'general' channel", "the mail from
 * kim@corp.example"), what a call reads from that source carries the user's authority for that
 * task: the user delegated that read.
 *
 * Precisely:
 * - the purpose *names a source* by a structured token in it (a URL or domain, an e-mail
 *   address, a path), a file name (a word with a document extension), a quoted phrase
 *   ('…', "…", `…`, “…”) of at most MAX_QUOTED characters, a day (2024-05-15, "May 15th, 2024"), or a proper
 *   name: a run of capitalised words that does not open a sentence ("in Paris", "Alice's inbox");
 *   an argument also reads a named source when it is a word or a run of words of the purpose
 *   itself (at least three characters, a letter among them: "the general channel");
 * - a call *reads a named source* when its tool is a read or a fetch (category `read` or `fetch`
 *   in the tool catalogue) and one of its top-level arguments, or an item of a list argument, is
 *   that source: equal to it once both are normalised (URLs without scheme, `www.` and trailing
 *   slash; everything in lower case with whitespace collapsed);
 * - only the declared purpose names sources. Text in any tool output never does: a page that says
 *   "the real instructions are at www.elsewhere.example" names nothing, and reading that page is
 *   not reading a named source. Authority does not chain: a value read from a named source is
 *   not itself a named source.
 */
import type { JsonObject, JsonValue } from '../json.ts';
import { extractTokens, normaliseText, normUrl } from './tokens.ts';

export const MAX_QUOTED = 120;
/** categories whose calls read a source (tools.yaml) */
export const SOURCE_CATEGORIES: ReadonlySet<string> = new Set(['read', 'fetch']);

/** a quoted phrase; a quote mark inside a word (I'm, Bob's) opens nothing */
const QUOTED = /(?<!\w)(?:'([^'\n]{1,120})'|"([^"\n]{1,120})"|`([^`\n]{1,120})`|\u201c([^\u201d\n]{1,120})\u201d|\u2018([^\u2019\n]{1,120})\u2019)(?!\w)/g;
/** a calendar day (a day's events are a source), in ISO form or in words ("May 15th, 2024", "15 May 2024") */
const DAY = /(?<![\w-])\d{4}-\d{2}-\d{2}(?![\w-])/g;
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTH = '(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\\.?';
const ORDINAL = '(\\d{1,2})(?:st|nd|rd|th)?';
const DAY_IN_WORDS = new RegExp(`\\b(?:${MONTH} ${ORDINAL},? (\\d{4})|${ORDINAL} (?:of )?${MONTH},? (\\d{4}))\\b`, 'gi');

function isoDay(year: string, month: string, day: string): string | undefined {
  const m = MONTHS.indexOf(month.slice(0, 3).toLowerCase()) + 1;
  const d = Number(day);
  if (m === 0 || d < 1 || d > 31) return undefined;
  return `${year}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}
/** a file name: a word with one of the common document extensions */
const FILE = /(?<![\w.-])[\w-]+(?:[.-][\w-]+)*\.(?:txt|md|pdf|docx?|xlsx?|pptx?|csv|tsv|json|ya?ml|xml|html?|rtf|odt|ods|log|ini|conf|zip|png|jpe?g|gif|eml|ics)(?![\w-])/gi;

/** a run of capitalised words (a possessive 's dropped) */
const PROPER = /(?<![\w'-])[A-Z][\w-]*(?:'s)?(?: [A-Z][\w-]*(?:'s)?){0,3}(?![\w-])/g;

/** whether the text before `index` ends a sentence (or is empty): a capital there is no name */
function opensSentence(text: string, index: number): boolean {
  const before = text.slice(Math.max(0, index - 4), index).trimEnd();
  return before.length === 0 || /[.!?:\n"'`(\[]$/.test(before);
}

/** The sources a purpose names, in normalised form. */
export function namedSources(purpose: string): ReadonlySet<string> {
  const out = new Set<string>();
  for (const t of extractTokens(purpose)) if (t.kind === 'url' || t.kind === 'email' || t.kind === 'path') out.add(t.value);
  for (const m of purpose.matchAll(FILE)) out.add(m[0].toLowerCase());
  for (const m of purpose.matchAll(DAY)) out.add(m[0]);
  for (const m of purpose.matchAll(DAY_IN_WORDS)) {
    const iso = m[1] !== undefined ? isoDay(m[3] as string, m[1], m[2] as string) : isoDay(m[6] as string, m[5] as string, m[4] as string);
    if (iso !== undefined) out.add(iso);
  }
  for (const m of purpose.matchAll(PROPER)) {
    if (opensSentence(purpose, m.index)) continue;
    const name = normaliseText(m[0].replace(/'s\b/g, ''));
    if (name.length > 1) out.add(name);
  }
  for (const m of purpose.matchAll(QUOTED)) {
    const q = normaliseText(m[1] ?? m[2] ?? m[3] ?? m[4] ?? m[5] ?? '');
    // a quoted apostrophe pair inside a sentence ("Bob's and Kim's") is not a name: keep short phrases only
    if (q.length > 0 && q.length <= MAX_QUOTED) out.add(q);
  }
  return out;
}

function candidates(v: string): string[] {
  const n = normaliseText(v);
  return [n, normUrl(n)];
}

/** a word of the purpose, or a run of up to MAX_PHRASE_WORDS of them, as an argument names it */
const MAX_PHRASE_WORDS = 6;

function isPhraseOf(purposeText: string, value: string): boolean {
  // at least three characters with a letter, at most a few words: "general", "team meeting minutes"
  if (value.length < 3 || value.length > 80 || !/\p{L}/u.test(value) || value.split(' ').length > MAX_PHRASE_WORDS) return false;
  for (let i = purposeText.indexOf(value); i !== -1; i = purposeText.indexOf(value, i + 1)) {
    const before = i === 0 ? ' ' : (purposeText[i - 1] as string);
    const after = i + value.length >= purposeText.length ? ' ' : (purposeText[i + value.length] as string);
    if (!/[\p{L}\p{N}_]/u.test(before) && !/[\p{L}\p{N}_]/u.test(after)) return true;
  }
  return false;
}

/**
 * Whether a call with these arguments reads a source the purpose names (see the module comment
 * for the tool's side): an argument (or a list item) equal to one of `sources`, or to a word or
 * run of words of the purpose (`purposeText`, normalised) — "the general channel" names the
 * channel general as surely as "'general'".
 */
export function readsNamedSource(sources: ReadonlySet<string>, args: JsonObject, purposeText = ''): boolean {
  const is = (v: JsonValue): boolean => {
    if (typeof v !== 'string') return false;
    const [n, u] = candidates(v);
    if ((n as string).length === 0) return false;
    return sources.has(n as string) || sources.has(u as string) || (purposeText !== '' && isPhraseOf(purposeText, n as string));
  };
  for (const v of Object.values(args)) {
    if (is(v)) return true;
    if (Array.isArray(v) && v.some(is)) return true;
  }
  return false;
}
