/**
 * The values a text carries that mean something on their own: e-mail addresses, URLs (and bare
 * domains), IBANs, account-like digit runs and file paths ("structured tokens"), and free text,
 * each in the normalised form values are compared in.
 */
import type { JsonValue } from '../json.ts';

export type TokenKind = 'email' | 'url' | 'iban' | 'account' | 'path' | 'text';

export interface SignificantValue {
  readonly kind: TokenKind;
  /** normalised form, as matched */
  readonly value: string;
}

const EMAIL = /[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+/gi;
const URL_RE = /\b(?:https?|ftp):\/\/[^\s<>"'`)\]}]+|\bwww\.[a-z0-9-]+(?:\.[a-z0-9-]+)+[^\s<>"'`)\]}]*/gi;
/** two letters, two check digits, then groups of four (optionally space-separated) and a short tail */
const IBAN = /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b/gi;
/** account-like: 8+ digits, possibly grouped by spaces or dashes */
const ACCOUNT = /(?<![\w.])\d(?:[ -]?\d){7,}(?![\w.])/g;
/** a calendar date written with dashes is not an account number */
const DATE = /^(?:\d{4}-\d{2}-\d{2}|\d{2}-\d{2}-\d{4})(?: \d{1,2})?$/;
/** a path starts a word ("Snorkel/diving" holds none) */
const PATH = /(?<![\w/.~])(?:~|\.{1,2})?\/(?:[\w.@%+-]+\/)*[\w.@%+-]+/g;
const DOMAIN = /\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|io|dev|ai|co|uk|de|fr|ch|eu|info|biz|app|xyz|gov|edu)\b/gi;
/**
 * DOMAIN's ending alone: every DOMAIN match holds one, and searching for it is a scan for `.`,
 * where DOMAIN tries a name at every word (a 200-character reply without a domain: 0.18 µs
 * against 2.0 µs, ~10k instructions of a decision's ~520k)
 */
const DOMAIN_END = /\.(?:com|org|net|io|dev|ai|co|uk|de|fr|ch|eu|info|biz|app|xyz|gov|edu)\b/i;

const WWW = /www\./i;

/** the number of ASCII digits in `s`, counted up to `enough` */
function countDigits(s: string, enough: number): number {
  let n = 0;
  for (let i = 0; i < s.length && n < enough; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

const NON_ASCII = /[^\u0000-\u007f]/;

/** whitespace that `\s+` → ' ' would change: any but a space, or two in a row */
const ODD_SPACE = /[^\S ]| {2}/;

/** Lower case, whitespace collapsed, quotes unified: the form values are compared in. */
export function normaliseText(s: string): string {
  // ASCII text is its own NFKC form and holds no curly quotes: only its case and spaces change
  const t = NON_ASCII.test(s)
    ? s
        .normalize('NFKC')
        .toLowerCase()
        .replace(/[\u2018\u2019\u201c\u201d]/g, (c) => (c === '\u2018' || c === '\u2019' ? "'" : '"'))
    : s.toLowerCase();
  // most text is spaced by single spaces already: the search costs less than the copy replace makes
  return (ODD_SPACE.test(t) ? t.replace(/\s+/g, ' ') : t).trim();
}

export function stripTrailing(s: string): string {
  return s.replace(/[.,;:!?'"]+$/, '');
}

export function normUrl(u: string): string {
  return stripTrailing(u.toLowerCase()).replace(/^(?:https?|ftp):\/\//, '').replace(/^www\./, '').replace(/\/+$/, '');
}

/**
 * The structured tokens in a text, normalised: e-mail addresses, URLs (and bare domains), IBANs,
 * account-like digit runs and file paths.
 */
export function extractTokens(text: string): SignificantValue[] {
  const out: SignificantValue[] = [];
  const seen = new Set<string>();
  const add = (kind: TokenKind, value: string) => {
    if (value.length === 0) return;
    const key = kind + '\u0000' + value;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ kind, value });
  };
  // each pattern needs a character the text may not have at all: skip it then (same matches)
  if (text.includes('@')) for (const m of text.matchAll(EMAIL)) add('email', stripTrailing(m[0].toLowerCase()));
  if (text.includes('://') || WWW.test(text)) for (const m of text.matchAll(URL_RE)) add('url', normUrl(m[0]));
  if (DOMAIN_END.test(text)) {
    for (const m of text.matchAll(DOMAIN)) {
      // a bare domain inside an e-mail address is the address's, not a link
      const before = text[(m.index ?? 0) - 1];
      if (before !== '@') add('url', normUrl(m[0]));
    }
  }
  // an IBAN and an account number both take at least eight digits
  if (countDigits(text, 8) >= 8) {
    for (const m of text.matchAll(IBAN)) {
      const v = m[0].replace(/ /g, '').toUpperCase();
      // an IBAN is mostly digits; a run of words that happens to fit the pattern is not one
      if (v.length >= 15 && (v.match(/\d/g)?.length ?? 0) >= 8) add('iban', v);
    }
    for (const m of text.matchAll(ACCOUNT)) if (!DATE.test(m[0])) add('account', m[0].replace(/[ -]/g, ''));
  }
  if (text.includes('/')) {
    for (const m of text.matchAll(PATH)) {
      const v = m[0];
      if (v.includes('/') && v.length >= 3 && !v.startsWith('//')) add('path', v.toLowerCase());
    }
  }
  return out;
}

/**
 * The values of an argument that carry meaning: its structured tokens, and the whole string if
 * at least `minLength` long (0: any non-empty string, for arguments that name a destination,
 * where a short name or id means as much as a long one).
 */
export function significantValues(value: JsonValue, minLength: number): SignificantValue[] {
  const out: SignificantValue[] = [];
  const walk = (v: JsonValue, depth: number) => {
    if (depth > 16) return;
    if (typeof v === 'string') {
      const tokens = extractTokens(v);
      for (const t of tokens) out.push(t);
      const n = normaliseText(v);
      // a string that is one token whole (an address, an IBAN) is that token, not also a text
      const whole = tokens.length === 1 && wholeForm((tokens[0] as SignificantValue).kind, v.trim()) === (tokens[0] as SignificantValue).value;
      if (!whole && n.length >= Math.max(1, minLength)) out.push({ kind: 'text', value: n });
    } else if (typeof v === 'number') {
      const s = String(v);
      if (/^\d{8,}$/.test(s)) out.push({ kind: 'account', value: s });
    } else if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
    } else if (v !== null && typeof v === 'object') {
      for (const x of Object.values(v)) walk(x, depth + 1);
    }
  };
  walk(value, 0);
  return out;
}

export function tokenKey(t: SignificantValue): string {
  return t.kind + ':' + t.value;
}

/** The form a token takes when it is the whole of a field's value, to compare with its normalised value. */
export function wholeForm(kind: TokenKind, raw: string): string {
  switch (kind) {
    case 'email':
    case 'path':
      return raw.toLowerCase();
    case 'url':
      return normUrl(raw);
    case 'iban':
      return raw.replace(/ /g, '').toUpperCase();
    case 'account':
      return raw.replace(/[ -]/g, '');
    case 'text':
      return normaliseText(raw);
  }
}
