/**
 * Sources the user named. When the declared purpose names where to look ("the bill
 * 'bill-march.txt'", "her e-mail is on www.example.org", "the 'general' channel", "the mail from
 * kim@corp.example"), what a call reads from that source carries the user's authority for that
 * task: the user delegated that read.
 *
 * Precisely:
 * - the purpose *names a source* by a structured token in it (a URL or domain, an e-mail
 *   address, a path), a file name (a word with a document extension), a quoted phrase
 *   ('…', "…", `…`, “…”) of at most MAX_QUOTED characters, or a proper name: a run of
 *   capitalised words that does not open a sentence ("in Paris", "Alice's inbox");
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

/** Whether a call with these arguments reads one of `sources` (see the module comment for the tool's side). */
export function readsNamedSource(sources: ReadonlySet<string>, args: JsonObject): boolean {
  if (sources.size === 0) return false;
  const is = (v: JsonValue): boolean => typeof v === 'string' && candidates(v).some((c) => c.length > 0 && sources.has(c));
  for (const v of Object.values(args)) {
    if (is(v)) return true;
    if (Array.isArray(v) && v.some(is)) return true;
  }
  return false;
}
