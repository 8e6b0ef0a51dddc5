import { z } from 'zod';
import { durationSchema } from '../duration.ts';

/** Names: tools, data classes, environments. Tool names may use `*` as a glob. */
const name = z.string().min(1).max(200).regex(/^[A-Za-z0-9._:/*@-]+$/, 'letters, digits and . _ : / * @ - only');
const label = z.string().min(1).max(100).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits and . _ - only');
const argName = z.string().min(1).max(100).regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits and _ . - only');
const scalar = z.union([z.string().max(4096), z.number(), z.boolean(), z.null()]);

/** Argument constraints: each is a single-key object naming its kind. */
export const constraintSchema = z.union([
  z.strictObject({ equals: scalar }),
  z.strictObject({ one_of: z.array(scalar).min(1).max(256) }),
  z.strictObject({ regex: z.string().min(1).max(512) }),
  z.strictObject({ range: z.strictObject({ min: z.number().optional(), max: z.number().optional() }) }),
  z.strictObject({ prefix: z.string().min(1).max(1024) }),
  z.strictObject({ domains: z.array(z.string().min(1).max(253)).min(1).max(256) }),
]);
export type Constraint = z.infer<typeof constraintSchema>;

export const toolGrantSchema = z.strictObject({
  name,
  args: z.record(argName, constraintSchema).optional(),
});
export type ToolGrant = z.infer<typeof toolGrantSchema>;

const isoTime = z.iso.datetime({ offset: true });
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM (UTC)');
const weekday = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);

export const timeWindowSchema = z.strictObject({
  not_before: isoTime.optional(),
  not_after: isoTime.optional(),
  /** daily window in UTC; `start` > `end` wraps past midnight */
  hours: z.strictObject({ start: hhmm, end: hhmm }).optional(),
  weekdays: z.array(weekday).min(1).max(7).optional(),
});
export type TimeWindow = z.infer<typeof timeWindowSchema>;

export const budgetsSchema = z.strictObject({
  calls: z.number().int().min(0).max(1_000_000).optional(),
  per_tool: z.record(name, z.number().int().min(0).max(1_000_000)).optional(),
});

export const delegationSchema = z.strictObject({
  allowed: z.boolean(),
  max_depth: z.number().int().min(0).max(8).optional(),
  max_children: z.number().int().min(0).max(100).optional(),
});

export const approvalRuleSchema = z.strictObject({
  tool: name,
  /** `args.<name>` → constraint; the rule applies when every listed constraint matches */
  when: z.record(z.string().regex(/^args\.[A-Za-z0-9_.-]+$/, 'keys look like args.<name>'), constraintSchema).optional(),
});
export type ApprovalRule = z.infer<typeof approvalRuleSchema>;

/** A mandate as an agent declares it at task start. Unknown keys are rejected. */
export const mandateSchema = z.strictObject({
  purpose: z.string().min(1).max(4000),
  environment: label,
  ttl: durationSchema.optional(),
  time_window: timeWindowSchema.optional(),
  tools: z.array(toolGrantSchema).min(1).max(256),
  resources: z.array(z.string().min(1).max(1024)).max(256).optional(),
  data_classes: z.array(label).max(64).default([]),
  budgets: budgetsSchema.optional(),
  delegation: delegationSchema.optional(),
  approvals: z.array(approvalRuleSchema).max(64).optional(),
  /** how much the task expects to touch: the volume detector compares results with this */
  scale: z
    .strictObject({
      records: z.number().int().min(0).max(1_000_000_000).optional(),
      bytes: z.number().int().min(0).max(1_000_000_000_000).optional(),
    })
    .optional(),
});

export type MandateInput = z.input<typeof mandateSchema>;
export type Mandate = z.output<typeof mandateSchema>;

/** The most any mandate of one agent may ask. Absent fields mean "no ceiling on this axis". */
export const ceilingSchema = z.strictObject({
  tools: z.array(name).max(1024).optional(),
  data_classes: z.array(label).max(256).optional(),
  environments: z.array(label).max(64).optional(),
  max_ttl: durationSchema.optional(),
  max_calls: z.number().int().min(0).max(1_000_000).optional(),
  max_delegation_depth: z.number().int().min(0).max(8).optional(),
  /** every task of this agent must be bound to a key (DPoP): a start without a proof is refused */
  require_pop: z.boolean().optional(),
});
export type CeilingInput = z.input<typeof ceilingSchema>;
export type Ceiling = z.output<typeof ceilingSchema>;
