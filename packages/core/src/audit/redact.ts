import type { JsonObject, JsonValue } from '../json.ts';

/**
 * What of a call's arguments is recorded (audit records, approvals, alerts, the judge): secrets
 * replaced by `[REDACTED]`, long strings truncated. Policy always sees the real arguments, and
 * `args_hash` binds them; only what is written down is redacted.
 *
 * Two rules, both on every value at any depth:
 *
 * 1. **By name.** A value whose key names a secret is replaced whole, whatever its type. A key is
 *    cut into words (at `_ - . space`, camelCase and digit boundaries) and is secret when one
 *    word is in SECRET_WORDS (`auth`, `pwd`, `token`, `cookie`…), two neighbouring words form a
 *    SECRET_PAIRS entry (`api_key`, `privateKey`, `client-secret`…), or one word ends in a strong
 *    secret word (`accesstoken`, `dbpassword`). Whole words only: `author`, `passenger`,
 *    `keyboard`, `tokenizer` are left alone.
 * 2. **By value.** Inside any string, these are replaced (the text around them is kept):
 *    - JWTs and JWEs (`eyJ….…`), `Bearer`/`Basic`/`DPoP`/`Digest` credentials;
 *    - PEM private keys (`-----BEGIN … PRIVATE KEY-----` to its end);
 *    - well-known key formats: AWS access key ids (`AKIA…`, `ASIA…`), GitHub (`ghp_`, `gho_`,
 *      `ghu_`, `ghs_`, `ghr_`, `github_pat_`), GitLab (`glpat-`), Slack (`xox?-`, `xapp-`, hook
 *      URLs), Stripe (`sk_live_`, `rk_test_`…, `whsec_`), OpenAI/Anthropic-style `sk-…`, Google
 *      (`AIza…`), npm (`npm_`), SendGrid (`SG.….…`), Mandate operator keys (`mk_`);
 *    - the password of a URL's userinfo (`https://user:pw@host`);
 *    - the value of a `name=value` pair in a URL query, fragment or form-like text whose name is
 *      secret by rule 1 or is one of QUERY_SECRET_NAMES (`key`, `sig`, `code`, `X-Amz-Signature`…);
 *    - any other run of 32 to 256 token characters (`A-Z a-z 0-9 + / _ = -`) that looks
 *      generated: upper and lower case, an entropy of at least 3.5 bits per character, and not
 *      words (camelCase identifiers, dotted names and paths are: see `readsAsWords`). Hex
 *      digests, UUIDs, ULIDs and base32 strings have one case and are left alone: a secret in
 *      one of those forms is caught only by its name. About 1 in 10,000 random keys of 32
 *      characters reads as words and is missed; base64 of ordinary content is redacted too.
 */
export function redactArgs(args: JsonObject): JsonObject {
  return redactArgsCopy(args).redacted;
}

const REDACTED = '[REDACTED]';
const MAX_STRING = 1024;

/** a key with one of these words names a secret */
const SECRET_WORDS = new Set([
  'auth', 'authorization', 'bearer', 'cookie', 'cookies', 'credential', 'credentials', 'creds', 'csrf', 'xsrf', 'cvc', 'cvv',
  'jwt', 'otp', 'totp', 'pass', 'passcode', 'passphrase', 'passwd', 'password', 'passwords', 'pwd', 'secret', 'secrets',
  'session', 'sessionid', 'sig', 'signature', 'token', 'tokens', 'apikey', 'privatekey',
]);
/** two neighbouring words that name a secret together (`api_key`, `privateKey`, `connection_string`) */
const SECRET_PAIRS = new Set([
  'apikey', 'accesskey', 'accountkey', 'authkey', 'clientkey', 'connectionstring', 'encryptionkey', 'licensekey', 'masterkey',
  'privatekey', 'secretkey', 'sessionkey', 'sharedkey', 'signingkey',
]);
/** one word that ends in one of these (`accesstoken`, `dbpassword`, `xapikey`) names a secret */
const SECRET_SUFFIX = /.(?:token|password|passwd|secret|apikey|privatekey|credentials?)$/;
/** query parameter names that carry a secret in a URL, beyond rule 1 */
const QUERY_SECRET_NAMES = new Set([
  'code', 'key', 'sig', 'signature', 'x-amz-signature', 'x-amz-credential', 'x-amz-security-token', 'x-goog-signature',
  'x-goog-credential', 'x-goog-security-token', 'jsessionid', 'phpsessid', 'sid', 'client_secret', 'access_token', 'id_token',
  'refresh_token', 'api_key', 'apikey',
]);

const SIMPLE_NAME = /^[a-z0-9_]+$/;
const isUpper = (c: number): boolean => c >= 65 && c <= 90;
const isLowerOrDigit = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 48 && c <= 57);

/** `apiKey` → api, key; `X-API-Key` → x, api, key; `client_secret` → client, secret (no regex: this runs per argument name) */
function words(key: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (isLowerOrDigit(c)) {
      cur += key[i];
    } else if (isUpper(c)) {
      const prev = i > 0 ? key.charCodeAt(i - 1) : 0;
      const next = i + 1 < key.length ? key.charCodeAt(i + 1) : 0;
      // a word starts at an upper-case letter after a lower one, or before one in an acronym (APIKey)
      if (cur !== '' && (isLowerOrDigit(prev) || (isUpper(prev) && next >= 97 && next <= 122))) {
        out.push(cur);
        cur = '';
      }
      cur += String.fromCharCode(c + 32);
    } else if (cur !== '') {
      out.push(cur);
      cur = '';
    }
  }
  if (cur !== '') out.push(cur);
  return out;
}

/** Rule 1: whether a key (an argument name, a query parameter name) names a secret. */
export function isSecretName(key: string): boolean {
  // most argument names are lower case, in one word or snake_case: no camelCase to cut
  const w = SIMPLE_NAME.test(key) ? key.split('_') : words(key);
  for (let i = 0; i < w.length; i++) {
    const x = w[i] as string;
    if (x === '') continue;
    if (SECRET_WORDS.has(x) || (x.length > 6 && SECRET_SUFFIX.test(x))) return true;
    if (i + 1 < w.length && SECRET_PAIRS.has(x + (w[i + 1] as string))) return true;
  }
  return false;
}

interface ValueRule {
  /** a cheap test that must pass before the pattern is run (most strings fail them all) */
  readonly may: (text: string, longestRun: number) => boolean;
  readonly pattern: RegExp;
  readonly replace: (match: string, groups: Record<string, string | undefined>) => string;
}

const whole = (): string => REDACTED;

const KNOWN_PREFIXES = /AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|gh[pousr]_|github_pat_|glpat-|xox[abposre]-|xapp-|_live_|_test_|whsec_|sk-|AIza|npm_|SG\.|mk_|hooks\.slack\.com/;

/** the longest run of characters a key, a token or a JWT is made of (`A-Z a-z 0-9 _ - + / = . ~`) */
function longestKeyRun(text: string): number {
  let longest = 0;
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isTokenChar(c) || c === 46 || c === 126) {
      run++;
      if (run > longest) longest = run;
    } else {
      run = 0;
    }
  }
  return longest;
}

/**
 * Rule 2, one pattern per kind of secret, in this order (a PEM block holds long base64 runs,
 * a URL query may hold a JWT): each runs only when its cheap test passes, so an ordinary string
 * costs a few substring searches.
 */
const VALUE_RULES: readonly ValueRule[] = [
  {
    // PEM private key, to its END line (or the end of the text when cut)
    may: (t) => t.includes('-----BEGIN'),
    pattern: /-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)/g,
    replace: whole,
  },
  {
    // JWS (3 parts) or JWE (5 parts)
    // a JWS header alone is 20 characters or more
    may: (t, run) => run >= 16 && t.includes('eyJ'),
    pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?/g,
    replace: whole,
  },
  {
    // an HTTP credential after its scheme ("Basic authentication" is prose: all lower case)
    may: (t, run) => run >= 8 && (t.includes('earer') || t.includes('asic') || t.includes('DPoP') || t.includes('igest')),
    pattern: /(?<scheme>\b(?:[Bb]earer|[Bb]asic|DPoP|[Dd]igest)\s+)(?<cred>[A-Za-z0-9._~+/=-]{8,})/g,
    replace: (m, g) => (/^[a-z]+$/.test(g['cred'] ?? '') ? m : (g['scheme'] ?? '') + REDACTED),
  },
  {
    // well-known key formats
    // the shortest of them is 18 characters
    may: (t, run) => run >= 16 && KNOWN_PREFIXES.test(t),
    pattern:
      /(?<![A-Za-z0-9])(?:(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}|xox[abposre]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,}|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9+/=]{16,}|sk-[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{35}|npm_[A-Za-z0-9]{36}|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}|mk_[A-Za-z0-9_-]{20,}|hooks\.slack\.com\/services\/[A-Za-z0-9/]+)/g,
    replace: whole,
  },
  {
    // user:password@ in a URL
    may: (t) => t.includes('://') && t.includes('@'),
    pattern: /(?<=:\/\/)[^/?#\s:@]+:[^/?#\s@]+(?=@)/g,
    replace: whole,
  },
  {
    // name=value in a query, a fragment, or form-like text
    may: (t) => t.includes('='),
    pattern: /(?<qname>(?:^|[?&;#\s,])[A-Za-z0-9_.\-[\]]{1,64}=)(?<qvalue>[^&#;\s"',]*)/g,
    replace: (m, g) => {
      const qname = g['qname'] ?? '';
      const name = qname.slice(/^[?&;#\s,]/.test(qname) ? 1 : 0, -1);
      if ((g['qvalue'] ?? '') === '') return m;
      return QUERY_SECRET_NAMES.has(name.toLowerCase()) || isSecretName(name) ? qname + REDACTED : m;
    },
  },
];

function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** `A-Z a-z 0-9 + / _ = -` */
function isTokenChar(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47 || c === 95 || c === 61 || c === 45;
}

/** Replaces each whole run of 32 to 256 token characters that looks random (one linear scan, no regex). */
function redactRandomRuns(text: string): string {
  let out: string | undefined;
  let copied = 0;
  let start = -1;
  for (let i = 0; i <= text.length; i++) {
    if (i < text.length && isTokenChar(text.charCodeAt(i))) {
      if (start === -1) start = i;
      continue;
    }
    if (start !== -1 && i - start >= 32 && i - start <= 256 && looksRandom(text.slice(start, i))) {
      out = (out ?? '') + text.slice(copied, start) + REDACTED;
      copied = i;
    }
    start = -1;
  }
  return out === undefined ? text : out + text.slice(copied);
}

/** the most frequent letter pairs of English: identifiers, paths and prose are full of them */
const COMMON_BIGRAMS = new Set(
  'th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de hi ri ro ic ne ea ra ce li ch ll be ma si om ur ca el ta la ns di fo ho pe ec pr no ct us ac ot il tr ly nc et ut ss so rs un lo wa ge ie'.split(' '),
);

/**
 * Whether a run reads as words: at least a quarter of its neighbouring pairs are common English
 * letter pairs, and at least 45 % of it is lower-case runs of three letters or more. Random
 * keys almost never are (about 1 in 10,000 of 32 characters, 1 in 40,000 of 40, measured);
 * camelCase identifiers, dotted names and paths almost always are.
 */
function readsAsWords(run: string): boolean {
  const lower = run.toLowerCase();
  let common = 0;
  for (let i = 1; i < lower.length; i++) if (COMMON_BIGRAMS.has(lower.slice(i - 1, i + 1))) common++;
  if (common < 0.25 * (lower.length - 1)) return false;
  let inRuns = 0;
  let run3 = 0;
  for (let i = 0; i <= run.length; i++) {
    const c = i < run.length ? run.charCodeAt(i) : 0;
    if (c >= 97 && c <= 122) {
      run3++;
      continue;
    }
    if (run3 >= 3) inRuns += run3;
    run3 = 0;
  }
  return inRuns >= 0.45 * run.length;
}

/**
 * A generated key: both cases (hex digests, base32 ids and ULIDs have one), not a repetition
 * (entropy of at least 3.5 bits per character) and not words (see `readsAsWords`).
 */
function looksRandom(run: string): boolean {
  if (!/[a-z]/.test(run) || !/[A-Z]/.test(run)) return false;
  return entropy(run) >= 3.5 && !readsAsWords(run);
}

/** Rule 2 on one string; returns it unchanged (the same string) when nothing was found. */
export function redactSecretsInText(text: string): string {
  // fewer than 8 characters hold no credential this recognises
  if (text.length < 8) return text;
  // prose is short words: most strings rule most patterns out in one pass
  const run = longestKeyRun(text);
  let out = text;
  for (const rule of VALUE_RULES) {
    if (!rule.may(out, run)) continue;
    out = out.replace(rule.pattern, (match: string, ...rest: unknown[]) => {
      const last = rest.at(-1);
      return rule.replace(match, typeof last === 'object' && last !== null ? (last as Record<string, string | undefined>) : {});
    });
  }
  // last: a long random-looking run, with mixed classes and a high entropy
  return run >= 32 ? redactRandomRuns(out) : out;
}

/**
 * `redactArgs`, and whether redaction changed anything: when it did not, the copy has the same
 * canonical JSON as the arguments (so one text serves both the audit form and `args_hash`).
 * With `sorted`, the copy's objects are built with their keys in sorted order (the same JSON
 * value, in the order canonical JSON writes it), so that its canonical text is written in one
 * pass (json.ts).
 */
export function redactArgsCopy(args: JsonObject, sorted = false): { redacted: JsonObject; changed: boolean } {
  let changed = false;
  const walk = (v: JsonValue): JsonValue => {
    if (typeof v === 'string') {
      // secrets first, then the cut: a secret across the cut must not leave its first half
      let s = redactSecretsInText(v);
      if (s !== v) changed = true;
      if (s.length > MAX_STRING) {
        changed = true;
        s = `${s.slice(0, MAX_STRING)}…[+${s.length - MAX_STRING} chars]`;
      }
      return s;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const out: JsonObject = {};
      const keys = Object.keys(v);
      if (sorted) keys.sort();
      for (const k of keys) {
        if (isSecretName(k)) {
          changed = true;
          out[k] = REDACTED;
        } else {
          out[k] = walk(v[k] as JsonValue);
        }
      }
      return out;
    }
    return v;
  };
  const redacted = walk(args) as JsonObject;
  return { redacted, changed };
}
