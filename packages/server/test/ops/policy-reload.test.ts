import { cpSync, mkdtempSync, rmSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allAuditRecords, errorOf, EXAMPLE_POLICIES, mandate, startHarness, type Harness } from '../support.ts';

describe('POST /v1/policies/reload', () => {
  let h: Harness;
  let policyDir: string;
  let tokenDir: string;
  let task: { token: string };

  const version = async () => (await h.op('GET', '/v1/policies')).json<{ version: string; policies: unknown[] }>();
  const decide = async () => (await h.authorize(task.token, { tool: 'helpdesk.search_tickets', args: { query: 'printer' } })).json<{ effect: string; reasons: string[] }>();
  const records = async (kind: string) => (await allAuditRecords(h)).filter((r) => r.kind === kind);
  const reloadCounter = async (outcome: string) => {
    const metrics = h.runtime.metrics;
    if (metrics === undefined) throw new Error('metrics are enabled in this harness');
    const text = await metrics.exposition();
    return Number(new RegExp(`^mandate_policy_reloads_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  };

  beforeAll(async () => {
    policyDir = mkdtempSync(join(tmpdir(), 'mandate-reload-policies-'));
    cpSync(EXAMPLE_POLICIES, policyDir, { recursive: true });
    tokenDir = mkdtempSync(join(tmpdir(), 'mandate-reload-metrics-'));
    const tokenFile = join(tokenDir, 'metrics.token');
    writeFileSync(tokenFile, 'reload-test-metrics-token-0123456789abcdef', { mode: 0o600 });
    h = await startHarness({ config: { policies: { dir: policyDir }, metrics: { enabled: true, token_file: tokenFile } } });
    task = await h.startTask(await h.registerAgent('reload'), mandate());
  });

  afterAll(async () => {
    await h.close();
    rmSync(policyDir, { recursive: true, force: true });
    rmSync(tokenDir, { recursive: true, force: true });
  });

  it('loads a changed folder and audits policy.reloaded with the new and previous versions', async () => {
    const before = await version();
    writeFileSync(join(policyDir, 'zz-extra.cedar'), '@id("test.extra")\nforbid (principal, action == Mandate::Action::"call_tool", resource == Mandate::Tool::"shell.exec");\n');
    const res = await h.op('POST', '/v1/policies/reload');
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ version: string; previous_version: string; policies: number }>();
    expect(body.previous_version).toBe(before.version);
    expect(body.version).not.toBe(before.version);
    expect(body.policies).toBe(before.policies.length + 1);
    expect((await version()).version).toBe(body.version);
    const [rec] = (await records('policy.reloaded')).slice(-1);
    expect(rec?.data).toMatchObject({ version: body.version, previous_version: before.version, policies: body.policies, via: 'api', by: expect.any(String) });
    expect(await reloadCounter('loaded')).toBe(1);
    expect((await h.verifyAudit()).ok).toBe(true);
  });

  it('refuses a folder with an invalid policy, audits why, and keeps the set in force', async () => {
    const before = await version();
    writeFileSync(join(policyDir, 'zz-broken.cedar'), 'permit (principal, action, resource) when { this is not cedar };\n');
    try {
      const res = await h.op('POST', '/v1/policies/reload');
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).code).toBe('POLICY_INVALID');
      expect((await version()).version).toBe(before.version);
      expect((await decide()).effect).toBe('allow');
      const [rec] = (await records('policy.reload_refused')).slice(-1);
      expect(rec?.data).toMatchObject({ current_version: before.version, via: 'api' });
      expect(String(rec?.data['reason']).length).toBeGreaterThan(0);
    } finally {
      rmSync(join(policyDir, 'zz-broken.cedar'));
    }
  });

  it('refuses an empty folder (it would deny every call) unless allow_empty is given', async () => {
    const before = await version();
    const saved = mkdtempSync(join(tmpdir(), 'mandate-reload-saved-'));
    cpSync(policyDir, saved, { recursive: true });
    for (const f of readdirSync(policyDir)) if (f.endsWith('.cedar')) rmSync(join(policyDir, f));
    try {
      const refusedBefore = await reloadCounter('refused');
      const res = await h.op('POST', '/v1/policies/reload', {});
      expect(res.statusCode).toBe(400);
      expect(errorOf(res).message).toContain('no policy');
      expect((await version()).version).toBe(before.version);
      expect((await decide()).effect).toBe('allow');
      const [rec] = (await records('policy.reload_refused')).slice(-1);
      expect(String(rec?.data['reason'])).toContain('no policy');
      expect(await reloadCounter('refused')).toBe(refusedBefore + 1);

      // said on purpose: deny everything
      const forced = await h.op('POST', '/v1/policies/reload', { allow_empty: true });
      expect(forced.statusCode, forced.body).toBe(200);
      expect(forced.json<{ policies: number }>().policies).toBe(0);
      expect((await decide()).effect).toBe('deny');
    } finally {
      cpSync(saved, policyDir, { recursive: true });
      rmSync(saved, { recursive: true, force: true });
    }
    expect((await h.op('POST', '/v1/policies/reload')).statusCode).toBe(200);
  });

  it('refuses unknown body keys and a viewer key', async () => {
    expect(errorOf(await h.op('POST', '/v1/policies/reload', { allowEmpty: true })).code).toBe('MALFORMED_REQUEST');
    const viewer = (await h.op('POST', '/v1/operators/keys', { name: 'v', role: 'viewer' })).json<{ key: string }>().key;
    expect((await h.op('POST', '/v1/policies/reload', {}, viewer)).statusCode).toBe(403);
  });
});
