import { MandateError } from './errors.ts';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The canonical text of a sealed (deep-frozen) value, kept on the value under a symbol that is
 * not enumerable: Object.keys, JSON.stringify, spreads and structured clones never see it. The
 * value cannot change, so its text cannot either.
 */
const CANONICAL = Symbol('mandate.canonicalJson');

/**
 * Set (true) on a sealed value that is not in canonical order (see `inCanonicalOrder`): the rare
 * case, so the usual seal defines one property, not two (each define costs a runtime call). A
 * sealed value without it is written by JSON.stringify as its canonical text, so a value
 * containing it can still be written in one pass.
 */
const UNORDERED = Symbol('mandate.notInCanonicalOrder');

/** nesting depth from which `canonicalJson` starts looking for cycles (a cycle nests forever) */
const CYCLE_CHECK_DEPTH = 64;

/**
 * Canonical JSON (RFC 8785 style): object keys sorted by UTF-16 code units, no whitespace,
 * numbers and strings serialised as ECMAScript does. Rejects values JSON cannot represent
 * (non-finite numbers, undefined, functions, cycles) instead of silently dropping them,
 * because two different inputs must never share a hash. A value sealed with `sealJson` is
 * written from its cached text.
 */
export function canonicalJson(value: unknown): string {
  if (value !== null && typeof value === 'object') {
    const cached = (value as { [CANONICAL]?: string })[CANONICAL];
    if (cached !== undefined) return cached;
    // plain data whose every object has its keys in sorted order is written by JSON.stringify
    // exactly as below (same strings, numbers, key order, absent fields): one native pass
    if (inCanonicalOrder(value, 0)) return JSON.stringify(value);
  }
  return writeCanonical(value, []);
}

/**
 * Whether JSON.stringify writes this value as its canonical text: strings, booleans, null and
 * finite numbers; arrays without holes or undefined items; plain objects (no prototype but
 * Object's or none, no `toJSON`) whose own keys, in the order JSON.stringify visits them, are
 * sorted. Anything else (or deeper than the cycle check starts) goes to `writeCanonical`, which
 * sorts, or throws where JSON.stringify would silently write something else.
 */
function inCanonicalOrder(v: unknown, depth: number): boolean {
  if (v === null) return true;
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(v);
    case 'object': {
      if ((v as { [CANONICAL]?: string })[CANONICAL] !== undefined) return (v as { [UNORDERED]?: boolean })[UNORDERED] !== true;
      if (depth >= CYCLE_CHECK_DEPTH || (v as { toJSON?: unknown }).toJSON !== undefined) return false;
      if (Array.isArray(v)) {
        if (Object.getPrototypeOf(v) !== Array.prototype) return false;
        for (let i = 0; i < v.length; i++) {
          const x: unknown = v[i];
          if (x === undefined || !inCanonicalOrder(x, depth + 1)) return false;
        }
        return true;
      }
      const proto: unknown = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return false;
      const keys = Object.keys(v);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as string;
        if (i > 0 && (keys[i - 1] as string) >= k) return false;
        const x = (v as Record<string, unknown>)[k];
        if (x !== undefined && !inCanonicalOrder(x, depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

function writeCanonical(v: unknown, stack: object[]): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new MandateError('MALFORMED_REQUEST', 'non-finite number in JSON value');
      return JSON.stringify(v);
    case 'object': {
      const cached = (v as { [CANONICAL]?: string })[CANONICAL];
      if (cached !== undefined) return cached;
      // a cycle makes the nesting unbounded: only deep values pay for the ancestor search
      if (stack.length >= CYCLE_CHECK_DEPTH && stack.includes(v)) throw new MandateError('MALFORMED_REQUEST', 'cyclic JSON value');
      stack.push(v);
      let out: string;
      if (Array.isArray(v)) {
        out = '[';
        for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + writeCanonical(v[i], stack);
        out += ']';
      } else {
        const obj = v as Record<string, unknown>;
        const keys = Object.keys(obj);
        // values built in key order (the audit drafts) skip the sort: one pass finds them in order
        // (`<` compares strings by UTF-16 code units, as the default sort does)
        for (let i = 1; i < keys.length; i++) {
          if ((keys[i - 1] as string) > (keys[i] as string)) {
            keys.sort();
            break;
          }
        }
        out = '{';
        let first = true;
        for (const k of keys) {
          const item = obj[k];
          if (item === undefined) continue; // optional fields that are absent
          out += (first ? '' : ',') + JSON.stringify(k) + ':' + writeCanonical(item, stack);
          first = false;
        }
        out += '}';
      }
      stack.pop();
      return out;
    }
    default:
      throw new MandateError('MALFORMED_REQUEST', `value of type ${typeof v} is not JSON`);
  }
}

/**
 * Deep-freezes a JSON value and remembers its canonical text, so that every later
 * `canonicalJson` of it, or of a value containing it, reuses the text instead of writing it
 * again (one decision's arguments appear in several audit drafts and hashes). Throws like
 * `canonicalJson` on a value JSON cannot represent. Returns the same value, now immutable.
 */
export function sealJson<T extends JsonValue>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) {
    canonicalJson(value); // throws on what JSON cannot represent
    return value;
  }
  const ordered = inCanonicalOrder(value, 0);
  const text = ordered ? orderedText(value) : writeCanonical(value, []);
  Object.defineProperty(value, CANONICAL, { value: text, enumerable: false, writable: false, configurable: false });
  if (!ordered) Object.defineProperty(value, UNORDERED, { value: true, enumerable: false, writable: false, configurable: false });
  Object.freeze(value);
  for (const x of Array.isArray(value) ? value : Object.values(value)) deepFreeze(x);
  return value;
}

/**
 * JSON.stringify's text of a value in canonical order, with the remembered text of each sealed
 * value directly inside it spliced in: JSON.stringify would write those again (the arguments,
 * inside a decision's data), and more slowly than plain ones, as they are frozen and carry a
 * symbol. Each JSON.stringify call has a fixed cost of its own, so the parts around them are
 * written here when they are plain (see `textOf`).
 */
function orderedText(value: JsonValue[] | JsonObject): string {
  const children: JsonValue[] = Array.isArray(value) ? value : Object.values(value);
  let spliced = false;
  for (const x of children) {
    if (x !== null && typeof x === 'object' && (x as { [CANONICAL]?: string })[CANONICAL] !== undefined) {
      spliced = true;
      break;
    }
  }
  if (!spliced) return JSON.stringify(value);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + textOf(value[i] as JsonValue);
    return out + ']';
  }
  let out = '{';
  let first = true;
  for (const k of Object.keys(value)) {
    const x = value[k];
    if (x === undefined) continue; // absent optional fields, as JSON.stringify leaves them out
    out += (first ? '' : ',') + quotedKey(k) + ':' + textOf(x);
    first = false;
  }
  return out + '}';
}

/**
 * any character but printable ASCII other than `"` and `\`: a string without one is written by
 * JSON.stringify as it is, between quotes. Searched for, not matched whole: an anchored `[…]*$`
 * pushes a backtracking point per character (a record's six strings and a reply: 0.63 µs against 2.0 µs).
 */
const NOT_PLAIN = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;

/** JSON.stringify of a string, without a JSON.stringify call (and its fixed cost) when it is plain */
export function quoted(s: string): string {
  return NOT_PLAIN.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

/** keys as quoted: the same few (an audit record's data fields) are written for every decision */
const QUOTED_KEYS = new Map<string, string>();
const MAX_QUOTED_KEYS = 1024;

function quotedKey(k: string): string {
  let q = QUOTED_KEYS.get(k);
  if (q === undefined) {
    q = quoted(k);
    // bounded, in number and length: other keys are written, not remembered
    if (QUOTED_KEYS.size < MAX_QUOTED_KEYS && k.length <= 64) QUOTED_KEYS.set(k, q);
  }
  return q;
}

/** JSON.stringify of a value in canonical order: a sealed one's remembered text, plain strings and empty arrays written here */
function textOf(x: JsonValue): string {
  if (typeof x === 'string') return quoted(x);
  if (x !== null && typeof x === 'object') {
    const cached = (x as { [CANONICAL]?: string })[CANONICAL];
    if (cached !== undefined) return cached;
    if (Array.isArray(x) && x.length === 0) return '[]';
  }
  return JSON.stringify(x);
}

/** Deep-freezes a JSON value (without remembering its text, as `sealJson` does). */
export function deepFreeze(v: JsonValue): void {
  if (v === null || typeof v !== 'object') return;
  // a sealed value is frozen all the way down already (the decision's arguments, inside its data)
  if ((v as { [CANONICAL]?: string })[CANONICAL] !== undefined) return;
  Object.freeze(v); // frozen or not before, its children are frozen below too
  for (const x of Array.isArray(v) ? v : Object.values(v)) deepFreeze(x);
}

export interface JsonLimits {
  /** deepest nesting of arrays/objects (the top level is depth 1) */
  readonly maxDepth: number;
  /** most keys in one object, most items in one array */
  readonly maxEntries: number;
  /** longest string, in UTF-16 code units */
  readonly maxStringLength: number;
  /** most nodes in the whole value */
  readonly maxNodes: number;
}

export const DEFAULT_ARG_LIMITS: JsonLimits = {
  maxDepth: 8,
  maxEntries: 256,
  maxStringLength: 65_536,
  maxNodes: 4_096,
};

/**
 * Checks that an already-parsed JSON value stays inside the limits and carries no
 * prototype-pollution keys. Throws LIMIT_EXCEEDED / MALFORMED_REQUEST naming the value and the limit.
 */
export function checkJsonBounds(value: unknown, limits: JsonLimits, label: string): void {
  let nodes = 0;
  const walk = (v: unknown, depth: number, path: string): void => {
    nodes += 1;
    if (nodes > limits.maxNodes) {
      throw new MandateError('LIMIT_EXCEEDED', `${label} has more than ${limits.maxNodes} values`);
    }
    if (typeof v === 'string') {
      if (v.length > limits.maxStringLength) {
        throw new MandateError('LIMIT_EXCEEDED', `${path} is longer than ${limits.maxStringLength} characters`);
      }
      return;
    }
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new MandateError('MALFORMED_REQUEST', `${path} is not a finite number`);
      return;
    }
    if (v === null || typeof v === 'boolean') return;
    if (typeof v !== 'object') throw new MandateError('MALFORMED_REQUEST', `${path} is not a JSON value`);
    if (depth > limits.maxDepth) {
      throw new MandateError('LIMIT_EXCEEDED', `${path} is nested deeper than ${limits.maxDepth} levels`);
    }
    if (Array.isArray(v)) {
      if (v.length > limits.maxEntries) {
        throw new MandateError('LIMIT_EXCEEDED', `${path} has more than ${limits.maxEntries} items`);
      }
      v.forEach((item, i) => walk(item, depth + 1, `${path}[${i}]`));
      return;
    }
    const keys = Object.keys(v);
    if (keys.length > limits.maxEntries) {
      throw new MandateError('LIMIT_EXCEEDED', `${path} has more than ${limits.maxEntries} keys`);
    }
    for (const k of keys) {
      if (FORBIDDEN_KEYS.has(k)) throw new MandateError('MALFORMED_REQUEST', `${path} has a forbidden key "${k}"`);
      walk((v as Record<string, unknown>)[k], depth + 1, `${path}.${k}`);
    }
  };
  walk(value, 1, label);
}

/**
 * Checks the shape of a JSON text before it is parsed: nesting depth, entries in one array or
 * object, and the number of values, in one pass over the text that stops at the first limit
 * crossed. `JSON.parse` builds the whole value before `checkJsonBounds` can look at it, and a
 * body of nothing but brackets cost up to half a second of CPU per megabyte to build and then
 * refuse. This pass skips strings with `indexOf` and costs about a millisecond per megabyte.
 * Its counts never exceed what `checkJsonBounds` counts on the parsed value (depth is the same;
 * commas give a lower bound of entries and values), so a text refused here would be refused
 * there too; what it does not check (validity, strings, numbers, keys) is left to the parser
 * and to `checkJsonBounds`. Throws LIMIT_EXCEEDED naming the limit.
 */
export function checkJsonTextBounds(text: string, limits: Pick<JsonLimits, 'maxDepth' | 'maxEntries' | 'maxNodes'>, label: string): void {
  const { maxDepth, maxEntries, maxNodes } = limits;
  // per open container: its commas so far, and whether it is an object
  const commasAt = new Uint32Array(maxDepth + 1);
  const objectAt = new Uint8Array(maxDepth + 1);
  let depth = 0;
  let commas = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // to the closing quote: the next quote not preceded by an odd number of backslashes
      let j = i;
      for (;;) {
        j = text.indexOf('"', j + 1);
        if (j === -1) return; // unterminated: the parser says so
        let k = j - 1;
        while (text.charCodeAt(k) === 0x5c /* \ */) k--;
        if ((j - 1 - k) % 2 === 0) break;
      }
      i = j;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth += 1;
      if (depth > maxDepth) throw new MandateError('LIMIT_EXCEEDED', `${label} is nested deeper than ${maxDepth} levels`);
      commasAt[depth] = 0;
      objectAt[depth] = c === 0x7b ? 1 : 0;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      if (depth > 0) depth -= 1;
    } else if (c === 0x2c /* , */) {
      commas += 1;
      // n commas separate at least n + 1 values
      if (commas >= maxNodes) throw new MandateError('LIMIT_EXCEEDED', `${label} has more than ${maxNodes} values`);
      if (depth > 0) {
        const n = (commasAt[depth] as number) + 1;
        commasAt[depth] = n;
        if (n >= maxEntries) throw new MandateError('LIMIT_EXCEEDED', `${label} has ${objectAt[depth] === 1 ? 'an object with more than' : 'an array with more than'} ${maxEntries} ${objectAt[depth] === 1 ? 'keys' : 'items'}`);
      }
    }
  }
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Finds the first object key that appears twice in the same object of a JSON text (after
 * decoding escapes: `"a"` and `"\u0061"` are the same key), or undefined. `JSON.parse` keeps the
 * last of duplicate keys while other parsers keep the first; a request that means different
 * things to different readers is refused rather than guessed at. The text must be valid JSON.
 */
export function findDuplicateKey(text: string): string | undefined {
  // a stack of key sets, one per open object (undefined for arrays)
  const stack: (Set<string> | undefined)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      if (expectKey) {
        const raw = text.slice(start, i + 1);
        const key = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        const keys = stack[stack.length - 1];
        if (keys) {
          if (keys.has(key)) return key;
          keys.add(key);
        }
        expectKey = false;
      }
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(undefined);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] !== undefined;
    }
  }
  return undefined;
}
