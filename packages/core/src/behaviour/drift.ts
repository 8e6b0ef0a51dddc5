/**
 * Mandate drift: a call that policy permits but that does not fit the task's declared purpose.
 * A task whose purpose mentions no writing, exporting or deleting (say "triage new tickets")
 * and that starts to write, export or delete is drifting, even when every call is permitted.
 *
 * A call's action class comes from its tool's category (tools.yaml) and the verbs in its name;
 * the purpose grants a class when it declares one of that class's verbs: in a clause that does
 * not negate, exclude or make it conditional (purpose.ts). Purpose words only ever narrow.
 * A tool the catalogue does not classify drifts (high) unless the mandate names it exactly.
 */
import { z } from 'zod';
import { isUncatalogued } from './combine.ts';
import { readPurpose, verbForms } from './purpose.ts';
import type { DetectorInput, Severity, Signal } from './types.ts';

const words = z.array(z.string().min(1).max(50)).max(200);
const severity = z.enum(['low', 'medium', 'high', 'critical']);

export const driftConfigSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('run the drift detector: a call whose action the declared purpose does not name (a write under a read-only purpose)'),
  read_only_purpose: words.default(['triage', 'summarise', 'summarize', 'review', 'search', 'read', 'look up', 'investigate', 'classify', 'answer', 'monitor', 'analyse', 'analyze', 'report']).describe('words that mark a purpose as looking, not acting'),
  /** per action class: the verbs that name it (in a tool name or a purpose) */
  classes: z
    .record(
      z.string().regex(/^[a-z_]{1,30}$/),
      z.strictObject({ verbs: words.describe('words that name this action in a tool name or a purpose'), categories: words.default([]).describe('tool categories (tools.yaml) that are this action whatever their name'), severity: severity.default('medium').describe('severity of a drift signal for this action') }),
    )
    .default({
      write: { verbs: ['write', 'update', 'edit', 'create', 'draft', 'modify', 'insert', 'save', 'close', 'assign', 'reply'], categories: ['write'], severity: 'medium' },
      export: { verbs: ['export', 'download', 'dump', 'upload', 'send', 'post', 'share', 'forward', 'transfer', 'publish', 'email', 'mail'], categories: ['external_sink'], severity: 'high' },
      delete: { verbs: ['delete', 'remove', 'drop', 'purge', 'destroy', 'truncate', 'erase', 'wipe'], categories: [], severity: 'high' },
      execute: { verbs: ['exec', 'execute', 'run', 'shell', 'deploy', 'install'], categories: ['exec'], severity: 'high' },
      pay: { verbs: ['pay', 'refund', 'charge', 'transfer', 'payment'], categories: ['payment'], severity: 'high' },
    }).describe('per action class: the verbs that name it (in a tool name or a purpose), its tool categories and its severity'),
});
export type DriftConfig = z.output<typeof driftConfigSchema>;

const SPLIT = /[^a-z0-9]+/;

/** a name's words: camelCase and snake_case alike ("deleteFile", "delete_file" → delete, file) */
function tokens(s: string): Set<string> {
  return new Set(
    s
      .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
      .toLowerCase()
      .split(SPLIT)
      .filter((t) => t.length > 0),
  );
}

/** The purpose as drift reads it: lower case, and its words (computed once per task). */
export function purposeWords(purpose: string): { readonly text: string; readonly tokens: ReadonlySet<string> } {
  return { text: purpose.toLowerCase(), tokens: tokens(purpose) };
}

type PurposeWords = ReturnType<typeof purposeWords>;

/** One configuration's verbs, with their forms: computed once per configuration. */
interface VerbIndex {
  /** word form → the classes whose verb it is (and that verb) */
  readonly forms: ReadonlyMap<string, readonly { readonly cls: string; readonly verb: string }[]>;
  /** per class: its verbs of several words, as " word word " */
  readonly phrases: ReadonlyMap<string, readonly string[]>;
  readonly readOnlyForms: ReadonlySet<string>;
  readonly readOnlyPhrases: readonly string[];
}

const indexes = new WeakMap<DriftConfig, VerbIndex>();

function phraseOf(words: string): string {
  return ' ' + words.toLowerCase().split(SPLIT).filter((t) => t.length > 0).join(' ') + ' ';
}

function verbIndex(cfg: DriftConfig): VerbIndex {
  let ix = indexes.get(cfg);
  if (ix !== undefined) return ix;
  const forms = new Map<string, { cls: string; verb: string }[]>();
  const phrases = new Map<string, string[]>();
  for (const [cls, def] of Object.entries(cfg.classes)) {
    for (const verb of def.verbs) {
      const v = verb.toLowerCase();
      if (!/^[a-z0-9]+$/.test(v)) {
        phrases.set(cls, [...(phrases.get(cls) ?? []), phraseOf(v)]);
        continue;
      }
      for (const f of verbForms(v)) {
        const list = forms.get(f) ?? [];
        if (!list.some((e) => e.cls === cls)) list.push({ cls, verb: v });
        forms.set(f, list);
      }
    }
  }
  const readOnlyForms = new Set<string>();
  const readOnlyPhrases: string[] = [];
  for (const w of cfg.read_only_purpose) {
    if (/^[a-z0-9]+$/i.test(w)) for (const f of verbForms(w)) readOnlyForms.add(f);
    else readOnlyPhrases.push(phraseOf(w));
  }
  ix = { forms, phrases, readOnlyForms, readOnlyPhrases };
  indexes.set(cfg, ix);
  return ix;
}

/** What drift reads of one task's purpose under one configuration: computed once per task, not per call. */
interface PurposeView {
  readonly readOnly: boolean;
  /** the classes the purpose declares: a verb of theirs in a clause that is not negated, excluded or conditional */
  readonly mentioned: ReadonlySet<string>;
}

const purposeViews = new WeakMap<PurposeWords, { readonly cfg: DriftConfig; readonly view: PurposeView }>();
/** a tool name's words (tool names repeat; bounded) */
const toolWords = new Map<string, ReadonlySet<string>>();
const MAX_TOOL_WORDS = 10_000;

function purposeView(purpose: PurposeWords, cfg: DriftConfig): PurposeView {
  const cached = purposeViews.get(purpose);
  if (cached !== undefined && cached.cfg === cfg) return cached.view;
  const ix = verbIndex(cfg);
  const clauses = readPurpose(purpose.text, (w) => ix.forms.has(w));
  const mentioned = new Set<string>();
  for (const c of clauses) {
    if (c.negated) continue;
    for (const w of c.words) for (const e of ix.forms.get(w) ?? []) mentioned.add(e.cls);
    const text = ' ' + c.words.join(' ') + ' ';
    for (const [cls, list] of ix.phrases) if (list.some((p) => text.includes(p))) mentioned.add(cls);
  }
  // read-only words only raise a signal's confidence, so they count wherever they stand
  const all = ' ' + [...purpose.text.split(SPLIT)].filter((t) => t.length > 0).join(' ') + ' ';
  const readOnly = [...purpose.tokens].some((t) => ix.readOnlyForms.has(t)) || ix.readOnlyPhrases.some((p) => all.includes(p));
  const view: PurposeView = { readOnly, mentioned };
  purposeViews.set(purpose, { cfg, view });
  return view;
}

function wordsOfTool(tool: string): ReadonlySet<string> {
  let w = toolWords.get(tool);
  if (w === undefined) {
    if (toolWords.size >= MAX_TOOL_WORDS) toolWords.clear();
    w = tokens(tool);
    toolWords.set(tool, w);
  }
  return w;
}

/** the verb of `cls` that a tool name holds, if any */
function verbInTool(ix: VerbIndex, toolTokens: ReadonlySet<string>, cls: string): string | undefined {
  for (const t of toolTokens) for (const e of ix.forms.get(t) ?? []) if (e.cls === cls) return e.verb;
  return undefined;
}

export function detectDrift(input: DetectorInput, cfg: DriftConfig): Signal[] {
  if (!cfg.enabled) return [];
  const call = input.call;
  const toolTokens = wordsOfTool(call.tool);
  const { readOnly, mentioned } = purposeView(input.task.purposeWords, cfg);
  const ix = verbIndex(cfg);
  const out: Signal[] = [];
  // a tool nobody classified fits no purpose unless the mandate names it, exactly: a glob
  // ("billing.*") grants calls, it does not say this tool is what the task is for
  if (isUncatalogued(call.category, call.risk) && !input.task.declaredTools.has(call.tool)) {
    out.push({
      detector: 'drift',
      severity: 'high',
      confidence: readOnly ? 0.85 : 0.8,
      evidence: { class: 'uncatalogued', tool: call.tool, category: call.category, risk: call.risk, purpose_read_only: readOnly, named_by_mandate: false },
    });
  }
  for (const [cls, def] of Object.entries(cfg.classes)) {
    const byCategory = def.categories.includes(call.category);
    const verb = verbInTool(ix, toolTokens, cls);
    if (!byCategory && verb === undefined) continue;
    if (mentioned.has(cls)) continue;
    // a first step into the class weighs more than the tenth
    const before = input.history.filter((e) => e.tool === call.tool).length;
    const sev: Severity = def.severity;
    out.push({
      detector: 'drift',
      severity: sev,
      confidence: Math.min(0.95, (readOnly ? 0.75 : 0.55) + (byCategory && verb !== undefined ? 0.1 : 0) + (before === 0 ? 0.05 : 0)),
      evidence: {
        class: cls,
        tool: call.tool,
        category: call.category,
        ...(verb !== undefined ? { verb } : {}),
        purpose_read_only: readOnly,
        first_of_its_kind: before === 0,
      },
    });
  }
  return out;
}
