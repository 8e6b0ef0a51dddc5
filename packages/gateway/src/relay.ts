/**
 * Requests an upstream sends toward the client (server → client), relayed through the session
 * whose request the upstream is working on. Asking the model (`sampling/createMessage`) or the
 * user (`elicitation/create`) is decided like a call: the mandate must grant
 * `<upstream>__sampling/createMessage` or `<upstream>__elicitation/create` (with argument
 * constraints on the request's params if it likes), the decision and the outcome are audited,
 * and a deny is an error to the upstream, never a question to the client. `roots/list` is
 * relayed undecided: it tells the upstream what the client chose to expose.
 */
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { ErrorCode, McpError, type CallToolResult, type CreateMessageRequest, type ElicitRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Decision, JsonObject, JsonValue } from '@mandate/core';
import { elicitationTool, samplingTool } from './names.ts';
import type { UpstreamLink, UpstreamRequest } from './upstream.ts';

export interface RelayContext {
  readonly server: Server;
  readonly timeoutMs: number;
  decide(tool: string, args: JsonObject): Promise<Decision>;
  report(decision: Decision, result: JsonValue, isError: boolean): void;
}

export async function relayUpstreamRequest(ctx: RelayContext, link: UpstreamLink, req: UpstreamRequest, signal: AbortSignal, related: string | number | undefined): Promise<Record<string, unknown>> {
  const options = { signal, timeout: ctx.timeoutMs, ...(related !== undefined ? { relatedRequestId: related } : {}) };
  const caps = ctx.server.getClientCapabilities();
  if (req.method === 'roots/list') {
    if (!caps?.roots) throw new McpError(ErrorCode.MethodNotFound, 'the MCP client behind Mandate does not offer roots');
    return (await ctx.server.listRoots(req.params, options)) as Record<string, unknown>;
  }
  const sampling = req.method === 'sampling/createMessage';
  const { _meta: _ignored, ...params } = req.params;
  const decision = await ctx.decide(sampling ? samplingTool(link.prefix) : elicitationTool(link.prefix), link.scrubber.scrub(params) as JsonObject);
  if (decision.effect !== 'allow') throw new McpError(ErrorCode.InvalidRequest, denialText(decision), decisionMeta(decision));
  try {
    if (sampling && !caps?.sampling) throw new McpError(ErrorCode.MethodNotFound, 'the MCP client behind Mandate does not offer sampling');
    if (!sampling && !caps?.elicitation) throw new McpError(ErrorCode.MethodNotFound, 'the MCP client behind Mandate does not offer elicitation');
    const result = sampling ? await ctx.server.createMessage(req.params as CreateMessageRequest['params'], options) : await ctx.server.elicitInput(req.params as ElicitRequest['params'], options);
    ctx.report(decision, result as JsonValue, false);
    return result as Record<string, unknown>;
  } catch (e) {
    ctx.report(decision, { error: e instanceof Error ? e.message.slice(0, 500) : 'failed' }, true);
    throw e;
  }
}

export function decisionMeta(d: Decision): { 'mandate/decision': JsonObject } {
  return {
    'mandate/decision': {
      call_id: d.callId,
      effect: d.effect,
      reasons: [...d.reasons],
      policy_ids: [...d.policyIds],
      ...(d.approvalId !== undefined ? { approval_id: d.approvalId } : {}),
    },
  };
}

export function denialText(d: Decision): string {
  const head = d.effect === 'approval_required' ? 'Mandate holds this call for approval' : 'Mandate denied this call';
  const tail = d.effect === 'approval_required' && d.approvalId !== undefined ? ` (approval ${d.approvalId}: once an approver allows it, repeat the same call)` : '';
  return `${head}: ${d.reasons.join(', ')}${d.details.length > 0 ? ` (${d.details.join('; ')})` : ''}${tail}`;
}

/** A deny or a held call, as a tool result the model can read: never a hang, never a forward. */
export function denialResult(d: Decision): CallToolResult {
  return { isError: true, content: [{ type: 'text', text: denialText(d) }], _meta: decisionMeta(d) };
}
