/**
 * LangChain.js (`@langchain/core`): a guarded copy of a structured tool. A refusal becomes a
 * `ToolMessage` with `status: "error"` whose content names the reason codes, so any agent loop
 * (a hand-written bindTools loop or LangGraph's ToolNode) hands it to the model; outages throw.
 */
import { ToolMessage } from '@langchain/core/messages';
import { tool, type DynamicStructuredTool, type StructuredToolInterface } from '@langchain/core/tools';
import type { ToolRunnableConfig } from '@langchain/core/tools';
import type { ApprovalWait, MandateTask } from '../task.ts';
import { isRefusal, refusalText } from './refusal.ts';
import { signalAt } from './signal.ts';

export interface GuardLangChainToolOptions {
  /** the tool's name in the mandate, when it differs from the LangChain tool's name */
  readonly mandateName?: string | undefined;
  readonly resource?: ((input: unknown) => string | undefined) | undefined;
  readonly approval?: Partial<ApprovalWait> | undefined;
  /** `tool-message` (default): the model sees the refusal; `throw`: the loop sees the error */
  readonly refusals?: 'tool-message' | 'throw' | undefined;
}

function argsOf(input: unknown): Record<string, unknown> {
  return typeof input === 'object' && input !== null && !Array.isArray(input) ? (input as Record<string, unknown>) : { input };
}

/** `guardLangChainTool(task, searchTickets, { mandateName: 'helpdesk.search_tickets' })`. */
export function guardLangChainTool(task: MandateTask, original: StructuredToolInterface, opts: GuardLangChainToolOptions = {}): DynamicStructuredTool {
  const mandateName = opts.mandateName ?? original.name;
  const run = task.guard(mandateName, (input: unknown, config: ToolRunnableConfig | undefined) => original.invoke(input, config), {
    args: (input) => argsOf(input),
    resource: opts.resource ? (input) => opts.resource?.(input) : undefined,
    approval: opts.approval,
    // the tool's own config.signal also fires on the task's end (with task.watchKills)
    ...signalAt<[unknown, ToolRunnableConfig | undefined]>(1, 'signal'),
  });
  return tool(
    async (input: unknown, config: ToolRunnableConfig) => {
      try {
        return await run(input, config);
      } catch (e) {
        const id = config.toolCall?.id;
        if (opts.refusals !== 'throw' && isRefusal(e) && id !== undefined) {
          return new ToolMessage({ status: 'error', content: refusalText(e), tool_call_id: id, name: original.name });
        }
        throw e;
      }
    },
    { name: original.name, description: original.description, schema: original.schema },
  ) as DynamicStructuredTool;
}
