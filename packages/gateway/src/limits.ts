/**
 * Bounded inputs for client messages on either transport: size, nesting, JSON-RPC shape. A bad
 * message gets a JSON-RPC error (with its id when one can be read) and the session goes on.
 */
import { checkJsonBounds, checkJsonTextBounds, describeError, isMandateError, type JsonLimits } from '@mandate/core';
import { JSONRPCMessageSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export interface MessageLimits {
  readonly maxBytes: number;
  readonly maxDepth: number;
}

export interface JsonRpcErrorMessage {
  jsonrpc: '2.0';
  id: string | number | null;
  error: { code: number; message: string; data?: { reason: string } };
}

export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;

export function jsonRpcError(id: string | number | null, code: number, message: string, reason?: string): JsonRpcErrorMessage {
  return { jsonrpc: '2.0', id, error: { code, message, ...(reason !== undefined ? { data: { reason } } : {}) } };
}

function idOf(v: unknown): string | number | null {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const id = (v as Record<string, unknown>)['id'];
    if (typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))) return id;
  }
  return null;
}

function jsonLimits(limits: MessageLimits): JsonLimits {
  return { maxDepth: limits.maxDepth, maxEntries: 10_000, maxStringLength: limits.maxBytes, maxNodes: 200_000 };
}

/** Checks an already-parsed body (one message or a batch) against the limits. */
export function checkParsed(value: unknown, limits: MessageLimits): JsonRpcErrorMessage | undefined {
  try {
    checkJsonBounds(value, jsonLimits(limits), 'message');
  } catch (e) {
    return jsonRpcError(idOf(value), INVALID_REQUEST, `Invalid Request: ${describeError(e)}`, isMandateError(e) ? e.code : 'LIMIT_EXCEEDED');
  }
  return undefined;
}

const NUMBER_AT = /-?\d{1,20}(?:\.\d{1,20})?(?:[eE][+-]?\d{1,5})?/y;

/**
 * The `id` of a single message read from its text without parsing it (for the error answering a
 * message refused before parsing): the value of an `"id"` key at the top level, when it is a string
 * of at most 256 characters or a number; otherwise null, as JSON-RPC asks when no id can be read.
 * Stops at the first top-level `"id"`; a duplicate is the parser's business, not this one's.
 */
function idFromText(text: string): string | number | null {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i;
      for (;;) {
        j = text.indexOf('"', j + 1);
        if (j === -1) return null;
        let k = j - 1;
        while (text.charCodeAt(k) === 0x5c /* \ */) k--;
        if ((j - 1 - k) % 2 === 0) break;
      }
      const isIdKey = depth === 1 && j === i + 3 && text.startsWith('"id"', i);
      i = j;
      if (!isIdKey) continue;
      let v = i + 1;
      while (v < text.length && /\s/.test(text[v] as string)) v++;
      if (text[v] !== ':') continue;
      v++;
      while (v < text.length && /\s/.test(text[v] as string)) v++;
      if (text[v] === '"') {
        const end = text.indexOf('"', v + 1);
        if (end === -1 || end - v > 257) return null;
        try {
          return JSON.parse(text.slice(v, end + 1)) as string;
        } catch {
          return null;
        }
      }
      NUMBER_AT.lastIndex = v;
      const n = NUMBER_AT.exec(text);
      return n ? Number(n[0]) : null;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth += 1;
      // a batch or a nested value: no single id to read
      if (depth === 1 && c === 0x5b) return null;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth -= 1;
    }
  }
  return null;
}

/**
 * Parses a body's text (one message or a batch) within the limits: nesting and width are checked
 * on the text before JSON.parse builds anything, the parsed value after. The value, or the error
 * to answer with.
 */
export function parseBounded(text: string, limits: MessageLimits): { value: unknown } | { error: JsonRpcErrorMessage } {
  try {
    checkJsonTextBounds(text, jsonLimits(limits), 'message');
  } catch (e) {
    return { error: jsonRpcError(idFromText(text), INVALID_REQUEST, `Invalid Request: ${describeError(e)}`, isMandateError(e) ? e.code : 'LIMIT_EXCEEDED') };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { error: jsonRpcError(null, PARSE_ERROR, `Parse error: ${(e as Error).message}`, 'MALFORMED_REQUEST') };
  }
  const bad = checkParsed(value, limits);
  return bad ? { error: bad } : { value };
}

/** Parses and checks one message's text: the message, or the error to answer with. */
export function parseMessage(text: string, limits: MessageLimits): { message: JSONRPCMessage } | { error: JsonRpcErrorMessage } {
  if (Buffer.byteLength(text) > limits.maxBytes) return { error: jsonRpcError(null, INVALID_REQUEST, `Invalid Request: message larger than ${limits.maxBytes} bytes`, 'LIMIT_EXCEEDED') };
  const parsed = parseBounded(text, limits);
  if ('error' in parsed) return parsed;
  const value = parsed.value;
  const r = JSONRPCMessageSchema.safeParse(value);
  if (!r.success) return { error: jsonRpcError(idOf(value), INVALID_REQUEST, 'Invalid Request: not a JSON-RPC 2.0 message', 'MALFORMED_REQUEST') };
  return { message: r.data };
}
