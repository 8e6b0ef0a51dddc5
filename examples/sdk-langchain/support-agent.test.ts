/**
 * LangChain.js: tools made with `tool()` from @langchain/core/tools, guarded by
 * @mandate/sdk/langchain, bound to LangChain's own fake chat model (`fakeModel()` from
 * @langchain/core/testing) and run through an agent loop (bindTools → invoke → run the tool
 * calls → feed the ToolMessages back). The model decides; Mandate allows, denies, or holds.
 */
import { AIMessage, HumanMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { tool, type StructuredToolInterface } from '@langchain/core/tools';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MandateClient, type MandateTask } from '@mandate/sdk';
import { guardLangChainTool } from '@mandate/sdk/langchain';
import { startExampleServer, SUPPORT_MANDATE, type ExampleServer } from '../support/mandate-server.ts';

/** The plain agent loop: ask the model, run every tool call it makes, hand back the results, until it answers. */
async function runAgent(model: ReturnType<typeof fakeModel>, tools: StructuredToolInterface[], question: string): Promise<{ answer: string; messages: BaseMessage[] }> {
  const bound = model.bindTools(tools);
  const messages: BaseMessage[] = [new HumanMessage(question)];
  for (let step = 0; step < 4; step += 1) {
    const ai = await bound.invoke(messages);
    messages.push(ai);
    if (!ai.tool_calls?.length) return { answer: typeof ai.content === 'string' ? ai.content : JSON.stringify(ai.content), messages };
    for (const call of ai.tool_calls) {
      const t = tools.find((x) => x.name === call.name);
      if (!t) throw new Error(`the model called an unknown tool ${call.name}`);
      messages.push((await t.invoke(call)) as ToolMessage);
    }
  }
  throw new Error('the agent did not finish');
}

/** A scripted model: one tool call, then an answer that repeats the tool result it was shown. */
function scripted(name: string, args: Record<string, unknown>) {
  return fakeModel()
    .respondWithTools([{ name, args, id: 'call-1' }])
    .respond((messages: BaseMessage[]) => {
      const last = messages.at(-1);
      return new AIMessage(last instanceof ToolMessage ? `The tool (${last.status}) said: ${String(last.content)}` : 'no tool result');
    });
}

describe('LangChain.js agent guarded by Mandate', () => {
  let server: ExampleServer;
  let task: MandateTask;
  const ran: string[] = [];

  const searchTickets = tool(async ({ query }: { query: string }) => { ran.push(`search:${query}`); return JSON.stringify([{ id: 'T-1042', subject: `Refund for ${query}` }]); }, {
    name: 'search_tickets',
    description: 'Search the helpdesk',
    schema: z.object({ query: z.string() }),
  });
  const readFile = tool(async ({ path }: { path: string }) => { ran.push(`read:${path}`); return `contents of ${path}`; }, {
    name: 'read_file',
    description: 'Read a knowledge-base file',
    schema: z.object({ path: z.string() }),
  });
  const sendMail = tool(async ({ to }: { to: string; body: string }) => { ran.push(`mail:${to}`); return `sent to ${to}`; }, {
    name: 'send_mail',
    description: 'E-mail a customer',
    schema: z.object({ to: z.string(), body: z.string() }),
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

  // one line per tool: the guarded copy, named as the mandate names it
  const guarded = () => [
    guardLangChainTool(task, searchTickets, { mandateName: 'helpdesk.search_tickets' }),
    guardLangChainTool(task, readFile, { mandateName: 'fs.read_file' }),
    guardLangChainTool(task, sendMail, { mandateName: 'mail.send' }),
  ];

  it('runs an allowed tool call and the model gets its result', async () => {
    const r = await runAgent(scripted('search_tickets', { query: 'refund' }), guarded(), 'Find the refund ticket');
    expect(ran).toContain('search:refund');
    expect(r.answer).toContain('(success)');
    expect(r.answer).toContain('T-1042');
  });

  it('denies a path traversal; the tool never runs and the model reads the reason code', async () => {
    const r = await runAgent(scripted('read_file', { path: '/srv/kb/../../etc/shadow' }), guarded(), 'Read the refund policy');
    expect(ran.some((x) => x.startsWith('read:'))).toBe(false);
    const toolMessage = r.messages.find((m) => m instanceof ToolMessage);
    expect(toolMessage?.status).toBe('error');
    expect(r.answer).toContain('(error)');
    expect(r.answer).toContain('Mandate denied the call to fs.read_file: ARG_CONSTRAINT_FAILED');
  });

  it('holds an e-mail for a human; the operator approves over the HTTP API and the same call then runs', async () => {
    const agentRun = runAgent(scripted('send_mail', { to: 'customer@acme.example', body: 'Your refund is on its way' }), guarded(), 'Tell the customer');
    const approved = await server.approveNextPending('recipient checked');
    expect(approved).toMatchObject({ state: 'approved', tool: 'mail.send', task_id: task.id });
    const r = await agentRun;
    expect(ran).toContain('mail:customer@acme.example');
    expect(r.answer).toContain('sent to customer@acme.example');
    expect((await server.approval(approved.id)).state).toBe('used');
  });

  it('a hold that outlives the wait reaches the model with its approval id; the tool never runs', async () => {
    const quick = [guardLangChainTool(task, sendMail, { mandateName: 'mail.send', approval: { timeoutMs: 0 } })];
    const r = await runAgent(scripted('send_mail', { to: 'other@acme.example', body: 'Hello' }), quick, 'Tell another customer');
    expect(ran).not.toContain('mail:other@acme.example');
    expect(r.answer).toMatch(/APPROVAL_REQUIRED.*Approval id: apr_/);
  });
});
