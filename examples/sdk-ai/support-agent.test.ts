/**
 * The Vercel AI SDK's real tool loop (`generateText` with `stopWhen`), driven by its own mock
 * model, with every tool guarded by Mandate through @mandate/sdk/ai. The model "decides" to call
 * a tool; Mandate allows it, denies it (and the model reads the reason code), or holds it until
 * an operator approves over the HTTP API.
 */
import { generateText, stepCountIs, tool } from 'ai';
import { MockLanguageModelV4 } from 'ai/test';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MandateClient, type MandateTask } from '@mandate/sdk';
import { guardAiTools } from '@mandate/sdk/ai';
import { startExampleServer, SUPPORT_MANDATE, type ExampleServer } from '../support/mandate-server.ts';

type Prompt = Parameters<MockLanguageModelV4['doGenerate']>[0]['prompt'];

const usage = { inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: 5, text: 5, reasoning: undefined } };

/**
 * A scripted model: on its first step it calls `toolName` with `input`; once it sees the tool's
 * result it answers with what it saw, so the test can check what reached the model.
 */
function scriptedModel(toolName: string, input: Record<string, unknown>): MockLanguageModelV4 {
  return new MockLanguageModelV4({
    doGenerate: async ({ prompt }: { prompt: Prompt }) => {
      const last = prompt.at(-1);
      if (last?.role === 'tool') {
        const part = last.content.find((p) => p.type === 'tool-result');
        const seen = part?.type === 'tool-result' ? JSON.stringify(part.output) : 'nothing';
        return { content: [{ type: 'text', text: `The tool answered: ${seen}` }], finishReason: { unified: 'stop', raw: 'stop' }, usage, warnings: [] };
      }
      return {
        content: [{ type: 'tool-call', toolCallId: 'call-1', toolName, input: JSON.stringify(input) }],
        finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
        usage,
        warnings: [],
      };
    },
  });
}

describe('Vercel AI SDK agent guarded by Mandate', () => {
  let server: ExampleServer;
  let task: MandateTask;
  const ran: string[] = [];

  // the application's tools, exactly as it would write them for `ai`
  const tools = {
    search_tickets: tool({
      description: 'Search the helpdesk',
      inputSchema: z.object({ query: z.string() }),
      execute: async ({ query }) => {
        ran.push(`search:${query}`);
        return { tickets: [{ id: 'T-1042', subject: `Refund for ${query}` }] };
      },
    }),
    read_file: tool({
      description: 'Read a knowledge-base file',
      inputSchema: z.object({ path: z.string() }),
      execute: async ({ path }) => {
        ran.push(`read:${path}`);
        return `contents of ${path}`;
      },
    }),
    send_mail: tool({
      description: 'E-mail a customer',
      inputSchema: z.object({ to: z.string(), body: z.string() }),
      execute: async ({ to }) => {
        ran.push(`mail:${to}`);
        return { sent: true, to };
      },
    }),
  };

  beforeAll(async () => {
    server = await startExampleServer();
    const client = new MandateClient({ url: server.url, workloadToken: () => server.workloadToken(), approval: { timeoutMs: 10_000, pollIntervalMs: 50 } });
    task = await client.startTask({ mandate: SUPPORT_MANDATE });
  });

  afterAll(async () => {
    await task?.complete();
    await server?.close();
  });

  // the one line: the same tool set, guarded, named as the mandate names them
  const guarded = () => guardAiTools(task, tools, { names: { search_tickets: 'helpdesk.search_tickets', read_file: 'fs.read_file', send_mail: 'mail.send' } });

  it('runs an allowed tool call and the model gets its result', async () => {
    const r = await generateText({ model: scriptedModel('search_tickets', { query: 'refund' }), tools: guarded(), stopWhen: stepCountIs(3), prompt: 'Find the refund ticket' });
    expect(ran).toContain('search:refund');
    expect(r.steps[0]?.toolResults[0]?.output).toEqual({ tickets: [{ id: 'T-1042', subject: 'Refund for refund' }] });
    expect(r.text).toContain('T-1042');
  });

  it('denies a path traversal; the tool never runs and the model reads the reason code', async () => {
    const model = scriptedModel('read_file', { path: '/srv/kb/../../etc/shadow' });
    const r = await generateText({ model, tools: guarded(), stopWhen: stepCountIs(3), prompt: 'Read the refund policy' });
    expect(ran.some((x) => x.startsWith('read:'))).toBe(false);
    const err = r.steps[0]?.content.find((p) => p.type === 'tool-error');
    expect(err?.type === 'tool-error' && (err.error as Error).name).toBe('MandateDeniedError');
    // what the model saw on its next step
    expect(r.text).toContain('ARG_CONSTRAINT_FAILED');
    const toolMessage = model.doGenerateCalls[1]?.prompt.find((m) => m.role === 'tool');
    expect(JSON.stringify(toolMessage)).toMatch(/error-text.*Mandate denied the call to fs\.read_file: ARG_CONSTRAINT_FAILED/);
  });

  it('holds an e-mail for a human; the operator approves over the HTTP API and the same call then runs', async () => {
    const agentRun = generateText({ model: scriptedModel('send_mail', { to: 'customer@acme.example', body: 'Your refund is on its way' }), tools: guarded(), stopWhen: stepCountIs(3), prompt: 'Tell the customer' });
    // while the guarded tool waits, the operator approves the pending request
    const approved = await server.approveNextPending('recipient checked');
    expect(approved).toMatchObject({ state: 'approved', tool: 'mail.send', task_id: task.id });
    const r = await agentRun;
    expect(ran).toContain('mail:customer@acme.example');
    expect(r.steps[0]?.toolResults[0]?.output).toEqual({ sent: true, to: 'customer@acme.example' });
    // the retry spent the approval: it cannot be used again
    expect((await server.approval(approved.id)).state).toBe('used');
  });
});
