/**
 * One copy of the values that many cached records repeat. Every task of an agent names the same
 * agent, most tasks of one kind declare the same mandate, and every record read from the store
 * or parsed from a token brings its own copy of each: over 10,000 live tasks of one mandate the
 * task cache and the verified-token cache held 20,000 copies of the agent's id, 20,000 of the
 * mandate's hash and 10,000 of the mandate itself (~490 B each), ~8 MB in all. The caches keep
 * these instead: equal strings as one string, equal mandates as one frozen mandate.
 *
 * Values only, so one pool serves the whole process. Each pool is bounded and emptied whole when
 * full: a value not shared is only a copy kept, never a wrong one.
 */
import { canonicalJson, deepFreeze, type JsonObject } from '../json.ts';
import type { Mandate } from '../mandate/schema.ts';
import type { Task } from '../model.ts';

/** strings shared at most, and the longest shared (ids, hashes, states and names are shorter) */
const MAX_STRINGS = 4096;
const MAX_STRING_LENGTH = 256;
/** distinct mandates shared at most */
const MAX_MANDATES = 1024;

const strings = new Map<string, string>();
/** a mandate's hash → the shared mandate (a deep-frozen copy) and its canonical text */
const mandates = new Map<string, { readonly text: string; readonly mandate: Mandate }>();

/** the shared copy of `s` (`s` itself when it is too long to share) */
export function sharedString(s: string): string {
  if (s.length > MAX_STRING_LENGTH) return s;
  const known = strings.get(s);
  if (known !== undefined) return known;
  if (strings.size >= MAX_STRINGS) strings.clear();
  strings.set(s, s);
  return s;
}

/**
 * The shared copy of a mandate whose hash is `hash`: the one held under that hash when its
 * canonical text is the same, otherwise a frozen copy of `m` (held from then on; its text is
 * kept here, not on the copy, so a task whose mandate is its own costs no more than before). The copy
 * is compared, not the hash trusted: a record whose hash does not match its mandate keeps its own.
 * `m` itself is never changed.
 */
export function sharedMandate(hash: string, m: Mandate): Mandate {
  const known = mandates.get(hash);
  if (known !== undefined && known.mandate === m) return m;
  const text = canonicalJson(m);
  if (known !== undefined && known.text === text) return known.mandate;
  // a copy, frozen all the way down: what many tasks hold must never change under any of them
  const copy = structuredClone(m);
  deepFreeze(copy as unknown as JsonObject);
  if (mandates.size >= MAX_MANDATES) mandates.clear();
  mandates.set(hash, { text, mandate: copy });
  return copy;
}

/** `t` with its repeated values shared: the task the caches hold */
export function sharedTask(t: Task): Task {
  const mandate = sharedMandate(t.mandateHash, t.mandate);
  const agentId = sharedString(t.agentId);
  const mandateHash = sharedString(t.mandateHash);
  const state = sharedString(t.state) as Task['state'];
  if (mandate === t.mandate && agentId === t.agentId && mandateHash === t.mandateHash && state === t.state) return t;
  return { ...t, agentId, mandate, mandateHash, state };
}
