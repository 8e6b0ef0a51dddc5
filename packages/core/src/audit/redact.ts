import type { JsonObject, JsonValue } from '../json.ts';

const SECRET_KEY = /(pass(word|phrase)?|secret|token|api[_-]?key|authorization|cookie|credential|private[_-]?key|session)/i;
const MAX_STRING = 1024;

/**
 * What of a call's arguments goes into the audit log: values under secret-looking keys are
 * replaced, long strings truncated. The full arguments are bound by `args_hash` instead.
 */
export function redactArgs(args: JsonObject): JsonObject {
  const walk = (v: JsonValue): JsonValue => {
    if (typeof v === 'string') return v.length > MAX_STRING ? `${v.slice(0, MAX_STRING)}…[+${v.length - MAX_STRING} chars]` : v;
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const out: JsonObject = {};
      for (const [k, x] of Object.entries(v)) out[k] = SECRET_KEY.test(k) ? '[REDACTED]' : walk(x);
      return out;
    }
    return v;
  };
  return walk(args) as JsonObject;
}
