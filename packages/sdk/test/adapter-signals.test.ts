/**
 * Every framework adapter hands its tool the kill watch's AbortSignal, combined with the
 * framework's own: a tool running through the OpenAI Agents, Vercel AI or LangChain adapter,
 * under a task with a kill watch, against a real Mandate server (in-process, real HTTP), sees its
 * signal abort with MandateHaltedError when the task is killed; the framework's own signal
 * still reaches it too.
 */
import { tool as langchainTool } from '@langchain/core/tools';
import { RunContext, tool as agentsTool } from '@openai/agents';
import { tool as aiTool } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MandateClient, MandateHaltedError, type MandateTask } from '../src/index.ts';
import { guardAiTool } from '../src/integrations/ai.ts';
import { guardLangChainTool } from '../src/integrations/langchain.ts';
import { guardAgentsTool } from '../src/integrations/openai-agents.ts';
import { withSignal } from '../src/integrations/signal.ts';
import { startExampleServer, SUPPORT_MANDATE, type ExampleServer } from '../../../examples/support/mandate-server.ts';

async function until(ok: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What the tool body saw: that it started, and its signal's reason once it fired. */
interface Seen {
  started: boolean;
  aborted: boolean;
  reason: unknown;
}

/** A tool body that runs until its signal fires (it fails the call when it is handed none). */
function runsUntilAborted(seen: Seen, signal: AbortSignal | undefined): Promise<string> {
  seen.started = true;
  if (!signal) return Promise.reject(new Error('no signal was handed to the tool'));
  return new Promise<string>((resolve, reject) => {
    signal.addEventListener('abort', () => {
      seen.aborted = true;
      seen.reason = signal.reason;
      reject(signal.reason as Error);
    });
    setTimeout(() => resolve('finished'), 600_000).unref();
  });
}

const freshSeen = (): Seen => ({ started: false, aborted: false, reason: undefined });

/** The three adapters, each running a tool whose body is `runsUntilAborted`; `callerSignal` is the framework's own. */
const ADAPTERS = {
  'OpenAI Agents': (task: MandateTask, seen: Seen, callerSignal?: AbortSignal) => {
    const t = agentsTool({
      name: 'search_tickets',
      description: 'Search the helpdesk',
      parameters: z.object({ query: z.string() }),
      execute: (_input, _ctx, details) => runsUntilAborted(seen, details?.signal),
    });
    const guarded = guardAgentsTool(task, t, { mandateName: 'helpdesk.search_tickets' });
    const details = { toolCall: { type: 'function_call' as const, callId: 'call-1', name: 'search_tickets', arguments: '{"query":"refund"}' }, ...(callerSignal ? { signal: callerSignal } : {}) };
    return guarded.invoke(new RunContext(), '{"query":"refund"}', details);
  },
  'Vercel AI': (task: MandateTask, seen: Seen, callerSignal?: AbortSignal) => {
    const t = aiTool({ description: 'Search the helpdesk', inputSchema: z.object({ query: z.string() }), execute: (_input, options) => runsUntilAborted(seen, options.abortSignal) });
    const guarded = guardAiTool(task, 'helpdesk.search_tickets', t);
    return (guarded.execute as (input: unknown, options: unknown) => Promise<unknown>)({ query: 'refund' }, { toolCallId: 'call-1', messages: [], ...(callerSignal ? { abortSignal: callerSignal } : {}) });
  },
  LangChain: (task: MandateTask, seen: Seen, callerSignal?: AbortSignal) => {
    const t = langchainTool((_input: { query: string }, config) => runsUntilAborted(seen, (config as { signal?: AbortSignal } | undefined)?.signal), { name: 'search_tickets', description: 'Search the helpdesk', schema: z.object({ query: z.string() }) });
    const guarded = guardLangChainTool(task, t, { mandateName: 'helpdesk.search_tickets' });
    return guarded.invoke({ query: 'refund' }, callerSignal ? { signal: callerSignal } : {});
  },
} as const;

describe('every adapter passes the kill signal to its tool (real server)', () => {
  let server: ExampleServer;
  beforeAll(async () => {
    server = await startExampleServer({ 'tasks.events.heartbeat': '200ms' });
  });
  afterAll(async () => server?.close());

  const watchedTask = async () => {
    const task = await new MandateClient({ url: server.url, workloadToken: () => server.workloadToken(), autoRenew: false, watchKills: { lostAfterMs: 60_000 } }).startTask({ mandate: SUPPORT_MANDATE });
    await until(() => task.killWatch?.state === 'live', 'the watch to be live');
    return task;
  };

  for (const [name, run] of Object.entries(ADAPTERS)) {
    it(`${name}: the tool's signal aborts with MandateHaltedError when its task is killed`, async () => {
      const task = await watchedTask();
      const seen = freshSeen();
      const call = run(task, seen).then(
        () => ({ ok: true as const, error: undefined }),
        (e: unknown) => ({ ok: false as const, error: e }),
      );
      await until(() => seen.started, 'the tool to start');
      expect(seen.aborted).toBe(false);
      await server.op('POST', '/v1/kill', { task: task.id, reason: `kill under ${name}` });
      const out = await call;
      expect(out.ok).toBe(false);
      expect(out.error).toBeInstanceOf(MandateHaltedError);
      expect(out.error).toMatchObject({ code: 'HALTED', reason: 'TASK_KILLED', detail: `kill under ${name}` });
      await until(() => seen.aborted, "the tool's signal to fire");
      expect(seen.reason).toBe(out.error);
    });

    it(`${name}: the framework's own signal still reaches the tool`, async () => {
      const task = await watchedTask();
      const seen = freshSeen();
      const caller = new AbortController();
      const call = run(task, seen, caller.signal).catch((e: unknown) => e);
      await until(() => seen.started, 'the tool to start');
      const why = new Error('the framework cancelled the run');
      caller.abort(why);
      await until(() => seen.aborted, "the tool's signal to fire");
      expect(seen.reason).toBe(why);
      await call;
      task.close();
    });
  }
});

describe('withSignal', () => {
  it("copies the framework's options with the signal in place, keeping symbol keys and the prototype, and leaves the original alone", () => {
    const callback = Symbol('callback');
    class Details {
      readonly kind = 'details';
    }
    const original = Object.assign(new Details(), { signal: undefined as AbortSignal | undefined, [callback]: () => 'kept' });
    const signal = new AbortController().signal;
    const copy = withSignal(original, 'signal', signal) as typeof original;
    expect(copy.signal).toBe(signal);
    expect(copy[callback]()).toBe('kept');
    expect(copy).toBeInstanceOf(Details);
    expect(original.signal).toBeUndefined();
    expect(withSignal(undefined, 'abortSignal', signal)).toEqual({ abortSignal: signal });
  });
});
