/**
 * Bounded inputs for client messages on either transport: size, nesting, JSON-RPC shape. A bad
 * message gets a JSON-RPC error (with its id when one can be read) and the session goes on.
 */
import { checkJsonBounds, describeError, isMandateError } from '@mandate/core';
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

/** Checks an already-parsed body (one message or a batch) against the limits. */
export function checkParsed(value: unknown, limits: MessageLimits): JsonRpcErrorMessage | undefined {
  try {
    checkJsonBounds(value, { maxDepth: limits.maxDepth, maxEntries: 10_000, maxStringLength: limits.maxBytes, maxNodes: 200_000 }, 'message');
  } catch (e) {
    return jsonRpcError(idOf(value), INVALID_REQUEST, `Invalid Request: ${describeError(e)}`, isMandateError(e) ? e.code : 'LIMIT_EXCEEDED');
  }
  return undefined;
}

/** Parses and checks one message's text: the message, or the error to answer with. */
export function parseMessage(text: string, limits: MessageLimits): { message: JSONRPCMessage } | { error: JsonRpcErrorMessage } {
  if (Buffer.byteLength(text) > limits.maxBytes) return { error: jsonRpcError(null, INVALID_REQUEST, `Invalid Request: message larger than ${limits.maxBytes} bytes`, 'LIMIT_EXCEEDED') };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { error: jsonRpcError(null, PARSE_ERROR, `Parse error: ${(e as Error).message}`, 'MALFORMED_REQUEST') };
  }
  const bad = checkParsed(value, limits);
  if (bad) return { error: bad };
  const r = JSONRPCMessageSchema.safeParse(value);
  if (!r.success) return { error: jsonRpcError(idOf(value), INVALID_REQUEST, 'Invalid Request: not a JSON-RPC 2.0 message', 'MALFORMED_REQUEST') };
  return { message: r.data };
}
