/**
 * Provenance: where the values in a call's arguments came from.
 *
 * Every tool result an enforcement point sees (MCP gateway, SDK outcome report, replay) is
 * recorded against its task with the trust of the tool that produced it. When the task later
 * calls a tool, each argument is classified by the values in it:
 *
 * - `purpose`:   the value appears in the task's declared purpose (what the user asked for);
 * - `trusted`:   it appeared in the output of a tool the organisation trusts;
 * - `untrusted`: it appeared ONLY in output of untrusted tools (web pages, e-mails, files written
 *                by others), and not in the purpose or any trusted output.
 *
 * An argument is in `untrusted_args` as soon as one of its significant values came only from
 * untrusted output: a list of recipients with one injected address is tainted. `untrusted_text`
 * narrows that to values only ever *mentioned inside prose* of untrusted output, never standing
 * alone as a field's value (a recipient line, a list item): where injected instructions put
 * their destinations. Values that
 * appear nowhere (typed by the model itself) are in none of the sets. Values shorter than
 * `minLength` that are not structured tokens (e-mail, URL, IBAN, account number, path) are too
 * common to mean anything and are ignored.
 *
 * Memory is bounded: per task a fixed budget of stored text and tokens, oldest results dropped
 * first; across tasks an LRU of tasks.
 */
import type { JsonObject, JsonValue } from './json.ts';
import { NO_PROVENANCE, type ArgProvenance } from './policy/context.ts';

export type Trust = 'trusted' | 'untrusted';

export interface ProvenanceOptions {
  /** free-text values at least this long count (structured tokens count at any length) */
  readonly minLength: number;
  /** characters of normalised result text kept per task */
  readonly maxTextPerTask: number;
  /** characters scanned per result (longer results are scanned up to this) */
  readonly maxScanPerResult: number;
  /** tasks tracked at once (least recently used dropped) */
  readonly maxTasks: number;
}

export const DEFAULT_PROVENANCE_OPTIONS: ProvenanceOptions = {
  minLength: 8,
  maxTextPerTask: 2_000_000,
  maxScanPerResult: 512 * 1024,
  maxTasks: 10_000,
};

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
const PATH = /(?:~|\.{1,2})?\/(?:[\w.@%+-]+\/)*[\w.@%+-]+/g;
const DOMAIN = /\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|io|dev|ai|co|uk|de|fr|ch|eu|info|biz|app|xyz|gov|edu)\b/gi;

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

/** Lower case, whitespace collapsed, quotes unified: the form values are compared in. */
export function normaliseText(s: string): string {
  return s
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\u2018\u2019\u201c\u201d]/g, (c) => (c === '\u2018' || c === '\u2019' ? "'" : '"'))
    .replace(/\s+/g, ' ')
    .trim();
}

function stripTrailing(s: string): string {
  return s.replace(/[.,;:!?'"]+$/, '');
}

function normUrl(u: string): string {
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
  if (text.includes('.')) {
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
    for (const m of text.matchAll(ACCOUNT)) add('account', m[0].replace(/[ -]/g, ''));
  }
  if (text.includes('/')) {
    for (const m of text.matchAll(PATH)) {
      const v = m[0];
      if (v.includes('/') && v.length >= 3 && !v.startsWith('//')) add('path', v.toLowerCase());
    }
  }
  return out;
}

/** The values of an argument that carry meaning: its structured tokens, and the whole string if long enough. */
export function significantValues(value: JsonValue, minLength: number): SignificantValue[] {
  const out: SignificantValue[] = [];
  const walk = (v: JsonValue, depth: number) => {
    if (depth > 16) return;
    if (typeof v === 'string') {
      for (const t of extractTokens(v)) out.push(t);
      const n = normaliseText(v);
      if (n.length >= minLength) out.push({ kind: 'text', value: n });
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

/** All strings of a JSON value joined (keys too: a result's field names are part of its text). */
function flatten(value: JsonValue, max: number): string {
  const parts: string[] = [];
  let size = 0;
  const walk = (v: JsonValue, depth: number) => {
    if (size >= max || depth > 32) return;
    if (typeof v === 'string') {
      parts.push(v);
      size += v.length + 1;
    } else if (typeof v === 'number' || typeof v === 'boolean') {
      parts.push(String(v));
      size += 8;
    } else if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        parts.push(k);
        size += k.length + 1;
        walk(x, depth + 1);
      }
    }
  };
  walk(value, 0);
  const s = parts.join('\n');
  return s.length > max ? s.slice(0, max) : s;
}

interface Source {
  readonly text: string;
  readonly tokens: ReadonlySet<string>;
  /** values that stand alone as a field's value (see fieldValues) */
  readonly fields: ReadonlySet<string>;
}

function tokenKey(t: SignificantValue): string {
  return t.kind + ':' + t.value;
}

/** `- key: value`, `key: value`, `- value`: the key and list marker of a YAML-ish or JSON-ish line */
const FIELD_PREFIX = /^(?:-\s+)*(?:["']?[A-Za-z_][\w .-]{0,40}["']?\s*[:=]\s*)?/;
const FIELD_MAX = 512;
const QUOTED = /'([^'\n]{1,512})'|"([^"\n]{1,512})"/g;

/** The form a token takes when it is the whole of a field's value, to compare with its normalised value. */
function wholeForm(kind: TokenKind, raw: string): string {
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

/**
 * The values of a result that stand alone as a field's value: a line that is `key: value`,
 * `- value` or a bare value, or an item of an inline `[a, b]` list, whose value is exactly one
 * token (an address, an IBAN, a URL…) or one short text. A value only *mentioned inside a
 * sentence* (prose, where injected instructions live) is not one. Generic: it reads the layout
 * of YAML, JSON and `key: value` text, nothing of any particular tool.
 */
export function fieldValues(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.length > FIELD_MAX * 4) continue;
    let rest = line.trim().replace(FIELD_PREFIX, '').trim();
    if (rest.length === 0 || rest.length > FIELD_MAX * 4) continue;
    const parts = rest.startsWith('[') && rest.endsWith(']') ? rest.slice(1, -1).split(',') : [rest];
    // inline mappings and lists ({'k': 'v'}, ["a", "b"]): each quoted string is a value of its own
    if (/^[{[(]/.test(rest)) for (const m of rest.matchAll(QUOTED)) parts.push(m[1] ?? m[2] ?? '');
    for (const part of parts) {
      rest = part.trim().replace(/^["'`]+|["'`,]+$/g, '').trim();
      if (rest.length === 0) continue;
      for (const t of extractTokens(rest)) if (wholeForm(t.kind, rest) === t.value) out.add(tokenKey(t));
      out.add('text:' + normaliseText(rest));
    }
  }
  return out;
}

function sourceOf(text: string, withFields = true): Source {
  const tokens = new Set<string>();
  for (const t of extractTokens(text)) tokens.add(tokenKey(t));
  return { text: normaliseText(text), tokens, fields: withFields ? fieldValues(text) : new Set() };
}

function foundIn(src: Source, v: SignificantValue): boolean {
  if (v.kind !== 'text' && src.tokens.has(tokenKey(v))) return true;
  // IBANs and account numbers may be written grouped in one text and ungrouped in another
  if (v.kind === 'iban' || v.kind === 'account') return src.text.replace(/[ -]/g, '').includes(v.value.toLowerCase());
  return src.text.includes(v.value);
}

class TaskProvenance {
  readonly trusted: Source[] = [];
  readonly untrusted: Source[] = [];
  size = 0;
}

/** What one tool result contributed, for audit and tests. */
export interface RecordedResult {
  readonly trust: Trust;
  readonly chars: number;
  readonly tokens: number;
}

/**
 * Per-task record of the values seen in tool results, and the classifier that turns a call's
 * arguments into the `ArgProvenance` the policy context carries. Pure and deterministic.
 */
export class ProvenanceLedger {
  private readonly opts: ProvenanceOptions;
  private readonly tasks = new Map<string, TaskProvenance>();
  /** declared purposes, scanned once each (a task's purpose is fixed; many calls share it) */
  private readonly purposes = new Map<string, Source>();

  constructor(opts: Partial<ProvenanceOptions> = {}) {
    this.opts = { ...DEFAULT_PROVENANCE_OPTIONS, ...opts };
  }

  /** Records a tool result seen by `taskId`, with the trust of the tool that produced it. */
  record(taskId: string, trust: Trust, result: JsonValue): RecordedResult {
    const text = flatten(result, this.opts.maxScanPerResult);
    const src = sourceOf(text);
    const t = this.touch(taskId, true)!;
    (trust === 'trusted' ? t.trusted : t.untrusted).push(src);
    t.size += src.text.length;
    // bounded: drop the oldest results first (untrusted before trusted, so a flood of
    // untrusted text cannot push out what the organisation trusts)
    while (t.size > this.opts.maxTextPerTask && (t.untrusted.length > 1 || t.trusted.length > 1)) {
      const from = t.untrusted.length > 1 ? t.untrusted : t.trusted;
      const dropped = from.shift()!;
      t.size -= dropped.text.length;
    }
    return { trust, chars: src.text.length, tokens: src.tokens.size };
  }

  /** Classifies each top-level argument of a call of `taskId` whose declared purpose is `purpose`. */
  classify(taskId: string, purpose: string, args: JsonObject, inherit: readonly string[] = []): ArgProvenance {
    const own = this.touch(taskId, false);
    const lineage = inherit.map((id) => this.tasks.get(id)).filter((t): t is TaskProvenance => t !== undefined);
    if (!own && lineage.length === 0 && Object.keys(args).length === 0) return NO_PROVENANCE;
    const sources = own ? [own, ...lineage] : lineage;
    const purposeSrc = this.purposeSource(purpose);
    const untrusted: string[] = [];
    const untrustedText: string[] = [];
    const trusted: string[] = [];
    const fromPurpose: string[] = [];
    for (const [name, value] of Object.entries(args)) {
      let p = false;
      let tr = false;
      let onlyUntrusted = false;
      let onlyInText = false;
      for (const v of significantValues(value, this.opts.minLength)) {
        const inPurpose = foundIn(purposeSrc, v);
        const inTrusted = sources.some((s) => s.trusted.some((src) => foundIn(src, v)));
        p ||= inPurpose;
        tr ||= inTrusted;
        if (!inPurpose && !inTrusted && sources.some((s) => s.untrusted.some((src) => foundIn(src, v)))) {
          onlyUntrusted = true;
          // …and never as a field's whole value there: only mentioned inside untrusted prose
          if (!sources.some((s) => s.untrusted.some((src) => src.fields.has(tokenKey(v))))) onlyInText = true;
        }
      }
      if (p) fromPurpose.push(name);
      if (tr) trusted.push(name);
      if (onlyUntrusted) untrusted.push(name);
      if (onlyInText) untrustedText.push(name);
    }
    return { untrusted, trusted, purpose: fromPurpose, untrustedText };
  }

  private purposeSource(purpose: string): Source {
    let src = this.purposes.get(purpose);
    if (src === undefined) {
      src = sourceOf(purpose, false);
      this.purposes.set(purpose, src);
      // bounded like the tasks: as many purposes as tasks remembered
      if (this.purposes.size > this.opts.maxTasks) {
        const oldest = this.purposes.keys().next().value;
        if (oldest !== undefined) this.purposes.delete(oldest);
      }
    }
    return src;
  }

  /** Forgets a task (it ended). */
  forget(taskId: string): void {
    this.tasks.delete(taskId);
  }

  get size(): number {
    return this.tasks.size;
  }

  private touch(taskId: string, create: boolean): TaskProvenance | undefined {
    let t = this.tasks.get(taskId);
    if (t) {
      // LRU: re-insert at the end
      this.tasks.delete(taskId);
      this.tasks.set(taskId, t);
      return t;
    }
    if (!create) return undefined;
    t = new TaskProvenance();
    this.tasks.set(taskId, t);
    while (this.tasks.size > this.opts.maxTasks) {
      const oldest = this.tasks.keys().next().value;
      if (oldest === undefined) break;
      this.tasks.delete(oldest);
    }
    return t;
  }
}
