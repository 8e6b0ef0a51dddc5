import type { JsonObject, JsonValue } from '../json.ts';

const SECRET_KEY = /(pass(word|phrase)?|secret|token|api[_-]?key|authorization|cookie|credential|private[_-]?key|session)/i;
const MAX_STRING = 1024;

/**
 * What of a call's arguments goes into the audit log: values under secret-looking keys are
 * replaced, long strings truncated. The full arguments are bound by `args_hash` instead.
 */
export function redactArgs(args: JsonObject): JsonObject {
  return redactArgsCopy(args).redacted;
}

/**
 * `redactArgs`, and whether redaction changed anything: when it did not, the copy has the same
 * canonical JSON as the arguments (so one text serves both the audit form and `args_hash`).
 */
export function redactArgsCopy(args: JsonObject): { redacted: JsonObject; changed: boolean } {
  let changed = false;
  const walk = (v: JsonValue): JsonValue => {
    if (typeof v === 'string') {
      if (v.length <= MAX_STRING) return v;
      changed = true;
      return `${v.slice(0, MAX_STRING)}…[+${v.length - MAX_STRING} chars]`;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const out: JsonObject = {};
      for (const [k, x] of Object.entries(v)) {
        if (SECRET_KEY.test(k)) {
          changed = true;
          out[k] = '[REDACTED]';
        } else {
          out[k] = walk(x);
        }
      }
      return out;
    }
    return v;
  };
  const redacted = walk(args) as JsonObject;
  return { redacted, changed };
}
