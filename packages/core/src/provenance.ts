/**
 * Provenance: where the values in a call's arguments came from.
 *
 * Every tool result an enforcement point sees (MCP gateway, SDK outcome report, replay) is
 * recorded against its task with the trust the operator declared for the tool: untrusted unless
 * declared trusted, per tool (`output_trust`) or per output field (`trusted_fields`). When the
 * task later calls a tool, each value in its arguments gets one origin, the first that holds:
 *
 * - `purpose`:        it appears in the task's declared purpose (what the user asked for);
 * - `trusted`:        it appeared in a trusted output, or at a trusted field of an untrusted one;
 * - `purpose_source`: it appeared in the output of a read of a source the purpose names
 *                     (provenance/named-sources.ts): the user delegated that read;
 * - `untrusted`:      it appeared only in untrusted output (web pages, e-mails, files written
 *                     by others);
 * - `unknown`:        a structured value (address, URL, IBAN, account number, path) that appears
 *                     nowhere the pipeline knows: typed by the model, or read from a result that
 *                     was never reported. Never trusted, never the purpose's.
 *
 * A destination a policy refused in a task stays refused there: a value that was a sink argument
 * of a denied call is `untrusted` for the rest of the task, whatever trusted output later shows
 * it (unless the purpose holds it). Trust never rises by repeating a refused value until a
 * trusted record echoes it.
 *
 * An argument is in a set as soon as one of its values has that origin: a list of recipients
 * with one injected address is in `untrusted_args` (and maybe also in `purpose_args`).
 * `untrusted_text` (within `untrusted`) holds the arguments with a value only ever *mentioned
 * inside prose* of untrusted output, never standing alone as a field's value there: where
 * injected instructions put their destinations. `purpose_source_text` (within `purpose_source`)
 * is the same for a source the purpose names: a value its prose mentions but never states (as a
 * field's value, or as its only e-mail address or only link): an instruction inside the user's
 * document is not the user's.
 *
 * Which values count: structured tokens at any length; the whole string of an argument when it
 * is at least `minLength` long; and for the arguments that name a destination (`sink_args` in
 * tools.yaml) every string, however short (a user or channel name means as much as an address):
 * as a whole word in the purpose or in untrusted text, as a field's whole value where it would
 * be vouched for. For content arguments (`content_args`) only their structured values can be
 * `untrusted_text`: their wording is the agent's, written from what it read.
 *
 * Memory is bounded: per task a budget of stored text, oldest results dropped first; across
 * tasks a budget of stored text for the whole node and an LRU of tasks, the least recently active
 * task's record dropped first. Forgetting fails closed: a task that lost any of what it read
 * (its oldest results, or its whole record) is `lossy` from then on, and every value of its later
 * calls that neither its purpose nor a trusted output holds counts as `untrusted` (what was
 * forgotten may have been untrusted output): flooding a task or the node with results cannot
 * launder a value read before.
 */
import type { JsonObject, JsonValue } from './json.ts';
import { NO_PROVENANCE, type ArgProvenance } from './policy/context.ts';
import { readResult, type ResultReading } from './provenance/reading.ts';
import { namedSources, readsNamedSource } from './provenance/named-sources.ts';
import { extractTokens, normaliseText, significantValues, tokenKey, type SignificantValue } from './provenance/tokens.ts';
import { joinLevel, levelRank, type LabelLevel, type ReadLabels, type ValueLabel } from './provenance/labels.ts';

export { extractTokens, normaliseText, significantValues, type TokenKind, type SignificantValue } from './provenance/tokens.ts';
export { fieldValues, readResult, FIELD_MAX, type ResultReading } from './provenance/reading.ts';
export { namedSources, readsNamedSource, SOURCE_CATEGORIES } from './provenance/named-sources.ts';

export type Trust = 'trusted' | 'untrusted';

export interface ProvenanceOptions {
  /** free-text values at least this long count (structured tokens count at any length) */
  readonly minLength: number;
  /** characters of normalised result text kept per task */
  readonly maxTextPerTask: number;
  /** characters of normalised result text kept by the whole ledger (all tasks together) */
  readonly maxText: number;
  /** characters scanned per result (longer results are scanned up to this) */
  readonly maxScanPerResult: number;
  /** tasks tracked at once (least recently used dropped) */
  readonly maxTasks: number;
}

export const DEFAULT_PROVENANCE_OPTIONS: ProvenanceOptions = {
  minLength: 8,
  maxTextPerTask: 2_000_000,
  maxText: 8_000_000,
  maxScanPerResult: 512 * 1024,
  maxTasks: 10_000,
};

/** How one result is recorded beside its trust. */
export interface RecordOptions {
  /** output fields the operator vouches for in an untrusted output (tools.yaml `trusted_fields`) */
  readonly trustedFields?: readonly string[] | undefined;
  /** the call read a source the task's purpose names (provenance/named-sources.ts) */
  readonly namedSource?: boolean | undefined;
  /** the labels stored for the shared entries the call read (provenance/labels.ts) */
  readonly labels?: ReadLabels | undefined;
}

interface Source {
  readonly text: string;
  readonly tokens: ReadonlySet<string>;
  /** values that stand alone as a field's value (see reading.ts) */
  readonly fields: ReadonlySet<string>;
  /** an untrusted output of a read of a source the purpose names */
  readonly named: boolean;
  /** a named source's only e-mail address, only link (see soleContacts) */
  readonly sole?: ReadonlySet<string> | undefined;
}

const NO_FIELDS: ReadonlySet<string> = new Set();

function isWordChar(c: number): boolean {
  // ASCII letters and digits, and every non-ASCII code unit (letters of other scripts)
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c > 127;
}

/** whether `word` occurs in `text` as a whole word (both already normalised) */
function hasWord(text: string, word: string): boolean {
  for (let i = text.indexOf(word); i !== -1; i = text.indexOf(word, i + 1)) {
    const before = i === 0 ? 32 : text.charCodeAt(i - 1);
    const after = i + word.length >= text.length ? 32 : text.charCodeAt(i + word.length);
    if (!isWordChar(before) && !isWordChar(after)) return true;
  }
  return false;
}

function textSource(text: string, named: boolean, fields: ReadonlySet<string> = NO_FIELDS): Source {
  const tokens = new Set<string>();
  for (const t of extractTokens(text)) tokens.add(tokenKey(t));
  return { text: normaliseText(text), tokens, fields, named };
}

/**
 * A named source also states a destination when it mentions only one of its kind (the one e-mail
 * address, the one link: "my e-mail is kim@…"), though in a sentence. An account or IBAN is
 * stated only as a field: where money goes is data, never a sentence. And this is for
 * destinations only: a link relayed in a message's content is not made safe by being the only one.
 */
function soleContacts(reading: ResultReading): ReadonlySet<string> {
  const byKind = new Map<string, string[]>();
  for (const t of reading.tokens) {
    const kind = t.slice(0, t.indexOf(':'));
    if (kind === 'email' || kind === 'url') byKind.set(kind, [...(byKind.get(kind) ?? []), t]);
  }
  return new Set([...byKind.values()].filter((ts) => ts.length === 1).map((ts) => ts[0] as string));
}

/** a trusted field's value: a source that is one field, whole */
function valueSource(value: string): Source {
  return textSource(value, false, new Set(['text:' + normaliseText(value)]));
}

class Matcher {
  readonly minLength: number;
  constructor(minLength: number) {
    this.minLength = minLength;
  }

  /**
   * Whether `src` holds `v`. A short value (a name, an id) counts only as a whole word ("Al" is
   * not in "also"), and, where it would vouch for a value (`exact`: a trusted output, a trusted
   * field, a named source), only as a field's whole value: the id "13" is not vouched for by a
   * timestamp that contains 13.
   */
  foundIn(src: Source, v: SignificantValue, exact = false): boolean {
    if (v.kind !== 'text' && src.tokens.has(tokenKey(v))) return true;
    // IBANs and account numbers may be written grouped in one text and ungrouped in another
    if (v.kind === 'iban' || v.kind === 'account') return src.text.replace(/[ -]/g, '').includes(v.value.toLowerCase());
    if (v.kind === 'text' && v.value.length < this.minLength) return exact ? src.fields.has(tokenKey(v)) : hasWord(src.text, v.value);
    return src.text.includes(v.value);
  }
}

/** a label read back from a shared resource, as the reading task holds it */
interface HeldLabel {
  readonly level: LabelLevel;
  readonly tasks: readonly string[];
}

class TaskProvenance {
  readonly trusted: Source[] = [];
  readonly untrusted: Source[] = [];
  /** values of sink arguments of calls a policy denied (tokenKey form) */
  readonly refused = new Set<string>();
  /** labels of values read back from shared resources (tokenKey form; see provenance/labels.ts) */
  readonly labelled = new Map<string, HeldLabel>();
  /** …of which free text, matched inside as well as whole */
  readonly labelledText: string[] = [];
  size = 0;
  /** some of what the task read was forgotten (see the module comment) */
  lossy = false;
}

/** refused destinations kept per task (the oldest forgotten first) */
const MAX_REFUSED = 1000;
/** labels read back from shared resources kept per task (the oldest forgotten first) */
const MAX_LABELLED = 10_000;

/** What a value's label becomes in the task that reads it back: the sets it puts its argument in. */
function labelOrigins(level: LabelLevel, v: SignificantValue, contentArg: boolean): Origin[] {
  if (level === 'untrusted_text') return v.kind === 'text' && contentArg ? ['untrusted'] : ['untrusted', 'untrusted_text'];
  if (level === 'untrusted') return ['untrusted'];
  // seen nowhere the writer knew: a structured value stays unknown; free text is no one's
  return v.kind === 'text' ? ['untrusted'] : ['unknown'];
}

/** The label a writer gives a value, from where it came from in its task (none: purpose or trusted). */
function labelOf(seen: ReadonlySet<string>): LabelLevel | undefined {
  if (seen.has('purpose') || seen.has('trusted')) return undefined;
  if (seen.has('untrusted_text') || seen.has('purpose_source_text')) return 'untrusted_text';
  if (seen.has('untrusted') || seen.has('purpose_source')) return 'untrusted';
  return 'unknown';
}

/** What one tool result contributed, for audit and tests. */
export interface RecordedResult {
  readonly trust: Trust;
  readonly chars: number;
  readonly tokens: number;
  /** values found at trusted fields of an untrusted output */
  readonly vouched: number;
  readonly namedSource: boolean;
  /** labelled values of shared entries the output showed (read back with their labels) */
  readonly labelled: number;
  /** the other tasks that wrote them */
  readonly foreignTasks: readonly string[];
  /** the output was read back untrusted whole: its entries held more labels than kept */
  readonly saturated: boolean;
  /** the task has forgotten some of what it read, now or before (see the module comment) */
  readonly lossy: boolean;
  /** characters of earlier results forgotten to make room for this one: the task's own, and other tasks' whole records */
  readonly forgotten: number;
}

type Origin = 'purpose' | 'trusted' | 'purpose_source' | 'untrusted' | 'unknown' | 'none' | 'untrusted_text' | 'purpose_source_text';

/** The sources a value is classified against, gathered once per call. */
interface Scope {
  readonly taskId: string;
  readonly sources: readonly TaskProvenance[];
  readonly purposeSrc: Source;
  readonly sinkArgs: readonly string[];
  readonly contentArgs: readonly string[];
  /** the task forgot some of what it read (see the module comment) */
  readonly lossy: boolean;
}

/**
 * Per-task record of the values seen in tool results, and the classifier that turns a call's
 * arguments into the `ArgProvenance` the policy context carries. Pure and deterministic.
 */
export class ProvenanceLedger {
  private readonly opts: ProvenanceOptions;
  private readonly match: Matcher;
  private readonly tasks = new Map<string, TaskProvenance>();
  /** characters of result text held, all tasks together */
  private held = 0;
  /**
   * tasks whose whole record was dropped (for room), as many as tasks are tracked: a later call
   * of one finds it lossy. A task forgotten longer ago than that starts afresh (not lossy).
   */
  private readonly dropped = new Set<string>();
  /** declared purposes, read once each (a task's purpose is fixed; many calls share it) */
  private readonly purposes = new Map<string, { source: Source; named: ReadonlySet<string> }>();

  constructor(opts: Partial<ProvenanceOptions> = {}) {
    this.opts = { ...DEFAULT_PROVENANCE_OPTIONS, ...opts };
    this.match = new Matcher(this.opts.minLength);
  }

  /** Records a tool result seen by `taskId`, with the trust of the tool that produced it. */
  record(taskId: string, declared: Trust, result: JsonValue, o: RecordOptions = {}): RecordedResult {
    // entries that held more labels than kept: nothing they return can be vouched for
    const saturated = o.labels?.saturated === true;
    const trust: Trust = saturated ? 'untrusted' : declared;
    const trustedFields = trust === 'untrusted' ? (o.trustedFields ?? []) : [];
    const reading = readResult(result, this.opts.maxScanPerResult, trustedFields);
    const named = trust === 'untrusted' && o.namedSource === true;
    const src: Source = { text: reading.text, tokens: reading.tokens, fields: reading.fields, named, ...(named ? { sole: soleContacts(reading) } : {}) };
    const t = this.touch(taskId, true)!;
    const crossed = o.labels ? this.holdLabels(t, taskId, reading, o.labels.labels) : { labelled: 0, foreignTasks: [] };
    (trust === 'trusted' ? t.trusted : t.untrusted).push(src);
    let added = src.text.length;
    // the values at trusted fields: each its own trusted source, so that no match spans two of them
    for (const v of reading.vouched) {
      const vs = valueSource(v);
      t.trusted.push(vs);
      added += vs.text.length;
    }
    t.size += added;
    this.held += added;
    const before = this.held;
    // the node's bound: the least recently active tasks' records go first (this task is the most recent)
    while (this.held > this.opts.maxText && this.tasks.size > 1) {
      const oldest = this.tasks.keys().next().value;
      if (oldest === undefined || oldest === taskId) break;
      this.drop(oldest);
    }
    // the task's bound (and the node's, when this task alone is over it): its oldest results
    // first, untrusted before trusted, so a flood of untrusted text cannot push out what the
    // organisation trusts
    while ((t.size > this.opts.maxTextPerTask || this.held > this.opts.maxText) && (t.untrusted.length > 1 || t.trusted.length > 1)) {
      const from = t.untrusted.length > 1 ? t.untrusted : t.trusted;
      const gone = from.shift()!;
      t.size -= gone.text.length;
      this.held -= gone.text.length;
      t.lossy = true;
    }
    return { trust, chars: src.text.length, tokens: src.tokens.size, vouched: reading.vouched.length, namedSource: named, ...crossed, saturated, lossy: t.lossy, forgotten: before - this.held };
  }

  /** The labels of the values this output shows, held by the task (the least trusted per value). */
  private holdLabels(t: TaskProvenance, taskId: string, reading: ResultReading, labels: readonly ValueLabel[]): { labelled: number; foreignTasks: string[] } {
    let labelled = 0;
    const foreign = new Set<string>();
    for (const l of labels) {
      const isText = l.key.startsWith('text:');
      if (isText ? !reading.text.includes(l.key.slice(5)) : !reading.tokens.has(l.key)) continue;
      labelled++;
      for (const id of l.tasks) if (id !== taskId) foreign.add(id);
      const held = t.labelled.get(l.key);
      if (held === undefined && isText) t.labelledText.push(l.key.slice(5));
      t.labelled.delete(l.key);
      t.labelled.set(l.key, held === undefined ? { level: l.level, tasks: l.tasks } : { level: joinLevel(held.level, l.level), tasks: [...new Set([...held.tasks, ...l.tasks])].slice(-16) });
      if (t.labelled.size > MAX_LABELLED) {
        const oldest = t.labelled.keys().next().value;
        if (oldest !== undefined) t.labelled.delete(oldest);
        const at = oldest?.startsWith('text:') === true ? t.labelledText.indexOf(oldest.slice(5)) : -1;
        if (at >= 0) t.labelledText.splice(at, 1);
      }
    }
    return { labelled, foreignTasks: [...foreign] };
  }

  /** The least trusted label a value holds in these sources (whole, or free text inside a labelled text). */
  private heldLabel(sources: readonly TaskProvenance[], v: SignificantValue): HeldLabel | undefined {
    let found: HeldLabel | undefined;
    const key = tokenKey(v);
    for (const s of sources) {
      if (s.labelled.size === 0) continue;
      const whole = s.labelled.get(key);
      if (whole !== undefined) found = found === undefined || levelRank(whole.level) < levelRank(found.level) ? whole : found;
      // free text inside a labelled text; a short value only whole (a name is not every word of a sentence)
      if (v.kind !== 'text' || v.value.length < this.opts.minLength) continue;
      for (const text of s.labelledText) {
        if (!text.includes(v.value)) continue;
        const l = s.labelled.get('text:' + text);
        if (l !== undefined && (found === undefined || levelRank(l.level) < levelRank(found.level))) found = l;
      }
    }
    return found;
  }

  /**
   * Remembers the destinations of a call a policy denied (the values of its sink arguments):
   * they stay refused for the rest of the task (see the module comment).
   */
  refuse(taskId: string, args: JsonObject, sinkArgs: readonly string[]): void {
    if (sinkArgs.length === 0) return;
    const t = this.touch(taskId, true)!;
    for (const name of sinkArgs) {
      const value = args[name];
      if (value === undefined) continue;
      for (const v of significantValues(value, 0)) {
        t.refused.delete(tokenKey(v));
        t.refused.add(tokenKey(v));
        if (t.refused.size > MAX_REFUSED) {
          const oldest = t.refused.values().next().value;
          if (oldest !== undefined) t.refused.delete(oldest);
        }
      }
    }
  }

  /** The sources the purpose names (normalised; see provenance/named-sources.ts). */
  namedSources(purpose: string): ReadonlySet<string> {
    return this.purposeOf(purpose).named;
  }

  /** Whether a call with these arguments reads a source the purpose names (provenance/named-sources.ts). */
  readsNamedSource(purpose: string, args: JsonObject): boolean {
    const p = this.purposeOf(purpose);
    return readsNamedSource(p.named, args, p.source.text);
  }

  /**
   * Classifies each top-level argument of a call of `taskId` whose declared purpose is `purpose`.
   * `inherit`: ancestor tasks whose record the task sees; `sinkArgs`: the arguments that name a
   * destination (every value of theirs counts, however short); `contentArgs`: the arguments whose
   * wording the agent writes (only their structured values can be `untrusted_text`).
   */
  classify(taskId: string, purpose: string, args: JsonObject, inherit: readonly string[] = [], sinkArgs: readonly string[] = [], contentArgs: readonly string[] = []): ArgProvenance {
    const own = this.touch(taskId, false);
    const lineage = inherit.map((id) => this.tasks.get(id)).filter((t): t is TaskProvenance => t !== undefined);
    if (!own && lineage.length === 0 && Object.keys(args).length === 0) return NO_PROVENANCE;
    const scope: Scope = { taskId, sources: own ? [own, ...lineage] : lineage, purposeSrc: this.purposeOf(purpose).source, sinkArgs, contentArgs, lossy: this.lossy(taskId, own, inherit) };
    const sets = { purpose: [] as string[], trusted: [] as string[], purposeSource: [] as string[], purposeSourceText: [] as string[], untrusted: [] as string[], untrustedText: [] as string[], unknown: [] as string[] };
    const labelledArgs: string[] = [];
    const foreign = new Set<string>();
    for (const [name, value] of Object.entries(args)) {
      const seen = new Set<Origin>();
      let labelled = false;
      for (const v of significantValues(value, sinkArgs.includes(name) ? 0 : this.opts.minLength)) {
        const label = this.originsOf(scope, name, v, seen);
        if (label === undefined) continue;
        labelled = true;
        for (const id of label.tasks) if (id !== taskId) foreign.add(id);
      }
      if (seen.has('purpose')) sets.purpose.push(name);
      if (seen.has('trusted')) sets.trusted.push(name);
      if (seen.has('purpose_source')) sets.purposeSource.push(name);
      if (seen.has('purpose_source_text')) sets.purposeSourceText.push(name);
      if (seen.has('untrusted')) sets.untrusted.push(name);
      if (seen.has('untrusted_text')) sets.untrustedText.push(name);
      if (seen.has('unknown')) sets.unknown.push(name);
      if (labelled) labelledArgs.push(name);
    }
    // only a task that read labelled values back carries these (provenance/labels.ts)
    return labelledArgs.length === 0 ? sets : { ...sets, labelled: labelledArgs, foreignTasks: [...foreign] };
  }

  /**
   * The labels a write of these arguments gives its values (provenance/labels.ts): every value
   * that was not the purpose's or trusted in the writing task, with where it came from there,
   * short ones included (a name written to a ticket may come back as a recipient). A value read
   * back with a label keeps it (the least trusted of the two) and names its writers.
   */
  labelsOf(taskId: string, purpose: string, args: JsonObject, inherit: readonly string[] = [], contentArgs: readonly string[] = []): ValueLabel[] {
    const own = this.touch(taskId, false);
    const lineage = inherit.map((id) => this.tasks.get(id)).filter((t): t is TaskProvenance => t !== undefined);
    const scope: Scope = { taskId, sources: own ? [own, ...lineage] : lineage, purposeSrc: this.purposeOf(purpose).source, sinkArgs: [], contentArgs, lossy: this.lossy(taskId, own, inherit) };
    const out = new Map<string, ValueLabel>();
    for (const [name, value] of Object.entries(args)) {
      for (const v of significantValues(value, 0)) {
        const seen = new Set<Origin>();
        const held = this.originsOf(scope, name, v, seen);
        const level = labelOf(seen);
        if (level === undefined) continue;
        const key = tokenKey(v);
        const prev = out.get(key);
        const tasks = [...new Set([...(prev?.tasks ?? []), ...(held?.tasks ?? []), taskId])];
        out.set(key, { key, level: prev === undefined ? level : joinLevel(prev.level, level), tasks });
      }
    }
    return [...out.values()];
  }

  /**
   * Adds the origins of one value of argument `name` to `seen`; returns the label it was read
   * back with from a shared resource, if that decided it.
   */
  private originsOf(scope: Scope, name: string, v: SignificantValue, seen: Set<Origin>): HeldLabel | undefined {
    const { sources, purposeSrc, sinkArgs, contentArgs } = scope;
    const inPurpose = this.match.foundIn(purposeSrc, v);
    let label: HeldLabel | undefined;
    if (inPurpose) seen.add('purpose');
    else if (sources.some((s) => s.refused.has(tokenKey(v)))) {
      seen.add('untrusted');
      return undefined;
    } else {
      // read back from a shared resource with a label: never above it, whatever vouches for it
      // here (no trusted output, no named source); this task's own untrusted reads still count
      label = this.heldLabel(sources, v);
      if (label !== undefined) for (const o of labelOrigins(label.level, v, contentArgs.includes(name))) seen.add(o);
    }
    const inTrusted = label === undefined && sources.some((s) => s.trusted.some((src) => this.match.foundIn(src, v, true)));
    if (inTrusted) seen.add('trusted');
    if (inPurpose || inTrusted) return undefined;
    let named = false;
    let untrusted = false;
    for (const s of sources) {
      for (const src of s.untrusted) {
        // a named source vouches like a trusted one (a short value only as a field's whole
        // value); a short value its prose merely mentions is untrusted there
        if (label === undefined && src.named && !named && this.match.foundIn(src, v, true)) named = true;
        else if (!untrusted && this.match.foundIn(src, v)) untrusted = true;
      }
    }
    if (label !== undefined && !untrusted) return label;
    if (named || untrusted) {
      seen.add(named ? 'purpose_source' : 'untrusted');
      // …and never as a field's whole value there: only mentioned inside prose (the wording of a
      // content argument is the agent's own: only its structured values count here)
      const key = tokenKey(v);
      const sink = sinkArgs.includes(name);
      const prose = !sources.some((s) => s.untrusted.some((src) => src.fields.has(key) || (sink && src.named && src.sole?.has(key) === true)));
      if (prose && !(v.kind === 'text' && contentArgs.includes(name))) seen.add(named ? 'purpose_source_text' : 'untrusted_text');
    } else {
      if (v.kind !== 'text') seen.add('unknown');
      // held nowhere the task still remembers, and it forgot some of what it read
      if (scope.lossy) seen.add('untrusted');
    }
    return label;
  }

  /** whether this task, or an ancestor whose record it sees, forgot some of what it read */
  private lossy(taskId: string, own: TaskProvenance | undefined, inherit: readonly string[]): boolean {
    if (own ? own.lossy : this.dropped.has(taskId)) return true;
    return inherit.some((id) => this.tasks.get(id)?.lossy ?? this.dropped.has(id));
  }

  /** Drops a task's record for room: its later calls find it lossy. */
  private drop(taskId: string): void {
    const t = this.tasks.get(taskId);
    if (t === undefined) return;
    this.tasks.delete(taskId);
    this.held -= t.size;
    this.dropped.add(taskId);
    if (this.dropped.size > this.opts.maxTasks) {
      const oldest = this.dropped.values().next().value;
      if (oldest !== undefined) this.dropped.delete(oldest);
    }
  }

  private purposeOf(purpose: string): { source: Source; named: ReadonlySet<string> } {
    let p = this.purposes.get(purpose);
    if (p === undefined) {
      p = { source: textSource(purpose, false), named: namedSources(purpose) };
      this.purposes.set(purpose, p);
      // bounded like the tasks: as many purposes as tasks remembered
      if (this.purposes.size > this.opts.maxTasks) {
        const oldest = this.purposes.keys().next().value;
        if (oldest !== undefined) this.purposes.delete(oldest);
      }
    }
    return p;
  }

  /** Forgets a task (it ended). */
  forget(taskId: string): void {
    const t = this.tasks.get(taskId);
    if (t !== undefined) this.held -= t.size;
    this.tasks.delete(taskId);
    this.dropped.delete(taskId);
  }

  get size(): number {
    return this.tasks.size;
  }

  /** characters of result text held, all tasks together */
  get heldText(): number {
    return this.held;
  }

  private touch(taskId: string, create: boolean): TaskProvenance | undefined {
    let t = this.tasks.get(taskId);
    if (t) {
      // LRU: re-insert at the end
      this.tasks.delete(taskId);
      this.tasks.set(taskId, t);
      return t;
    }
    if (!create) return undefined;
    t = new TaskProvenance();
    // a task whose record was dropped starts again lossy
    if (this.dropped.delete(taskId)) t.lossy = true;
    this.tasks.set(taskId, t);
    while (this.tasks.size > this.opts.maxTasks) {
      const oldest = this.tasks.keys().next().value;
      if (oldest === undefined) break;
      this.drop(oldest);
    }
    return t;
  }
}
