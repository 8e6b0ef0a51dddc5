/**
 * Glob matching where `*` matches any run of characters (including none) and every other
 * character matches itself. Iterative with single backtracking point: linear-ish, no regex.
 */
export function globMatch(pattern: string, value: string): boolean {
  let p = 0;
  let v = 0;
  let star = -1;
  let mark = 0;
  while (v < value.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === value[v]) {
      p += 1;
      v += 1;
    } else if (p < pattern.length && pattern[p] === '*') {
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
  while (p < pattern.length && pattern[p] === '*') p += 1;
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
