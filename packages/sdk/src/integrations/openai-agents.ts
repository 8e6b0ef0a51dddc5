/**
 * OpenAI Agents SDK (`@openai/agents`): a guarded copy of a function tool. The SDK's default
 * error text hides the error from the model, so a refusal is returned as the tool's output,
 * naming the reason codes; an outage throws (the run fails, the tool never ran).
 */
import type { FunctionTool } from '@openai/agents';
import type { ApprovalWait, MandateTask } from '../task.ts';
import { isRefusal, refusalText } from './refusal.ts';
import { signalAt } from './signal.ts';

export interface GuardAgentsToolOptions {
  /** the tool's name in the mandate, when it differs from the function tool's name */
  readonly mandateName?: string | undefined;
  readonly resource?: ((args: Record<string, unknown>) => string | undefined) | undefined;
  readonly approval?: Partial<ApprovalWait> | undefined;
}

function parseArgs(input: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(input);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : { input: v };
  } catch {
    return { input };
  }
}

/** `tools: [guardAgentsTool(task, tool({...}), { mandateName: 'helpdesk.search_tickets' })]`. */
export function guardAgentsTool<C, P extends FunctionTool<C, never, unknown>>(task: MandateTask, original: P, opts?: GuardAgentsToolOptions): P;
export function guardAgentsTool(task: MandateTask, original: FunctionTool, opts: GuardAgentsToolOptions = {}): FunctionTool {
  const mandateName = opts.mandateName ?? original.name;
  type Invoke = FunctionTool['invoke'];
  type Ctx = Parameters<Invoke>[0];
  type Details = Parameters<Invoke>[2];
  const run = task.guard(mandateName, (ctx: Ctx, input: string, details: Details) => original.invoke(ctx, input, details), {
    args: (_ctx, input) => parseArgs(input),
    resource: opts.resource ? (_ctx, input) => opts.resource?.(parseArgs(input)) : undefined,
    approval: opts.approval,
    // the tool's details.signal (which `tool()` hands its execute) also fires on the task's end (with task.watchKills)
    ...signalAt<[Ctx, string, Details]>(2, 'signal'),
  });
  const invoke: Invoke = async (ctx, input, details) => {
    try {
      return await run(ctx, input, details);
    } catch (e) {
      if (isRefusal(e)) return refusalText(e);
      throw e;
    }
  };
  return { ...original, invoke };
}
