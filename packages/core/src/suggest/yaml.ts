/**
 * Suggestions written as YAML: one document with every agent (for reading and review), and the
 * ceiling and mandate of one agent (or one cluster) as files `mandate policy validate` accepts.
 */
import { stringify } from 'yaml';
import type { AgentSuggestion } from './learn.ts';
import type { DenialReport } from './evaluate.ts';

const HEADER = [
  '# Suggested by `mandate suggest`: the smallest ceiling and mandate templates that allow what was observed.',
  '# Review before use: every rule under `rules` says how an argument constraint was derived or why it was left open.',
];

export interface SuggestionDocument {
  readonly window?: { readonly since?: string | undefined; readonly until?: string | undefined; readonly source: string } | undefined;
  readonly agents: readonly AgentSuggestion[];
  /** what the suggestions deny of the window they were learnt from */
  readonly training?: DenialReport | undefined;
  /** what they deny of a later window, when one was given */
  readonly evaluation?: DenialReport | undefined;
}

function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

export function suggestionYaml(doc: SuggestionDocument): string {
  return HEADER.join('\n') + '\n' + stringify(plain(doc), { lineWidth: 0, aliasDuplicateObjects: false });
}

/** A file name for an agent id (a SPIFFE id has slashes and colons). */
export function agentSlug(agent: string): string {
  const s = agent.replace(/^spiffe:\/\//, '').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '');
  return (s === '' ? 'agent' : s).slice(0, 120);
}

/** The files of one agent: `<slug>.ceiling.yaml`, `<slug>.mandate.yaml`, `<slug>.<cluster>.mandate.yaml`. */
export function agentFiles(s: AgentSuggestion): { name: string; text: string }[] {
  const slug = agentSlug(s.agent);
  const head = (what: string) => `# ${what} suggested for ${s.agent} from ${s.tasks} task(s), ${s.calls} call(s)\n`;
  const files = [
    { name: `${slug}.ceiling.yaml`, text: head('Ceiling') + stringify(plain(s.ceiling), { lineWidth: 0 }) },
    { name: `${slug}.mandate.yaml`, text: head('Mandate template') + stringify(plain(s.mandate), { lineWidth: 0, aliasDuplicateObjects: false }) },
  ];
  for (const c of s.clusters) files.push({ name: `${slug}.${c.id}.mandate.yaml`, text: `# Mandate template for the purpose cluster ${c.id} (${c.words.join(' ')}): ${c.tasks} task(s)\n` + stringify(plain(c.mandate), { lineWidth: 0, aliasDuplicateObjects: false }) });
  return files;
}
