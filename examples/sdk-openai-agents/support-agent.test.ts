/**
 * OpenAI Agents SDK for JS: function tools made with `tool()`, guarded by
 * @mandate/sdk/openai-agents, run by the SDK's own `Runner` with a custom `Model` that returns
 * scripted tool calls (no network, no API key). The model decides; Mandate allows, denies, or
 * holds until an operator approves over the HTTP API.
 */
import { Agent, Runner, tool, Usage, type AgentInputItem, type Model, type ModelRequest, type ModelResponse } from '@openai/agents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MandateClient, type MandateTask } from '@mandate/sdk';
import { guardAgentsTool } from '@mandate/sdk/openai-agents';
import { startExampleServer, SUPPORT_MANDATE, type ExampleServer } from '../support/mandate-server.ts';

/** One scripted tool call, then an answer that repeats the tool output it was given. */
class ScriptedModel implements Model {
  readonly requests: ModelRequest[] = [];
  private readonly name: string;
  private readonly args: Record<string, unknown>;

  constructor(name: string, args: Record<string, unknown>) {
    this.name = name;
    this.args = args;
  }

  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    this.requests.push(request);
    const items = typeof request.input === 'string' ? [] : request.input;
    const result = items.findLast((i: AgentInputItem) => i.type === 'function_call_result');
    if (result && result.type === 'function_call_result') {
      const output = typeof result.output === 'string' ? result.output : JSON.stringify(result.output);
      return {
        usage: new Usage(),
        output: [{ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: `The tool said: ${output}` }] }],
      };
    }
    return {
      usage: new Usage(),
      output: [{ type: 'function_call', callId: 'call-1', name: this.name, arguments: JSON.stringify(this.args), status: 'completed' }],
    };
  }

  async *getStreamedResponse(): AsyncIterable<never> {
    throw new Error('the example runs without streaming');
  }
}

describe('OpenAI Agents SDK agent guarded by Mandate', () => {
  let server: ExampleServer;
  let task: MandateTask;
  const ran: string[] = [];
  const runner = new Runner({ tracingDisabled: true });

  const searchTickets = tool({
    name: 'search_tickets',
    description: 'Search the helpdesk',
    parameters: z.object({ query: z.string() }),
    execute: async ({ query }) => {
      ran.push(`search:${query}`);
      return JSON.stringify([{ id: 'T-1042', subject: `Refund for ${query}` }]);
    },
  });
  const readFile = tool({
    name: 'read_file',
    description: 'Read a knowledge-base file',
    parameters: z.object({ path: z.string() }),
    execute: async ({ path }) => {
      ran.push(`read:${path}`);
      return `contents of ${path}`;
    },
  });
  const sendMail = tool({
    name: 'send_mail',
    description: 'E-mail a customer',
    parameters: z.object({ to: z.string(), body: z.string() }),
    execute: async ({ to }) => {
      ran.push(`mail:${to}`);
      return `sent to ${to}`;
    },
  });

  beforeAll(async () => {
    server = await startExampleServer();
    const client = new MandateClient({ url: server.url, workloadToken: () => server.workloadToken(), approval: { timeoutMs: 10_000, pollIntervalMs: 50 } });
    task = await client.startTask({ mandate: SUPPORT_MANDATE });
  });

  afterAll(async () => {
    await task?.complete();
    await server?.close();
  });

  const agent = (model: Model) =>
    new Agent({
      name: 'support',
      instructions: 'Help the customer with their refund.',
      model,
      // one line per tool: the guarded copy, named as the mandate names it
      tools: [
        guardAgentsTool(task, searchTickets, { mandateName: 'helpdesk.search_tickets' }),
        guardAgentsTool(task, readFile, { mandateName: 'fs.read_file' }),
        guardAgentsTool(task, sendMail, { mandateName: 'mail.send' }),
      ],
    });

  it('runs an allowed tool call and the model gets its result', async () => {
    const r = await runner.run(agent(new ScriptedModel('search_tickets', { query: 'refund' })), 'Find the refund ticket');
    expect(ran).toContain('search:refund');
    expect(r.finalOutput).toContain('T-1042');
  });

  it('denies a path traversal; the tool never runs and the model reads the reason code', async () => {
    const model = new ScriptedModel('read_file', { path: '/srv/kb/../../etc/shadow' });
    const r = await runner.run(agent(model), 'Read the refund policy');
    expect(ran.some((x) => x.startsWith('read:'))).toBe(false);
    expect(r.finalOutput).toContain('Mandate denied the call to fs.read_file: ARG_CONSTRAINT_FAILED');
    // the second model request carried the refusal as the function call's output
    expect(JSON.stringify(model.requests[1]?.input)).toContain('ARG_CONSTRAINT_FAILED');
  });

  it('holds an e-mail for a human; the operator approves over the HTTP API and the same call then runs', async () => {
    const agentRun = runner.run(agent(new ScriptedModel('send_mail', { to: 'customer@acme.example', body: 'Your refund is on its way' })), 'Tell the customer');
    const approved = await server.approveNextPending('recipient checked');
    expect(approved).toMatchObject({ state: 'approved', tool: 'mail.send', task_id: task.id });
    const r = await agentRun;
    expect(ran).toContain('mail:customer@acme.example');
    expect(r.finalOutput).toContain('sent to customer@acme.example');
    expect((await server.approval(approved.id)).state).toBe('used');
  });
});
