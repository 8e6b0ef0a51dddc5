/**
 * Vercel AI SDK (`ai`): guard the `execute` of every tool in a tool set. A refusal throws
 * MandateDeniedError / MandateApprovalRequiredError inside `execute`; the SDK turns it into a
 * `tool-error` result whose text (with the reason codes) the model sees on its next step.
 */
import type { Tool, ToolSet } from 'ai';
import type { GuardOptions, MandateTask } from '../task.ts';
import { signalAt } from './signal.ts';

export interface GuardAiToolOptions {
  /** the tool's name in the mandate, when it differs from the key (providers forbid dots in tool names) */
  readonly mandateName?: string | undefined;
  readonly resource?: ((input: unknown) => string | undefined) | undefined;
  readonly approval?: GuardOptions<unknown[]>['approval'];
}

function argsOf(input: unknown): Record<string, unknown> {
  return typeof input === 'object' && input !== null && !Array.isArray(input) ? (input as Record<string, unknown>) : { input };
}

/** One tool: `guardAiTool(task, 'helpdesk.search_tickets', tool({...}))`. */
export function guardAiTool<T extends Tool>(task: MandateTask, mandateName: string, t: T, opts: Omit<GuardAiToolOptions, 'mandateName'> = {}): T {
  const execute = (t as { execute?: (input: unknown, options: unknown) => unknown }).execute;
  // a tool without execute is run by the application, which must guard that code path itself
  if (typeof execute !== 'function') throw new TypeError(`tool ${mandateName} has no execute function to guard`);
  const guarded = task.guard(mandateName, (input: unknown, options: unknown) => execute.call(t, input, options), {
    args: (input) => argsOf(input),
    resource: opts.resource ? (input) => opts.resource?.(input) : undefined,
    approval: opts.approval,
    // the tool's own abortSignal also fires on the task's end (with task.watchKills)
    ...signalAt<[unknown, unknown]>(1, 'abortSignal'),
  });
  return { ...t, execute: guarded };
}

/**
 * A whole tool set: `tools: guardAiTools(task, { search_tickets, send_mail }, { names: { search_tickets: 'helpdesk.search_tickets' } })`.
 */
export function guardAiTools<T extends ToolSet>(task: MandateTask, tools: T, opts: { readonly names?: Partial<Record<keyof T & string, string>>; readonly approval?: GuardAiToolOptions['approval'] } = {}): T {
  const out: Record<string, Tool> = {};
  for (const [key, t] of Object.entries(tools)) {
    const name = opts.names?.[key as keyof T & string] ?? key;
    out[key] = guardAiTool(task, name, t as Tool, { approval: opts.approval });
  }
  return out as T;
}
