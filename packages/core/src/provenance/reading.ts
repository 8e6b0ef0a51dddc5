/**
 * Reading a tool result for provenance: its text, its structured tokens, the values that stand
 * alone as a field's value (a recipient line, a list item) as opposed to values only mentioned
 * inside prose, and the values at the fields the operator declared trusted.
 *
 * A result's layout is read with a real parser (JSON, then YAML), never with patterns over its
 * text, and only at its top level: a string inside the result is a value, never a document of
 * its own. So text a user or an outsider wrote (a message body, a title, a review) can never
 * pose as a field, however it is laid out: a body that reads `recipient: X` is still one string
 * in a body field. Text that parses as no structure (a plain document, a file's content) is
 * read line by line for `key: value` and list-item lines; those only ever separate fields from
 * prose in untrusted output and never confer trust.
 *
 * Length never turns prose into a field: a value longer than FIELD_MAX characters, or spanning
 * lines, is prose; its lines are read like a plain document's, and nothing inside a line longer
 * than FIELD_MAX is a field.
 */
import { parse as parseYaml } from 'yaml';
import type { JsonValue } from '../json.ts';
import { extractTokens, normaliseText, tokenKey, wholeForm } from './tokens.ts';

/** the longest value that can stand as a field; longer is prose */
export const FIELD_MAX = 512;
/** documents longer than this are not parsed for their layout (read as plain text: nothing trusted by field) */
const MAX_PARSE = 256 * 1024;
const MAX_DEPTH = 32;

export interface ResultReading {
  /** every string (and key) of the result, joined and normalised: what free text is matched in */
  readonly text: string;
  /** the structured tokens anywhere in the result (tokenKey form) */
  readonly tokens: ReadonlySet<string>;
  /** values that stand alone as a field's value: tokenKey form, or `text:` + normalised text */
  readonly fields: ReadonlySet<string>;
  /** the scalar values found at a trusted field path, as written */
  readonly vouched: readonly string[];
}

/** `- key: value`, `key: value`, `- value`: the key (at most three words) and list marker of a line */
const FIELD_PREFIX = /^(?:-\s+)*(?:["']?[A-Za-z_][\w.-]{0,30}(?: [\w.-]{1,30}){0,2}["']?\s*[:=]\s+)?/;

function addField(out: Set<string>, raw: string): void {
  const v = raw.trim().replace(/^["'`]+|["'`,]+$/g, '').trim();
  if (v.length === 0 || v.length > FIELD_MAX || v.includes('\n')) return;
  for (const t of extractTokens(v)) if (wholeForm(t.kind, v) === t.value) out.add(tokenKey(t));
  out.add('text:' + normaliseText(v));
}

/** An inline flow collection (`{'k': 'v'}`, `["a", "b"]`) on one line, parsed; undefined when it is not one. */
function flowValues(line: string): string[] | undefined {
  let v: unknown;
  try {
    v = parseYaml(line, { schema: 'failsafe', prettyErrors: false, maxAliasCount: 0 });
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const out: string[] = [];
  const walk = (x: unknown, depth: number) => {
    if (depth > MAX_DEPTH) return;
    if (typeof x === 'string') out.push(x);
    else if (Array.isArray(x)) for (const y of x) walk(y, depth + 1);
    else if (x !== null && typeof x === 'object') for (const y of Object.values(x)) walk(y, depth + 1);
  };
  walk(v, 0);
  return out;
}

/**
 * The values of a plain text that stand alone as a field's value: a line that is `key: value`,
 * `- value` or a bare value, or an item of an inline `[a, b]` or `{k: v}` collection, whose
 * value is exactly one token (an address, an IBAN, a URL…) or one short text. A value only
 * *mentioned inside a sentence* (prose, where injected instructions live) is not one.
 */
export function fieldValues(text: string, out = new Set<string>()): Set<string> {
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.length === 0 || trimmed.length > FIELD_MAX * 2) continue;
    const rest = trimmed.replace(FIELD_PREFIX, '').trim();
    if (rest.length === 0 || rest.length > FIELD_MAX) continue;
    if (/^[{[]/.test(rest)) {
      const items = flowValues(rest);
      if (items !== undefined) {
        for (const item of items) addField(out, item);
        continue;
      }
    }
    addField(out, rest);
  }
  return out;
}

/**
 * One `key: value` line in the narrowest YAML form: a key of letters, digits, spaces, `_ . -`
 * starting with a letter or digit, `: `, and a plain value starting with a letter or digit of
 * letters, digits, spaces and `. , ; ( ) / + = _ ' -` (no `:` and no `#`, so neither a nested
 * mapping nor a comment), neither ending in a space.
 */
const PLAIN_LINE = /^([A-Za-z0-9](?:[A-Za-z0-9 _.-]*[A-Za-z0-9_.-])?): ([A-Za-z0-9](?:[A-Za-z0-9 .,;()/+=_'-]*[A-Za-z0-9.,;()/+=_'-])?)$/;

/**
 * What the YAML parser (failsafe schema) makes of a document whose every line is a `PLAIN_LINE`
 * with a key of its own: a mapping of those keys to those strings, read without the parser (about
 * 50-100 µs for one such line, the costliest step of reading a short tool result); undefined for
 * any other document, which the parser reads. Equal to the parser's reading wherever it answers
 * (test/provenance.property.test.ts compares them).
 */
export function plainMapping(doc: string): Record<string, string> | undefined {
  if (doc.length > FIELD_MAX * 8) return undefined;
  const out: Record<string, string> = {};
  let start = 0;
  for (;;) {
    const nl = doc.indexOf('\n', start);
    const m = PLAIN_LINE.exec(nl < 0 ? doc.slice(start) : doc.slice(start, nl));
    if (m === null) return undefined;
    const key = m[1] as string;
    // (YAML allows an implicit key of 1024 characters at most)
    if (key.length > 1000 || Object.hasOwn(out, key)) return undefined;
    out[key] = m[2] as string;
    if (nl < 0) return out;
    start = nl + 1;
  }
}

/** A document's structure (object or array), or undefined when it parses as none. */
function structureOf(doc: string): object | undefined {
  const s = doc.trim();
  if (s.length === 0 || s.length > MAX_PARSE) return undefined;
  let v: unknown;
  if (s.startsWith('{') || s.startsWith('[')) {
    try {
      v = JSON.parse(s);
    } catch {
      v = undefined;
    }
  }
  if (v === undefined) v = plainMapping(s);
  if (v === undefined) {
    try {
      v = parseYaml(s, { schema: 'failsafe', prettyErrors: false, maxAliasCount: 0 });
    } catch {
      return undefined;
    }
  }
  return v !== null && typeof v === 'object' ? v : undefined;
}

/** The top-level documents of a result: a string is one; an MCP tool result's text blocks are each one. */
function documentsOf(result: JsonValue): { texts: string[]; roots: object[] } {
  if (typeof result === 'string') return { texts: [result], roots: [] };
  if (result !== null && typeof result === 'object' && !Array.isArray(result) && Array.isArray(result['content'])) {
    const texts: string[] = [];
    const roots: object[] = [];
    for (const block of result['content']) {
      if (block !== null && typeof block === 'object' && !Array.isArray(block) && block['type'] === 'text' && typeof block['text'] === 'string') texts.push(block['text']);
    }
    const structured = result['structuredContent'];
    if (structured !== null && typeof structured === 'object') roots.push(structured);
    return { texts, roots };
  }
  return { texts: [], roots: result !== null && typeof result === 'object' ? [result] : [] };
}

/** All strings of a JSON value joined (keys too: a result's field names are part of its text). */
function flatten(value: JsonValue, max: number): string {
  const parts: string[] = [];
  let size = 0;
  const walk = (v: JsonValue, depth: number) => {
    if (size >= max || depth > MAX_DEPTH) return;
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

/**
 * A key's spelling, as `trusted_fields` matches it: case and the separators `_` and `-` do not
 * count, so `id` names `id_`, `_id` and `ID`, and `start_time` names `startTime`. Whoever
 * declares a field names what the field means, not how one serialiser spells it; the keys of a
 * tool's output are set by the tool, never by the text inside its values.
 */
export function keySpelling(key: string): string {
  return key.toLowerCase().replace(/[_-]/g, '');
}

/** Trusted field paths, each split into its keys in their spelling (`sender.email` → [sender, email]). */
export function fieldPaths(trustedFields: readonly string[]): readonly (readonly string[])[] {
  return trustedFields.map((f) => f.split('.').map(keySpelling));
}

function samePath(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Walks a parsed structure: scalars and keys are fields (short, one line) or prose (read by
 * line); at a trusted path (keys from the root, list positions skipped) the scalars, and the
 * keys of a map, are vouched for.
 */
function walkStructure(root: object, trusted: readonly (readonly string[])[], fields: Set<string>, vouched: string[]): void {
  /** the keys from the root, in their spelling */
  const path: string[] = [];
  const visit = (v: unknown, depth: number, atTrusted: boolean) => {
    if (depth > MAX_DEPTH) return;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
      const s = String(v);
      if (atTrusted) vouched.push(s);
      if (s.length <= FIELD_MAX && !s.includes('\n')) addField(fields, s);
      else fieldValues(s, fields);
      return;
    }
    if (Array.isArray(v)) {
      // a list's items sit at the list's own path
      for (const x of v) visit(x, depth + 1, atTrusted);
      return;
    }
    if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        // a key stands alone (a map keyed by addresses, e.g. who a file is shared with); at a
        // trusted path the map's keys are vouched for with it
        addField(fields, k);
        if (atTrusted) vouched.push(k);
        path.push(keySpelling(k));
        visit(x, depth + 1, trusted.length > 0 && trusted.some((p) => samePath(p, path)));
        path.pop();
      }
    }
  };
  visit(root, 0, false);
}

/** Reads one result (see the module comment). `maxScan`: characters of text kept for matching. */
export function readResult(result: JsonValue, maxScan: number, trustedFields: readonly string[] = []): ResultReading {
  const raw = flatten(result, maxScan);
  const tokens = new Set<string>();
  for (const t of extractTokens(raw)) tokens.add(tokenKey(t));
  const fields = new Set<string>();
  const vouched: string[] = [];
  const trusted = fieldPaths(trustedFields);
  const { texts, roots } = documentsOf(result);
  for (const doc of texts) {
    const structure = structureOf(doc);
    if (structure === undefined) fieldValues(doc, fields);
    else walkStructure(structure, trusted, fields, vouched);
  }
  for (const root of roots) walkStructure(root, trusted, fields, vouched);
  return { text: normaliseText(raw), tokens, fields, vouched };
}
