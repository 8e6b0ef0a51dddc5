import { MandateError } from './errors.ts';

export interface SpiffeId {
  readonly trustDomain: string;
  readonly path: string;
  readonly id: string;
}

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_LENGTH = 2048;

/**
 * Parses a SPIFFE ID by the SPIFFE-ID specification: scheme `spiffe`, a lowercase trust domain
 * of [a-z0-9.-_] (no port, no userinfo), a path of non-empty segments of [A-Za-z0-9.-_] that are
 * not "." or "..", no trailing slash, no query or fragment, at most 2048 bytes.
 */
export function parseSpiffeId(value: string): SpiffeId {
  const fail = (why: string): never => {
    throw new MandateError('SPIFFE_ID_INVALID', `invalid SPIFFE ID: ${why}`);
  };
  if (typeof value !== 'string') return fail('not a string');
  if (value.length > MAX_LENGTH) fail(`longer than ${MAX_LENGTH} bytes`);
  if (!value.startsWith('spiffe://')) fail('scheme must be spiffe://');
  const rest = value.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (trustDomain.length === 0) fail('empty trust domain');
  if (!TRUST_DOMAIN.test(trustDomain)) fail('trust domain may only contain a-z, 0-9, ".", "-", "_"');
  if (path !== '') {
    const segments = path.slice(1).split('/');
    for (const s of segments) {
      if (s.length === 0) fail('empty path segment or trailing slash');
      if (s === '.' || s === '..') fail('relative path segment');
      if (!SEGMENT.test(s)) fail('path may only contain A-Z, a-z, 0-9, ".", "-", "_"');
    }
  }
  return { trustDomain, path, id: value };
}

/** A workload (agent) SPIFFE ID must name a workload, not just a trust domain. */
export function parseWorkloadSpiffeId(value: string): SpiffeId {
  const parsed = parseSpiffeId(value);
  if (parsed.path === '') {
    throw new MandateError('SPIFFE_ID_INVALID', 'invalid SPIFFE ID: a workload ID needs a path');
  }
  return parsed;
}

export function isValidTrustDomain(value: string): boolean {
  return value.length > 0 && value.length <= 255 && TRUST_DOMAIN.test(value);
}
