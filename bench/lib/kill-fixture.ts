/**
 * What the kill benchmarks (bench/kill.ts, bench/kill-hooks.ts) share: one node on SQLite in a
 * temporary folder with the example policies and the dev issuer, its HTTP API driven in-process
 * (fastify inject), agents with live tasks to kill, and callers that keep calling until told to stop.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHttpApp, createRuntime, parseConfig, type MandateRuntime } from '@mandate/server';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { REPO_ROOT } from './stats.ts';

export const KILL_TRUST_DOMAIN = 'bench.mandate.local';
export const KILL_CALL = { tool: 'helpdesk.search_tickets', args: { query: 'refund' } };

export interface KillFixture {
  readonly rt: MandateRuntime;
  readonly app: FastifyInstance;
  readonly admin: string;
  post(path: string, bearer: string, payload: object): Promise<LightMyRequestResponse>;
  /** registers `spiffe://<trust domain>/agents/<name>` and starts `tasks` tasks for it; returns the agent id and the task tokens */
  agentWithTasks(name: string, tasks: number, purpose: string): Promise<{ agent: string; tokens: string[] }>;
  /**
   * `callers` loops calling /v1/authorize round the tokens until `stop()` is true or a call is not
   * allowed; `onDecision` sees each answer (with when it was sent). Resolves when all have stopped.
   */
  callUntil(tokens: readonly string[], callers: number, stop: () => boolean, onDecision: (effect: string, sentAt: number) => void): Promise<void>;
  close(): Promise<void>;
}

export async function startKillFixture(o: { name: string; config?: Record<string, unknown>; env?: Record<string, string> }): Promise<KillFixture> {
  const dir = mkdtempSync(join(tmpdir(), `mandate-bench-${o.name}-`));
  const rt = await createRuntime(
    parseConfig({
      environment: 'prod',
      data_dir: dir,
      policies: { dir: join(REPO_ROOT, 'examples', 'policies') },
      identity: { dev_issuer: { enabled: true, trust_domain: KILL_TRUST_DOMAIN } },
      log: { level: 'silent' },
      ...o.config,
    }),
    { writeAdminKeyFile: false, ...(o.env === undefined ? {} : { env: o.env }) },
  );
  const app = buildHttpApp(rt, { logger: false });
  const admin = rt.bootstrapAdminKey as string;
  const post = (path: string, bearer: string, payload: object) => app.inject({ method: 'POST', url: path, headers: { authorization: `Bearer ${bearer}` }, payload });
  return {
    rt,
    app,
    admin,
    post,
    async agentWithTasks(name, tasks, purpose) {
      const agent = `spiffe://${KILL_TRUST_DOMAIN}/agents/${name}`;
      await post('/v1/agents', admin, { id: agent, owner: 'bench', type: 'support', ceiling: {} });
      const mandate = { purpose, environment: 'prod', ttl: '30m', tools: [{ name: KILL_CALL.tool }], data_classes: ['internal'] };
      const tokens: string[] = [];
      for (let i = 0; i < tasks; i++) {
        const svid = await (rt.devIssuer as NonNullable<typeof rt.devIssuer>).mint(agent, { audience: 'mandate', ttlMs: 300_000 });
        tokens.push((await post('/v1/tasks', svid, { mandate })).json<{ token: string }>().token);
      }
      return { agent, tokens };
    },
    async callUntil(tokens, callers, stop, onDecision) {
      await Promise.all(
        Array.from({ length: callers }, async (_, c) => {
          for (let n = 0; !stop() && n < 100_000; n++) {
            const sentAt = performance.now();
            const d = (await post('/v1/authorize', tokens[(c + n) % tokens.length] as string, KILL_CALL)).json<{ effect: string }>();
            onDecision(d.effect, sentAt);
          }
        }),
      );
    },
    async close() {
      await rt.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
