/**
 * Glob matching where `*` matches any run of characters (including none) and every other
 * character matches itself. Iterative with single backtracking point: linear-ish, no regex.
 */
const STAR = 42; // '*'

export function globMatch(pattern: string, value: string): boolean {
  // a pattern without a star (most tools named in mandates, chains and the catalogue) is the name
  if (!pattern.includes('*')) return pattern === value;
  // code units, not one-character strings: the same comparisons (chains match every rule's steps per call)
  let p = 0;
  let v = 0;
  let star = -1;
  let mark = 0;
  while (v < value.length) {
    const c = p < pattern.length ? pattern.charCodeAt(p) : -1;
    if (c !== -1 && c !== STAR && c === value.charCodeAt(v)) {
      p += 1;
      v += 1;
    } else if (c === STAR) {
      star = p;
      mark = v;
      p += 1;
    } else if (star !== -1) {
      p = star + 1;
      mark += 1;
      v = mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern.charCodeAt(p) === STAR) p += 1;
  return p === pattern.length;
}

/**
 * True when every string `inner` matches is also matched by `outer`. Sound (never claims
 * containment that does not hold): `inner`'s stars are matched literally by `outer`'s stars.
 */
export function globCovers(outer: string, inner: string): boolean {
  return globMatch(outer, inner);
}

export function hasGlob(pattern: string): boolean {
  return pattern.includes('*');
}
