import { z } from 'zod';
import { globMatch, hasGlob } from '../glob.ts';
import type { ToolInfo } from '../model.ts';

const entrySchema = z.strictObject({
  name: z.string().min(1).max(200),
  category: z.string().min(1).max(64).default('unknown'),
  risk: z.enum(['low', 'medium', 'high', 'critical', 'unknown']).default('unknown'),
  data_classes: z.array(z.string().min(1).max(100)).max(64).default([]),
  output_trust: z.enum(['trusted', 'untrusted']).default('untrusted'),
});

/** tools.yaml in a policy folder: how the organisation classifies its tools. */
export const toolCatalogSchema = z.strictObject({
  tools: z.array(entrySchema).max(10_000).default([]),
});
export type ToolCatalogInput = z.input<typeof toolCatalogSchema>;

/** A tool nobody classified: unknown risk, and its output is not trusted. */
export function unknownTool(name: string): ToolInfo {
  return { name, category: 'unknown', risk: 'unknown', dataClasses: [], outputTrust: 'untrusted' };
}

/** Resolves a tool name to its classification: exact entries first, then the first matching glob. */
export class ToolCatalog {
  private readonly exact = new Map<string, ToolInfo>();
  private readonly globs: { pattern: string; info: Omit<ToolInfo, 'name'> }[] = [];
  readonly entries: readonly z.output<typeof entrySchema>[];

  constructor(input: ToolCatalogInput = {}) {
    const parsed = toolCatalogSchema.parse(input);
    this.entries = parsed.tools;
    for (const e of parsed.tools) {
      const info = { category: e.category, risk: e.risk, dataClasses: e.data_classes, outputTrust: e.output_trust } as const;
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
