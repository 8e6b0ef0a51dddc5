/**
 * Golden decision cases: the same YAML cases run in-process (against decide() and the task
 * service) and through the HTTP API, and must give the same decision and the same audit records.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { isMandateError, parseDuration, type Clock, type JsonObject } from '@mandate/core';
import { buildHttpApp, createRuntime, parseConfig, type MandateRuntime } from '../src/index.ts';

interface GoldenRequest {
  tool: string;
  args: JsonObject;
  resource?: string;
}
type Step = { call: GoldenRequest } | { advance: string } | { policies: { source: string; text: string }[] } | 'complete' | 'revoke' | 'renew' | 'disable_agent';
interface GoldenCase {
  name: string;
  mandate?: JsonObject;
  setup?: Step[];
  token?: 'own' | 'other_task' | 'tampered';
  request?: GoldenRequest;
  expect?: { effect: string; reasons: string[]; policy_ids?: string[]; audit?: { kind: string; data?: JsonObject }[] };
  expect_start?: { code: string };
}
interface GoldenFile {
  policies: { source: string; text: string }[];
  tools?: unknown;
  mandate: JsonObject;
  cases: GoldenCase[];
}

interface Outcome {
  effect: string;
  reasons: string[];
  policyIds: string[];
}

/** What a case needs from an enforcement point; implemented in-process and over HTTP. */
interface Driver {
  registerAgent(id: string): Promise<void>;
  disableAgent(id: string): Promise<void>;
  start(agentId: string, mandate: unknown): Promise<{ taskId: string; token: string } | { code: string }>;
  call(token: string, req: GoldenRequest, taskId?: string): Promise<Outcome>;
  complete(token: string, taskId: string): Promise<void>;
  revoke(taskId: string): Promise<void>;
  renew(token: string, taskId: string): Promise<string>;
  reloadPolicies(): Promise<void>;
}

const START = Date.parse('2026-11-23T10:00:00Z');
const CEILING = { tools: ['kb.*', 'crm.*', 'net.*', 'pay.*', 'fs.*', 'mail.*', 'shell.*'], environments: ['prod'], max_ttl: '1h' };

class TestClock implements Clock {
  t = START;
  now(): number {
    return this.t;
  }
}

function inProcess(rt: MandateRuntime, clock: TestClock): Driver {
  const mint = (id: string) => (rt.devIssuer as NonNullable<MandateRuntime['devIssuer']>).mint(id, { audience: 'mandate', ttlMs: 300_000 });
  return {
    async registerAgent(id) {
      await rt.agents.createAgent({ id, owner: 'golden', type: 'test', status: 'active', ceiling: (await import('@mandate/core')).parseCeiling(CEILING), createdAt: clock.now(), updatedAt: clock.now() });
    },
    async disableAgent(id) {
      await rt.agents.updateAgent(id, { status: 'disabled' }, clock.now());
    },
    async start(agentId, mandate) {
      try {
        const r = await rt.tasks.start(await mint(agentId), mandate);
        return { taskId: r.task.id, token: r.token };
      } catch (e) {
        if (isMandateError(e)) return { code: e.code };
        throw e;
      }
    },
    async call(token, req, taskId) {
      const d = await rt.engine.decide({ taskToken: token, tool: req.tool, args: req.args, resource: req.resource, taskId });
      return { effect: d.effect, reasons: [...d.reasons], policyIds: [...d.policyIds] };
    },
    async complete(token, taskId) {
      const claims = await rt.tasks.authenticateTaskToken(token);
      await rt.tasks.complete(taskId, { kind: 'agent', agentId: claims.sub });
    },
    async revoke(taskId) {
      await rt.tasks.revoke(taskId, { kind: 'operator', operatorId: 'golden' }, 'golden case');
    },
    async renew(token) {
      return (await rt.tasks.renew(token)).token;
    },
    async reloadPolicies() {
      // as POST /v1/policies/reload does: live tasks are re-checked against the new set
      const set = rt.policies.reload();
      await rt.supervisor.reevaluate(`policy set ${set.version} loaded`);
    },
  };
}

function overHttp(rt: MandateRuntime): Driver {
  const app = buildHttpApp(rt);
  const admin = rt.bootstrapAdminKey as string;
  const req = async (method: 'GET' | 'POST' | 'PATCH', url: string, bearer: string | undefined, payload?: unknown) => {
    const res = await app.inject({ method, url, ...(bearer ? { headers: { authorization: `Bearer ${bearer}` } } : {}), ...(payload !== undefined ? { payload: payload as object } : {}) });
    return { status: res.statusCode, body: res.json() as Record<string, unknown> };
  };
  const ok = (r: { status: number; body: Record<string, unknown> }, what: string) => {
    if (r.status >= 300) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  return {
    async registerAgent(id) {
      ok(await req('POST', '/v1/agents', admin, { id, owner: 'golden', type: 'test', ceiling: CEILING }), 'register');
    },
    async disableAgent(id) {
      ok(await req('PATCH', `/v1/agents/${encodeURIComponent(id)}`, admin, { status: 'disabled' }), 'disable');
    },
    async start(agentId, mandate) {
      const svid = ok(await req('POST', '/v1/dev/workload-tokens', admin, { spiffe_id: agentId }), 'mint').token as string;
      const r = await req('POST', '/v1/tasks', svid, { mandate });
      if (r.status !== 201) return { code: (r.body.error as { code: string }).code };
      return { taskId: (r.body.task as { id: string }).id, token: r.body.token as string };
    },
    async call(token, call, taskId) {
      const r = ok(await req('POST', '/v1/authorize', token, { ...call, ...(taskId ? { task_id: taskId } : {}) }), 'authorize');
      return { effect: r.effect as string, reasons: r.reasons as string[], policyIds: r.policy_ids as string[] };
    },
    async complete(token, taskId) {
      ok(await req('POST', `/v1/tasks/${taskId}/complete`, token, {}), 'complete');
    },
    async revoke(taskId) {
      ok(await req('POST', `/v1/tasks/${taskId}/revoke`, admin, { reason: 'golden case' }), 'revoke');
    },
    async renew(token, taskId) {
      return ok(await req('POST', `/v1/tasks/${taskId}/renew`, token, {}), 'renew').token as string;
    },
    async reloadPolicies() {
      // the cases that empty the folder mean it: a reload refuses an empty set unless told so
      ok(await req('POST', '/v1/policies/reload', admin, { allow_empty: true }), 'reload');
    },
  };
}

function tamper(token: string): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const i = Math.floor(s.length / 2);
  return `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
}

function writePolicies(dir: string, file: GoldenFile, policies = file.policies): void {
  for (const f of readdirSync(dir)) rmSync(join(dir, f));
  for (const p of policies) writeFileSync(join(dir, p.source), p.text);
  if (file.tools !== undefined) writeFileSync(join(dir, 'tools.json'), JSON.stringify(file.tools));
}

const GOLDEN_DIR = join(import.meta.dirname, 'golden');
const files = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.yaml'));

for (const fileName of files) {
  const file = parseYaml(readFileSync(join(GOLDEN_DIR, fileName), 'utf8')) as GoldenFile;
  for (const mode of ['in-process', 'http'] as const) {
    describe(`golden ${fileName} (${mode})`, () => {
      let rt: MandateRuntime;
      let driver: Driver;
      let root: string;
      let policyDir: string;
      const clock = new TestClock();
      let agentN = 0;

      beforeAll(async () => {
        root = mkdtempSync(join(tmpdir(), 'mandate-golden-'));
        policyDir = join(root, 'policies');
        mkdirSync(policyDir);
        writePolicies(policyDir, file);
        const config = parseConfig({
          environment: 'prod',
          data_dir: join(root, 'data'),
          policies: { dir: policyDir },
          identity: { dev_issuer: { enabled: true, trust_domain: 'test.local' } },
          log: { level: 'silent' },
        });
        rt = await createRuntime(config, { clock, writeAdminKeyFile: false });
        driver = mode === 'http' ? overHttp(rt) : inProcess(rt, clock);
      });

      afterAll(async () => {
        await rt.close();
        rmSync(root, { recursive: true, force: true });
      });

      for (const c of file.cases) {
        it(c.name, async () => {
          agentN += 1;
          const agentId = `spiffe://test.local/agents/golden-${agentN}`;
          await driver.registerAgent(agentId);
          const mandate = { ...file.mandate, ...(c.mandate ?? {}) };
          let swapped = false;
          const applyPolicies = async (policies: { source: string; text: string }[]) => {
            writePolicies(policyDir, file, policies);
            await driver.reloadPolicies();
            swapped = true;
          };
          try {
            if (c.expect_start) {
              for (const s of c.setup ?? []) if (typeof s === 'object' && 'policies' in s) await applyPolicies(s.policies);
              const r = await driver.start(agentId, mandate);
              expect(r).toEqual({ code: c.expect_start.code });
              return;
            }
            const started = await driver.start(agentId, mandate);
            if ('code' in started) throw new Error(`task start failed: ${started.code}`);
            let token = started.token;
            for (const s of c.setup ?? []) {
              if (s === 'complete') await driver.complete(token, started.taskId);
              else if (s === 'revoke') await driver.revoke(started.taskId);
              else if (s === 'renew') await driver.renew(token, started.taskId); // keeps the old token on purpose
              else if (s === 'disable_agent') await driver.disableAgent(agentId);
              else if ('call' in s) await driver.call(token, s.call);
              else if ('advance' in s) clock.t += parseDuration(s.advance);
              else await applyPolicies(s.policies);
            }
            let taskId: string | undefined;
            if (c.token === 'other_task') {
              const other = await driver.start(agentId, mandate);
              if ('code' in other) throw new Error(`second task start failed: ${other.code}`);
              token = other.token;
              taskId = started.taskId;
            } else if (c.token === 'tampered') {
              token = tamper(token);
            }
            const before = (await rt.store.audit.head())?.seq ?? 0;
            const out = await driver.call(token, c.request as GoldenRequest, taskId);
            const exp = c.expect as NonNullable<GoldenCase['expect']>;
            expect(out.effect).toBe(exp.effect);
            expect(out.reasons).toEqual(exp.reasons);
            if (exp.policy_ids) expect(out.policyIds).toEqual(exp.policy_ids);
            if (exp.audit) {
              const records = await rt.store.audit.readRange(before + 1, 100);
              expect(records.map((r) => r.kind)).toEqual(exp.audit.map((a) => a.kind));
              exp.audit.forEach((a, i) => expect(records[i]).toMatchObject({ kind: a.kind, ...(a.data ? { data: a.data } : {}) }));
              const callIds = new Set(records.map((r) => r.callId));
              expect(callIds.size).toBeLessThanOrEqual(1); // decision and action share one call id
            }
            if (exp.effect === 'allow') expect(out.reasons).toEqual([]);
          } finally {
            if (swapped) {
              writePolicies(policyDir, file);
              await driver.reloadPolicies();
            }
          }
        });
      }
    });
  }
}
