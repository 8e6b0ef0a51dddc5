/**
 * Mandate drift: a call that policy permits but that does not fit the task's declared purpose.
 * A task whose purpose mentions no writing, exporting or deleting (say "triage new tickets")
 * and that starts to write, export or delete is drifting, even when every call is permitted.
 *
 * A call's action class comes from its tool's category (tools.yaml) and the verbs in its name;
 * the purpose grants a class when it mentions one of that class's verbs.
 */
import { z } from 'zod';
import type { DetectorInput, Severity, Signal } from './types.ts';

const words = z.array(z.string().min(1).max(50)).max(200);
const severity = z.enum(['low', 'medium', 'high', 'critical']);

export const driftConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** words that mark a purpose as looking, not acting */
  read_only_purpose: words.default(['triage', 'summarise', 'summarize', 'review', 'search', 'read', 'look up', 'investigate', 'classify', 'answer', 'monitor', 'analyse', 'analyze', 'report']),
  /** per action class: the verbs that name it (in a tool name or a purpose) */
  classes: z
    .record(
      z.string().regex(/^[a-z_]{1,30}$/),
      z.strictObject({ verbs: words, categories: words.default([]), severity: severity.default('medium') }),
    )
    .default({
      write: { verbs: ['write', 'update', 'edit', 'create', 'draft', 'modify', 'insert', 'save', 'close', 'assign', 'reply'], categories: ['write'], severity: 'medium' },
      export: { verbs: ['export', 'download', 'dump', 'upload', 'send', 'post', 'share', 'forward', 'transfer', 'publish', 'email', 'mail'], categories: ['external_sink'], severity: 'high' },
      delete: { verbs: ['delete', 'remove', 'drop', 'purge', 'destroy', 'truncate', 'erase', 'wipe'], categories: [], severity: 'high' },
      execute: { verbs: ['exec', 'execute', 'run', 'shell', 'deploy', 'install'], categories: ['exec'], severity: 'high' },
      pay: { verbs: ['pay', 'refund', 'charge', 'transfer', 'payment'], categories: ['payment'], severity: 'high' },
    }),
});
export type DriftConfig = z.output<typeof driftConfigSchema>;

const SPLIT = /[^a-z0-9]+/;

function tokens(s: string): Set<string> {
  return new Set(s.toLowerCase().split(SPLIT).filter((t) => t.length > 0));
}

/** whether `text` (already lower case) mentions `word` as a word or a word's start ("exports", "drafting") */
function mentions(textTokens: ReadonlySet<string>, text: string, word: string): boolean {
  const w = word.toLowerCase();
  if (w.includes(' ')) return text.includes(w);
  if (textTokens.has(w)) return true;
  for (const t of textTokens) if (t.startsWith(w) && t.length - w.length <= 3) return true;
  return false;
}

/** The purpose as drift reads it: lower case, and its words (computed once per task). */
export function purposeWords(purpose: string): { readonly text: string; readonly tokens: ReadonlySet<string> } {
  return { text: purpose.toLowerCase(), tokens: tokens(purpose) };
}

/** What drift reads of one task's purpose under one configuration: computed once per task, not per call. */
interface PurposeView {
  readonly readOnly: boolean;
  /** the classes whose verbs the purpose mentions (calls in them are not drift) */
  readonly mentioned: ReadonlySet<string>;
}

const purposeViews = new WeakMap<PurposeWords, { readonly cfg: DriftConfig; readonly view: PurposeView }>();
/** a tool name's words (tool names repeat; bounded) */
const toolWords = new Map<string, ReadonlySet<string>>();
const MAX_TOOL_WORDS = 10_000;

type PurposeWords = ReturnType<typeof purposeWords>;

function purposeView(purpose: PurposeWords, cfg: DriftConfig): PurposeView {
  const cached = purposeViews.get(purpose);
  if (cached !== undefined && cached.cfg === cfg) return cached.view;
  const view: PurposeView = {
    readOnly: cfg.read_only_purpose.some((w) => mentions(purpose.tokens, purpose.text, w)),
    mentioned: new Set(Object.entries(cfg.classes).filter(([, def]) => def.verbs.some((v) => mentions(purpose.tokens, purpose.text, v))).map(([cls]) => cls)),
  };
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

export function detectDrift(input: DetectorInput, cfg: DriftConfig): Signal[] {
  if (!cfg.enabled) return [];
  const call = input.call;
  const toolTokens = wordsOfTool(call.tool);
  const { readOnly, mentioned } = purposeView(input.task.purposeWords, cfg);
  const out: Signal[] = [];
  for (const [cls, def] of Object.entries(cfg.classes)) {
    const byCategory = def.categories.includes(call.category);
    const verb = def.verbs.find((v) => toolTokens.has(v.toLowerCase()));
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
