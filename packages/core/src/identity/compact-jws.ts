/**
 * Structural checks of a compact JWS before any key is touched: bounded size, three canonical
 * base64url parts, a JSON-object header and payload with unique member names. The payload read
 * here is unverified and only routes the token to the right keys.
 */
import { base64url } from 'jose';
import { MandateError } from '../errors.ts';
import { findDuplicateKey } from '../json.ts';

/** Workload tokens are a few hundred bytes; anything past this is refused before decoding. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface UnverifiedJws {
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly signature: string;
}

function malformed(why: string): MandateError {
  return new MandateError('TOKEN_MALFORMED', `malformed token: ${why}`);
}

/**
 * Decodes unpadded base64url and insists on the canonical encoding: a decoder that ignores the
 * unused low bits of the last character would let many strings stand for one token.
 */
function decodeCanonical(part: string, name: string): Uint8Array {
  // unpadded base64url never has a length of 1 mod 4
  if (!BASE64URL.test(part) || part.length % 4 === 1) throw malformed(`${name} is not base64url`);
  let bytes: Uint8Array;
  try {
    bytes = base64url.decode(part);
  } catch {
    throw malformed(`${name} is not base64url`);
  }
  if (base64url.encode(bytes) !== part) throw malformed(`${name} is not canonical base64url`);
  return bytes;
}

function decodeJsonObject(part: string, name: string): Record<string, unknown> {
  if (part.length === 0) throw malformed(`${name} is empty`);
  const bytes = decodeCanonical(part, name);
  let text: string;
  let value: unknown;
  try {
    text = utf8.decode(bytes);
    value = JSON.parse(text);
  } catch {
    throw malformed(`${name} is not UTF-8 JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`${name} is not a JSON object`);
  // RFC 7515 §4 / RFC 7519 §4: names must be unique. JSON.parse (and jose) keep the last of two
  // `sub`s, other readers the first: a token that names two subjects is refused, not read one way.
  // Names are compared decoded ("\u0073ub" is "sub"); the same name in two nested objects is fine.
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) throw malformed(`${name} has the member ${preview(duplicate)} more than once`);
  return value as Record<string, unknown>;
}

/** Splits and decodes a compact JWS without verifying it. Throws TOKEN_MALFORMED. */
export function decodeUnverified(token: unknown): UnverifiedJws {
  if (typeof token !== 'string') throw malformed('not a string');
  if (token.length > MAX_TOKEN_LENGTH) throw malformed(`${token.length} characters, limit ${MAX_TOKEN_LENGTH}`);
  const parts = token.split('.');
  if (parts.length !== 3) throw malformed(`a compact JWS has 3 parts, this has ${parts.length}`);
  const [header, payload, signature] = parts as [string, string, string];
  const decoded = { header: decodeJsonObject(header, 'header'), payload: decodeJsonObject(payload, 'payload') };
  decodeCanonical(signature, 'signature');
  return { ...decoded, signature };
}

/** A short printable form of an untrusted value, for error messages. */
export function preview(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : typeof value;
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
