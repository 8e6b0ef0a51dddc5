import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluateConstraint, extractHost, parseMandate } from '../src/index.ts';

// The `domains` constraint reads one host from a value that is exactly one host name, one e-mail
// address or one http(s) URL; anything a reader could take for something else is refused.

const allowed = (domains: string[], value: string): boolean => evaluateConstraint({ domains }, value).ok;

describe('domains: values that name an outside host are refused', () => {
  // pinned: each of these was allowed with `domains: [acme.example]`
  it.each([
    'attacker@evil.example,x@acme.example',
    'attacker@evil.example, x@acme.example',
    'attacker@evil.example x@acme.example',
    'attacker@evil.example;x@acme.example',
    'attacker@evil.example\r\nCc:x@acme.example',
    'attacker@evil.example\r\nCc: x@acme.example',
    'https://acme.example\\@evil.example/',
  ])('refuses %j', (value) => {
    const r = evaluateConstraint({ domains: ['acme.example'] }, value);
    expect(r.ok).toBe(false);
    expect(r.why).toMatch(/no single host could be read/);
    expect(extractHost(value)).toBeUndefined();
  });

  it.each([
    ['https://acme.example@evil.example/', 'userinfo'],
    ['https://x@acme.example/', 'userinfo'],
    ['https://acme.example/@evil.example', 'an @ in its path'],
    ['https://acme.example%2fevil.example/', 'percent-encoded host'],
    ['https://acme%2eexample/', 'percent-encoded host'],
    ['https://acme.example:99999/', 'port out of range'],
    ['https://acme.example:x/', 'malformed port'],
    ['ftp://acme.example/', 'another scheme'],
    ['javascript://acme.example/%0aalert(1)', 'another scheme'],
    ['mailto:x@acme.example', 'a scheme without //'],
    ['//acme.example/', 'a relative URL'],
    ['acme.example/path', 'a host with a path'],
    ['acme.example:443', 'a host with a port'],
    ['"x"@acme.example', 'a quoted local part'],
    ['"evil.example,x"@acme.example', 'a quoted local part'],
    ['Name <x@acme.example>', 'a display name'],
    ['<x@acme.example>', 'angle brackets'],
    ['x@acme.example (comment)', 'a comment'],
    ['x(comment)@acme.example', 'a comment'],
    ['x%evil.example@acme.example', 'percent routing'],
    ['evil.example!x@acme.example', 'bang routing'],
    ['@evil.example:x@acme.example', 'a source route'],
    ['x@acme.example.', 'a trailing dot in an address'],
    ['x@[10.0.0.1]', 'an address literal'],
    ['x..y@acme.example', 'an empty atom'],
    ['ａcme.example', 'a full-width letter IDNA maps to ASCII'],
    ['acme。example', 'an ideographic full stop IDNA maps to a dot'],
    ['ac\u00adme.example', 'a soft hyphen IDNA drops'],
    ['acme\u200b.example', 'a zero-width space'],
    [' acme.example', 'leading space'],
    ['acme.example\n', 'a trailing newline'],
    ['acme.example\t', 'a tab'],
    ['acme.example\u0000', 'NUL'],
    ['acme..example', 'an empty label'],
    ['-acme.example', 'a leading hyphen'],
    ['acme_x.example', 'an underscore'],
    ['', 'nothing'],
  ])('refuses %j (%s)', (value) => {
    expect(allowed(['acme.example', '*.acme.example', '10.0.0.1'], value)).toBe(false);
  });

  it('refuses IDNA deviations and numeric forms that readers resolve differently', () => {
    expect(allowed(['xn--fa-hia.example', 'fass.example'], 'faß.example')).toBe(false);
    expect(allowed(['127.0.0.1'], 'https://0x7f.1/')).toBe(false);
    expect(allowed(['127.0.0.1'], '2130706433')).toBe(false);
    expect(allowed(['127.0.0.1'], '127.1')).toBe(false);
    expect(allowed(['127.0.0.1'], '0127.0.0.1')).toBe(false);
    expect(allowed(['[::1]'], 'https://[0:0::1]/')).toBe(false);
  });
});

describe('domains: single, plain values are read', () => {
  it.each([
    ['acme.example', ['acme.example']],
    ['ACME.Example.', ['acme.example']],
    ['x@acme.example', ['acme.example']],
    ["first.last+tag=1&o'k@mail.acme.example", ['*.acme.example']],
    ['https://acme.example/path?q=a,b;c#f', ['acme.example']],
    ['HTTPS://ACME.EXAMPLE.', ['acme.example']],
    ['http://acme.example:8080/x', ['acme.example']],
    ['https://acme.example:443', ['acme.example']],
    ['bücher.example', ['bücher.example']],
    ['https://bücher.example/', ['xn--bcher-kva.example']],
    ['x@xn--bcher-kva.example', ['BÜCHER.example.']],
    ['10.0.0.1', ['10.0.0.1']],
    ['https://[::1]:8443/', ['[::1]']],
  ])('allows %j under %j', (value, domains) => {
    expect(evaluateConstraint({ domains }, value)).toEqual({ ok: true });
  });

  it('names the host it read when it is not listed', () => {
    expect(evaluateConstraint({ domains: ['acme.example'] }, 'https://evil.example/')).toEqual({ ok: false, why: 'host "evil.example" is not in the allow-list' });
    expect(allowed(['*.acme.example'], 'acme.example')).toBe(false);
    expect(allowed(['acme.example'], 'acme.example.evil.example')).toBe(false);
    expect(allowed(['acme.example'], 'evilacme.example')).toBe(false);
  });

  it('refuses allow-list entries that are not host names at declaration', () => {
    for (const bad of ['https://acme.example', 'acme.example/x', '*', '*.', 'a b.example', 'x@acme.example', '*.10.0.0.1']) {
      expect(() => parseMandate({ purpose: 'p', environment: 'prod', tools: [{ name: 'm', args: { to: { domains: [bad] } } }] }), bad).toThrowError(
        expect.objectContaining({ code: 'MANDATE_INVALID', message: expect.stringContaining(JSON.stringify(bad)) }),
      );
    }
  });
});

// ---------------------------------------------------------------------------------- readers

/** A host as a reader would compare it: lower case, IDNA applied where it parses, no trailing dot. */
function canonical(host: string): string {
  let h = host.toLowerCase();
  try {
    h = new URL(`http://${h}/`).hostname;
  } catch {
    // not a host WHATWG reads: compare the text as it is
  }
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

function listed(host: string, list: readonly string[]): boolean {
  const h = canonical(host);
  return list.some((raw) => (raw.startsWith('*.') ? h.endsWith('.' + canonical(raw.slice(2))) : h === canonical(raw)));
}

function hasScheme(v: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:/.test(v);
}

/** WHATWG URL: the value as a URL, and (without a scheme) as what `http://` + value reads. */
function whatwgHosts(v: string): string[] {
  const out: string[] = [];
  for (const text of hasScheme(v) ? [v] : [v, `http://${v}`]) {
    try {
      const u = new URL(text);
      if (u.hostname !== '') out.push(u.hostname);
    } catch {
      // no host by this reading
    }
  }
  return out;
}

const RFC3986 = /^(?:([^:/?#]+):)?(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/s;

/** RFC 3986 appendix B: the authority's host, with the userinfo cut at the first or the last @. */
function rfc3986Hosts(v: string): string[] {
  const out: string[] = [];
  for (const text of hasScheme(v) ? [v] : [v, `//${v}`]) {
    const authority = RFC3986.exec(text)?.[2];
    if (authority === undefined || authority === '') continue;
    for (const hostPort of [authority.slice(authority.indexOf('@') + 1), authority.slice(authority.lastIndexOf('@') + 1)]) {
      const host = hostPort.startsWith('[') ? hostPort.slice(0, hostPort.indexOf(']') + 1) : hostPort.replace(/:[^:]*$/, '');
      if (host !== '') out.push(host);
    }
  }
  return out;
}

/**
 * RFC 5322, read leniently as a header would be: the value split into addresses at commas,
 * semicolons and line breaks, each address's domain after its @ (inside <> when there are any),
 * and every other @ followed by a name as well.
 */
function rfc5322Hosts(v: string): string[] {
  const out: string[] = [];
  for (const part of v.split(/[,;\r\n]/)) {
    const angle = /<([^>]*)>/.exec(part);
    const addr = (angle ? (angle[1] as string) : part).trim();
    const at = addr.lastIndexOf('@');
    if (at >= 0) out.push(addr.slice(at + 1).replace(/[\s)"'>\]]+.*$/s, ''));
  }
  for (const m of v.matchAll(/@([^\s@,;<>()"'[\]\\/:?#]+)/g)) out.push(m[1] as string);
  return out.filter((h) => h !== '');
}

// ---------------------------------------------------------------------------------- property

const INSIDE = ['acme.example', 'mail.acme.example', 'ACME.example', 'acme.example.', 'bücher.example', '10.0.0.1'];
const OUTSIDE = ['evil.example', 'acme.example.evil.example', 'evilacme.example', 'evil.example.', 'xn--80ak6aa92e.com', '127.0.0.1', '[::1]', 'acme.example%2eevil.example', 'ａcme.example', 'faß.example'];
const SEPARATORS = [',', ', ', ' ', ';', '\r\nCc: ', '\r\n', '\n', '\t', '\\', '/', '@', '#', '?', '%40', '%2e', '＠', '\u0000', '\u200b', '<', '>', ':', '!', '%', ''];
const LOCALS = ['x', 'a.b', 'attacker', 'x+y', '"a@b"', '"a b"', 'a%evil.example', 'evil.example!x', 'x{y}', '#', ''];

const host = fc.oneof(fc.constantFrom(...INSIDE), fc.constantFrom(...OUTSIDE));
const port = fc.constantFrom('', ':443', ':8080', ':', ':99999', ':x');
const path = fc.constantFrom('', '/', '/p?q=1', '/@evil.example', '?u=https://evil.example/', '#evil.example', '/a,b;c');
const email = fc.tuple(fc.constantFrom(...LOCALS), host).map(([l, h]) => `${l}@${h}`);
const url = fc
  .tuple(fc.constantFrom('https', 'http', 'HTTP', 'ftp', 'javascript', 'https:', ''), fc.option(fc.oneof(host, fc.constantFrom(...LOCALS))), host, port, path)
  .map(([s, user, h, p, rest]) => `${s}://${user === null ? '' : `${user}@`}${h}${p}${rest}`);
const display = fc.tuple(fc.constantFrom('Name', '"Evil, Inc"', ''), email).map(([n, e]) => `${n} <${e}>`);
const single = fc.oneof(host, email, url, display);
/** lists of values joined by separators, and values with separators and encodings inserted */
const value = fc.oneof(
  single,
  fc.tuple(fc.array(single, { minLength: 2, maxLength: 3 }), fc.constantFrom(...SEPARATORS)).map(([vs, sep]) => vs.join(sep)),
  fc.tuple(single, fc.nat(), fc.constantFrom(...SEPARATORS), single).map(([a, at, sep, b]) => a.slice(0, at % (a.length + 1)) + sep + b),
  fc.tuple(single, fc.nat()).map(([v, at]) => {
    // percent-encode one character, or upper-case the value
    const i = at % Math.max(1, v.length);
    return at % 3 === 0 ? v.toUpperCase() : v.slice(0, i) + '%' + (v.codePointAt(i) ?? 0).toString(16).padStart(2, '0').slice(-2) + v.slice(i + 1);
  }),
);
const list = fc.uniqueArray(fc.constantFrom('acme.example', '*.acme.example', 'bücher.example', '10.0.0.1', 'mail.acme.example'), { minLength: 1, maxLength: 3 });

describe('domains: an allowed value names only listed hosts, by any reader', () => {
  it('holds for random lists, separators and encodings (WHATWG URL, RFC 3986, RFC 5322)', () => {
    let allowedCount = 0;
    fc.assert(
      fc.property(list, value, (domains, v) => {
        if (!allowed(domains, v)) return;
        allowedCount += 1;
        const hosts = [...whatwgHosts(v), ...rfc3986Hosts(v), ...rfc5322Hosts(v)];
        expect(hosts.length, v).toBeGreaterThan(0);
        for (const h of hosts) expect(listed(h, domains), `${JSON.stringify(v)} names ${h} outside ${domains.join(', ')}`).toBe(true);
      }),
      { numRuns: 20_000, seed: 20261205 },
    );
    // the property is not vacuous: plenty of values were allowed and read
    expect(allowedCount).toBeGreaterThan(500);
  });
});
