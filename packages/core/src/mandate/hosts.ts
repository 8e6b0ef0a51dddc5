/*
 * The `domains` constraint: which host a value names. A value is read only when it has exactly one
 * of three shapes, strictly, so that every common reader (a WHATWG URL parser, an RFC 3986
 * parser, an RFC 5322 address-list parser, a mailer) finds the same single host in it; anything
 * else is refused with the reason. Accepting `attacker@evil.example,x@acme.example` because one
 * reader saw acme.example was the failure this guards against.
 *
 * 1. a host name: LDH labels (letters, digits, hyphens), or internationalised labels that IDNA
 *    turns into `xn--` labels; a dotted-quad IPv4 address; one trailing dot allowed;
 * 2. an e-mail address `local@domain`: one `@`, a dot-atom local part of letters, digits and
 *    $ & ' * + = ^ _ ` { | } ~ - (no quoted parts, comments, display names, `%` or `!` routing,
 *    or URL delimiters), a host name domain (no IP literal, no trailing dot);
 * 3. an absolute `http:` or `https:` URL whose authority is a host name, an IPv4 address or a
 *    bracketed IPv6 address, with an optional port: no userinfo, no `@` anywhere, no
 *    percent-encoding in the host, and the WHATWG parser must read the same scheme, host and port.
 *
 * Everywhere: no whitespace, control, format (bidi, zero-width), private-use or lone-surrogate
 * characters, and no backslash (WHATWG reads it as `/`, RFC 3986 does not).
 */

export type HostReading = { readonly host: string } | { readonly why: string };

const REFUSED_CHARS = /[\p{Cc}\p{Cf}\p{Z}\p{Co}\p{Cs}\\]/u;
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ASCII_LABEL = /^[A-Za-z0-9-]+$/;
const IDN_LABEL = /^[\p{L}\p{M}\p{N}-]+$/u;
const PUNYCODE_LABEL = /^xn--[a-z0-9-]{1,59}$/;
/** IDNA 2003 and 2008 map these differently (ß → ss or kept): two readers, two hosts */
const IDNA_DEVIATIONS = /[\u00df\u03c2\u200c\u200d]/u;
const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const LOCAL_PART = /^[A-Za-z0-9$&'*+=^_`{|}~-]+(?:\.[A-Za-z0-9$&'*+=^_`{|}~-]+)*$/;
const URL_SHAPE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([/?#].*)?$/s;
const IPV6_AUTHORITY = /^(\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/;
const NAME_AUTHORITY = /^([^:[\]]+)(?::(\d{1,5}))?$/;
const DEFAULT_PORT: Readonly<Record<string, number>> = { http: 80, https: 443 };

/** The hostname WHATWG's URL parser reads from `http://<text>/`, or undefined when it fails. */
function whatwgHost(text: string): string | undefined {
  try {
    return new URL(`http://${text}/`).hostname;
  } catch {
    return undefined;
  }
}

/**
 * A host name or IPv4 address in the one form every reader agrees on (lower case, IDNA labels as
 * `xn--`, no trailing dot), or undefined when `text` is not strictly one.
 */
export function normaliseHostName(text: string, opts: { trailingDot: boolean } = { trailingDot: true }): string | undefined {
  let t = text;
  if (opts.trailingDot && t.endsWith('.')) t = t.slice(0, -1);
  if (t.length === 0 || t.length > 253 || REFUSED_CHARS.test(t)) return undefined;
  const labels: string[] = [];
  for (const raw of t.split('.')) {
    if (ASCII_LABEL.test(raw)) {
      const label = raw.toLowerCase();
      if (!LDH_LABEL.test(label)) return undefined;
      labels.push(label);
      continue;
    }
    // an internationalised label must come out of IDNA as one `xn--` label: a label that maps
    // to plain ASCII (full-width letters, soft hyphens) or to several labels (an ideographic
    // full stop) is read differently by a reader that does not map it
    if (!IDN_LABEL.test(raw) || IDNA_DEVIATIONS.test(raw)) return undefined;
    const ascii = whatwgHost(raw);
    if (ascii === undefined || !PUNYCODE_LABEL.test(ascii)) return undefined;
    labels.push(ascii);
  }
  const host = labels.join('.');
  if (host.length > 253) return undefined;
  // WHATWG reads a name ending in a number as an IPv4 address (`1.2.3` is 1.2.0.3, `a.0x7f`
  // fails): only names it reads exactly as written are accepted, and dotted quads as written
  if (whatwgHost(host) !== host) return undefined;
  return host;
}

function isIPv4(host: string): boolean {
  return IPV4.test(host);
}

/** A bracketed IPv6 literal in WHATWG's canonical form, or undefined. */
function normaliseIPv6(text: string): string | undefined {
  const host = whatwgHost(text);
  return host !== undefined && host.startsWith('[') && host === text.toLowerCase() ? host : undefined;
}

function readUrl(value: string, m: RegExpExecArray): HostReading {
  const scheme = (m[1] as string).toLowerCase();
  if (DEFAULT_PORT[scheme] === undefined) return { why: `a ${scheme}: URL: only http and https URLs are read` };
  if (value.includes('@')) return { why: 'a URL with an @ in it (userinfo, or an address in its path) is ambiguous' };
  const authority = m[2] as string;
  const v6 = IPV6_AUTHORITY.exec(authority);
  const named = v6 ? undefined : NAME_AUTHORITY.exec(authority);
  const parts = v6 ?? named;
  if (!parts) return { why: 'the URL has no host, or a malformed authority' };
  const host = v6 ? normaliseIPv6(parts[1] as string) : normaliseHostName(parts[1] as string);
  if (host === undefined) return { why: 'the URL\'s host is not a plain host name or IP address' };
  const port = parts[2] === undefined ? DEFAULT_PORT[scheme] : Number(parts[2]);
  if (port === undefined || port > 65_535) return { why: 'the URL\'s port is out of range' };
  // the WHATWG parser must read what the RFC 3986 reading above did
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { why: 'the URL does not parse' };
  }
  const whatwg = url.hostname.endsWith('.') ? url.hostname.slice(0, -1) : url.hostname;
  const whatwgPort = url.port === '' ? DEFAULT_PORT[scheme] : Number(url.port);
  if (url.protocol !== `${scheme}:` || url.username !== '' || url.password !== '' || whatwg !== host || whatwgPort !== port) {
    return { why: 'URL parsers disagree on the URL\'s host' };
  }
  return { host };
}

function readEmail(value: string, at: number): HostReading {
  if (value.indexOf('@', at + 1) >= 0) return { why: 'more than one @: a value must be a single address' };
  if (value.length > 254) return { why: 'the address is longer than 254 characters' };
  const local = value.slice(0, at);
  if (local.length === 0 || local.length > 64 || !LOCAL_PART.test(local)) {
    return { why: 'the address\'s local part is not a plain dot-atom (no lists, display names, quotes, comments, routing or separators)' };
  }
  const host = normaliseHostName(value.slice(at + 1), { trailingDot: false });
  if (host === undefined || isIPv4(host)) return { why: 'the address\'s domain is not a plain host name' };
  return { host };
}

/**
 * The one host `value` names (normalised as by `normaliseHostName`), or why none is read: see
 * the shapes above. Linear in the value's length.
 */
export function readHost(value: string): HostReading {
  if (value.length === 0) return { why: 'the value is empty' };
  if (REFUSED_CHARS.test(value)) return { why: 'the value holds whitespace, control characters or a backslash' };
  const url = URL_SHAPE.exec(value);
  if (url) return readUrl(value, url);
  if (value.includes('://')) return { why: 'the value is not a URL of the form scheme://host/…' };
  const at = value.indexOf('@');
  if (at >= 0) return readEmail(value, at);
  const host = normaliseHostName(value);
  if (host === undefined) return { why: 'the value is not a single host name, e-mail address or http(s) URL' };
  return { host };
}

/**
 * An allow-list entry in normal form: a host name or IPv4 address (`normaliseHostName`), a
 * bracketed IPv6 address, or `*.` and a host name (its subdomains, not itself); undefined when
 * the entry is none of these (it then matches nothing, and mandates refuse it).
 */
export function normaliseDomainEntry(raw: string): string | undefined {
  if (raw.startsWith('*.')) {
    const base = normaliseHostName(raw.slice(2));
    return base === undefined || isIPv4(base) ? undefined : `*.${base}`;
  }
  if (raw.startsWith('[')) return normaliseIPv6(raw);
  return normaliseHostName(raw);
}

/** Normalised allow-lists by the (parsed, never mutated) list they came from. */
const normalisedLists = new WeakMap<readonly string[], readonly string[]>();

function normalisedList(entries: readonly string[]): readonly string[] {
  let list = normalisedLists.get(entries);
  if (list === undefined) {
    list = entries.map(normaliseDomainEntry).filter((e): e is string => e !== undefined);
    normalisedLists.set(entries, list);
  }
  return list;
}

/** Whether a host read by `readHost` is on the allow-list. */
export function hostAllowed(host: string, entries: readonly string[]): boolean {
  for (const entry of normalisedList(entries)) {
    if (entry.startsWith('*.') ? host.endsWith(entry.slice(1)) : host === entry) return true;
  }
  return false;
}
