/**
 * Labels that travel with data through shared resources (a ticket store, a memory server, a
 * file share): when a task writes values to a resource the tool catalogue marks as shared
 * (tools.yaml `shared`), every value it wrote that was not the purpose's or trusted in that task
 * is labelled with its provenance there and the writing task's id; when any task later reads the
 * resource, the labels of the values its output shows come back with it, in place of the
 * reading tool's blanket trust.
 *
 * A label only ever lowers trust: a value with no label reads back with the tool's trust, a
 * labelled one never above its label, and a value labelled twice keeps the least trusted of the
 * two (`joinLevel`). A task's own purpose still holds a value it names.
 */
import { MandateError } from '../errors.ts';
import type { JsonObject, JsonValue } from '../json.ts';

/**
 * What a stored label says of a value, least trusted first: seen in the prose of untrusted
 * output (where injected instructions put their destinations); seen in untrusted output; seen
 * nowhere the writer's pipeline knew (typed by the model). A value the writer had from its
 * purpose or from trusted output carries no label.
 */
export type LabelLevel = 'untrusted_text' | 'untrusted' | 'unknown';

export const LABEL_LEVELS: readonly LabelLevel[] = ['untrusted_text', 'untrusted', 'unknown'];

/** One value's label in one shared resource. */
export interface ValueLabel {
  /** the value's normalised key (provenance/tokens.ts `tokenKey`: `email:…`, `text:…`) */
  readonly key: string;
  readonly level: LabelLevel;
  /** the tasks that wrote the value with a label, oldest first (bounded) */
  readonly tasks: readonly string[];
}

/** 0 is least trusted */
export function levelRank(l: LabelLevel): number {
  return l === 'untrusted_text' ? 0 : l === 'untrusted' ? 1 : 2;
}

/** The least trusted of two labels: a value never gains trust by being written again. */
export function joinLevel(a: LabelLevel, b: LabelLevel): LabelLevel {
  return levelRank(a) <= levelRank(b) ? a : b;
}

/**
 * Merges a label into the one a resource holds for the same value: the least trusted level,
 * and the writing tasks, the newest kept when there are more than `maxTasks`.
 */
export function mergeLabel(held: ValueLabel | undefined, add: ValueLabel, maxTasks: number): ValueLabel {
  if (held === undefined) return { key: add.key, level: add.level, tasks: add.tasks.slice(-maxTasks) };
  const tasks = [...held.tasks.filter((t) => !add.tasks.includes(t)), ...add.tasks].slice(-Math.max(1, maxTasks));
  return { key: held.key, level: joinLevel(held.level, add.level), tasks };
}

/** Where a tool reaches a shared resource (tools.yaml `shared`). */
export interface SharedResource {
  /** the resource's name, the same for every tool that reaches it */
  readonly store: string;
  /** arguments whose values name the entry within it (a path); none: the resource is one entry */
  readonly keyArgs: readonly string[];
}

/** characters of an entry's name kept in its key */
const ENTRY_MAX = 512;

/**
 * The entries of a shared resource a call names: `<store>` alone when the resource is one entry
 * or the call names none of its key arguments (`whole`: a read then sees every entry), else
 * `<store>:<value>` for each string value of a key argument (a list names several).
 */
export function resourceEntries(shared: SharedResource, args: JsonObject): { entries: string[]; whole: boolean } {
  if (shared.keyArgs.length === 0) return { entries: [shared.store], whole: true };
  const entries = new Set<string>();
  const add = (v: JsonValue | undefined) => {
    if (typeof v === 'string' && v.length > 0) entries.add(`${shared.store}:${v.slice(0, ENTRY_MAX)}`);
    else if (Array.isArray(v)) for (const x of v.slice(0, 64)) if (typeof x === 'string' && x.length > 0) entries.add(`${shared.store}:${x.slice(0, ENTRY_MAX)}`);
  };
  for (const name of shared.keyArgs) add(args[name]);
  return entries.size === 0 ? { entries: [shared.store], whole: true } : { entries: [...entries], whole: false };
}

/** Categories whose calls only read: every other call to a shared resource may write to it. */
export const READ_ONLY_CATEGORIES: ReadonlySet<string> = new Set(['read', 'fetch']);

/** What a read of shared entries brings back. */
export interface ReadLabels {
  readonly labels: readonly ValueLabel[];
  /**
   * an entry held more labelled values than it may keep, or the read matched more than it may
   * return: its output is read back as untrusted as a whole
   */
  readonly saturated: boolean;
}

export interface LabelLimits {
  /** labels kept per entry; past it the entry is saturated (read back untrusted whole) */
  readonly maxLabels: number;
  /** writing task ids kept per label */
  readonly maxTasks: number;
  /** live entries kept; a new entry past it is refused (expired ones are removed first) */
  readonly maxEntries: number;
}

/**
 * The store holds `max` live entries: a new one is refused, never made room for by forgetting
 * a live entry (its values would read back with the tool's trust, so an agent could launder an
 * injected value by flooding the store). The write is denied; expiry frees room.
 */
export function labelStoreFull(max: number): MandateError {
  return new MandateError('LIMIT_EXCEEDED', `the shared label store holds its ${max} live entries (shared_labels.max_entries): a new entry is refused rather than forget another's labels`);
}

/**
 * Persistence of labels, by entry (store adapters implement it; one conformance suite). An
 * entry expires `expiresAt` after its last write; an expired one reads as absent.
 */
export interface LabelStore {
  /** merges labels into an entry (mergeLabel per value) and sets its expiry */
  putLabels(entry: string, store: string, labels: readonly ValueLabel[], at: { now: number; expiresAt: number }, limits: LabelLimits): Promise<void>;
  /**
   * The labels of these entries, or with `store`, of every entry of that shared resource; at
   * most `limit` (more: `saturated`). Expired entries are absent.
   */
  readLabels(q: { entries: readonly string[]; store?: string | undefined }, now: number, limit: number): Promise<ReadLabels>;
  /** deletes up to `limit` expired entries; returns how many */
  pruneLabels(now: number, limit: number): Promise<number>;
}

export interface SharedLabelOptions {
  /** how long an entry's labels live after its last write, ms */
  readonly ttlMs: number;
  readonly limits: LabelLimits;
  /** labels a read may bring back (more: the read is saturated) */
  readonly maxRead: number;
  /** characters of a free-text value kept in its label */
  readonly maxTextLength: number;
}

export const DEFAULT_SHARED_LABEL_OPTIONS: SharedLabelOptions = {
  ttlMs: 30 * 86_400_000,
  limits: { maxLabels: 1000, maxTasks: 8, maxEntries: 100_000 },
  maxRead: 10_000,
  maxTextLength: 1024,
};

/** Free text longer than the bound is labelled by its start (a value read back is matched in it). */
export function boundLabel(l: ValueLabel, maxText: number): ValueLabel {
  return l.key.startsWith('text:') && l.key.length > maxText + 5 ? { ...l, key: l.key.slice(0, maxText + 5) } : l;
}

/** What one write changes in an entry (computed alike by every store adapter). */
export interface LabelWritePlan {
  /** labels to insert or replace */
  readonly upserts: readonly ValueLabel[];
  /** labels the entry holds after the write */
  readonly count: number;
  readonly saturated: boolean;
}

/**
 * Merges `add` into an entry that holds `held` (the existing labels of the same keys) and
 * `count` labels in all. A new value past `maxLabels` is not kept: the entry becomes saturated
 * instead, and is read back untrusted whole from then on.
 */
export function planLabelWrite(held: ReadonlyMap<string, ValueLabel>, count: number, saturated: boolean, add: readonly ValueLabel[], limits: LabelLimits): LabelWritePlan {
  const upserts: ValueLabel[] = [];
  let n = count;
  let full = saturated;
  for (const l of add) {
    const prev = held.get(l.key);
    if (prev === undefined && n >= limits.maxLabels) {
      full = true;
      continue;
    }
    const merged = mergeLabel(prev, l, limits.maxTasks);
    if (prev !== undefined && merged.level === prev.level && merged.tasks.join('\u0000') === prev.tasks.join('\u0000')) continue;
    if (prev === undefined) n++;
    upserts.push(merged);
  }
  return { upserts, count: n, saturated: full };
}

/** A label's level as stored, checked on the way back (an unknown word reads as the least trusted). */
export function storedLevel(s: string): LabelLevel {
  return s === 'untrusted' || s === 'unknown' ? s : 'untrusted_text';
}

/** A label's writing tasks as stored (JSON), checked on the way back. */
export function storedTasks(s: string): string[] {
  try {
    const v: unknown = JSON.parse(s);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
