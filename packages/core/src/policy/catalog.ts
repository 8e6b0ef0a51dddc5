import { z } from 'zod';
import { globMatch, hasGlob } from '../glob.ts';
import type { ToolInfo } from '../model.ts';

const argName = z.string().regex(/^[A-Za-z_][\w.-]{0,63}$/, 'an argument name');
/** a key path into a tool's output: keys from the output's root, list positions skipped (`sender`, `owner.email`) */
const fieldPath = z.string().regex(/^[^.\s]{1,64}(?:\.[^.\s]{1,64}){0,7}$/, 'a key path such as sender or owner.email');

const entrySchema = z
  .strictObject({
    name: z.string().min(1).max(200),
    category: z.string().min(1).max(64).default('unknown').describe('what kind of action the tool takes (the baseline knows read, fetch, write, send, payment, permission, destructive)'),
    risk: z.enum(['low', 'medium', 'high', 'critical', 'unknown']).default('unknown'),
    data_classes: z.array(z.string().min(1).max(100)).max(64).default([]),
    output_trust: z.enum(['trusted', 'untrusted']).default('untrusted').describe('trusted only when the organisation vouches for everything the tool returns'),
    trusted_fields: z
      .array(fieldPath)
      .max(64)
      .default([])
      .describe('output fields the organisation vouches for in an untrusted output (ids, timestamps, the system-set sender); everything else stays untrusted'),
    sink_args: z.array(argName).max(64).default([]).describe('arguments that name where data, money or access goes (recipients, IBAN, URL, invitee)'),
    content_args: z.array(argName).max(64).default([]).describe('arguments whose content goes out or is written (body, subject, file content, password)'),
    shared: z
      .strictObject({
        store: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a name of letters, digits, dots, dashes and underscores').describe('the shared resource\'s name: the same for every tool that reaches it (a ticket store, a memory server, a file share)'),
        key_args: z.array(argName).max(8).default([]).describe('arguments whose values name the entry within it (a path); none: the resource is one entry'),
      })
      .optional()
      .describe('the tool reaches a resource other tasks and agents share: values a task writes there keep their provenance labels, and any task reading them back gets those labels with the output'),
  })
  .refine((e) => !(e.output_trust === 'trusted' && e.trusted_fields.length > 0), {
    message: 'trusted_fields only narrow an untrusted output; a trusted output is trusted whole',
    path: ['trusted_fields'],
  });

/** tools.yaml in a policy folder: how the organisation classifies its tools. */
export const toolCatalogSchema = z.strictObject({
  tools: z.array(entrySchema).max(10_000).default([]),
});
export type ToolCatalogInput = z.input<typeof toolCatalogSchema>;
export type ToolCatalogEntry = z.output<typeof entrySchema>;

/** A tool nobody classified: unknown category and risk, and its output is not trusted. */
export function unknownTool(name: string): ToolInfo {
  return { name, category: 'unknown', risk: 'unknown', dataClasses: [], outputTrust: 'untrusted', trustedFields: [], sinkArgs: [], contentArgs: [] };
}

/** Resolves a tool name to its classification: exact entries first, then the first matching glob. */
export class ToolCatalog {
  private readonly exact = new Map<string, ToolInfo>();
  private readonly globs: { pattern: string; info: Omit<ToolInfo, 'name'> }[] = [];
  readonly entries: readonly ToolCatalogEntry[];

  constructor(input: ToolCatalogInput = {}) {
    const parsed = toolCatalogSchema.parse(input);
    this.entries = parsed.tools;
    for (const e of parsed.tools) {
      const info = {
        category: e.category,
        risk: e.risk,
        dataClasses: e.data_classes,
        outputTrust: e.output_trust,
        trustedFields: e.trusted_fields,
        sinkArgs: e.sink_args,
        contentArgs: e.content_args,
        ...(e.shared !== undefined ? { shared: { store: e.shared.store, keyArgs: e.shared.key_args } } : {}),
      } as const;
      if (hasGlob(e.name)) this.globs.push({ pattern: e.name, info });
      else this.exact.set(e.name, { name: e.name, ...info });
    }
  }

  lookup(name: string): ToolInfo {
    const hit = this.exact.get(name);
    if (hit) return hit;
    for (const g of this.globs) if (globMatch(g.pattern, name)) return { name, ...g.info };
    return unknownTool(name);
  }
}
