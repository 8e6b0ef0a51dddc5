/**
 * Whether a text is exactly one JSON object (RFC 8259), with nothing before its `{` or after
 * its `}`: what `JSON.parse(text)` accepts as a non-array object, written without surrounding
 * whitespace. A walk of the audit log asks this of every record's stored data.
 *
 * It only reads the text. `JSON.parse` would build the value, and V8 puts every distinct short
 * string value it reads into its string table, in the old generation, where only a full
 * collection frees it: over a log whose records carry distinct short values (ids, arguments),
 * the old generation then grew with the log until the heap's limit (`mandate audit verify` over
 * 1M records: old space 13 MB at 100k records, 57 MB at 1M, bench/audit-verify.ts). Containers
 * are counted on a stack of their own, not by recursion: any depth `JSON.parse` reads is read.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const isWhitespace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const isDigit = (c: number): boolean => c >= ZERO && c <= NINE;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

function skipWhitespace(t: string, i: number): number {
  while (isWhitespace(t.charCodeAt(i))) i++;
  return i;
}

/** the index after the string that opens at `i` (a `"`), or -1 */
function endOfString(t: string, i: number): number {
  for (i++; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c === QUOTE) return i + 1;
    if (c < 0x20) return -1;
    if (c === BACKSLASH) {
      const e = t.charCodeAt(++i);
      if (e === 0x75) {
        // \uXXXX
        if (!(isHex(t.charCodeAt(i + 1)) && isHex(t.charCodeAt(i + 2)) && isHex(t.charCodeAt(i + 3)) && isHex(t.charCodeAt(i + 4)))) return -1;
        i += 4;
      } else if (!(e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74)) {
        return -1;
      }
    }
  }
  return -1;
}

function skipDigits(t: string, i: number): number {
  while (isDigit(t.charCodeAt(i))) i++;
  return i;
}

/** the index after the number that starts at `i`, or -1 */
function endOfNumber(t: string, i: number): number {
  if (t.charCodeAt(i) === MINUS) i++;
  const first = t.charCodeAt(i);
  if (first === ZERO) i++;
  else if (isDigit(first)) i = skipDigits(t, i + 1);
  else return -1;
  if (t.charCodeAt(i) === DOT) {
    if (!isDigit(t.charCodeAt(i + 1))) return -1;
    i = skipDigits(t, i + 1);
  }
  const e = t.charCodeAt(i);
  if (e === 0x65 || e === 0x45) {
    i++;
    const sign = t.charCodeAt(i);
    if (sign === PLUS || sign === MINUS) i++;
    if (!isDigit(t.charCodeAt(i))) return -1;
    i = skipDigits(t, i);
  }
  return i;
}

/** the index after a string, a number or a literal that starts at `i`, or -1 */
function endOfScalar(t: string, i: number): number {
  const c = t.charCodeAt(i);
  if (c === QUOTE) return endOfString(t, i);
  if (c === 0x74) return t.startsWith('true', i) ? i + 4 : -1;
  if (c === 0x66) return t.startsWith('false', i) ? i + 5 : -1;
  if (c === 0x6e) return t.startsWith('null', i) ? i + 4 : -1;
  return endOfNumber(t, i);
}

/** the index after `"key" :` that starts at `i` (whitespace before it skipped), or -1 */
function afterKey(t: string, i: number): number {
  i = skipWhitespace(t, i);
  if (t.charCodeAt(i) !== QUOTE) return -1;
  i = endOfString(t, i);
  if (i < 0) return -1;
  i = skipWhitespace(t, i);
  return t.charCodeAt(i) === COLON ? i + 1 : -1;
}

export function isJsonObjectText(t: string): boolean {
  if (t.charCodeAt(0) !== OPEN_OBJECT) return false;
  /** the containers open around `i`: OPEN_OBJECT or OPEN_ARRAY */
  const open: number[] = [];
  let i = 0;
  for (;;) {
    // a value starts at i (after whitespace)
    i = skipWhitespace(t, i);
    const c = t.charCodeAt(i);
    if (c === OPEN_OBJECT) {
      i = skipWhitespace(t, i + 1);
      if (t.charCodeAt(i) !== CLOSE_OBJECT) {
        open.push(OPEN_OBJECT);
        i = afterKey(t, i);
        if (i < 0) return false;
        continue;
      }
      i++;
    } else if (c === OPEN_ARRAY) {
      i = skipWhitespace(t, i + 1);
      if (t.charCodeAt(i) !== CLOSE_ARRAY) {
        open.push(OPEN_ARRAY);
        continue;
      }
      i++;
    } else {
      i = endOfScalar(t, i);
      if (i < 0) return false;
    }
    // a value ended at i: close the containers it ends, or go on to the next member
    for (;;) {
      const inner = open.at(-1);
      if (inner === undefined) return i === t.length;
      i = skipWhitespace(t, i);
      const d = t.charCodeAt(i);
      if (d === COMMA) {
        i = inner === OPEN_OBJECT ? afterKey(t, i + 1) : i + 1;
        if (i < 0) return false;
        break;
      }
      if (d !== (inner === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY)) return false;
      open.pop();
      i++;
    }
  }
}
