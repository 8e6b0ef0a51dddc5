/**
 * Shadow mode (issue 7): a draft policy set evaluated against the recent decisions in the audit
 * log, with the divergences and, per record, why a call could not be rebuilt.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXAMPLE_POLICIES, errorOf, mandate, startHarness, type Harness } from '../support.ts';

const ORG = readFileSync(join(EXAMPLE_POLICIES, 'org.cedar'), 'utf8');

interface ShadowBody {
  ok: boolean;
  examined: number;
  counts: { same: number; diverged: number; not_evaluated: number; unreconstructable: number };
  records: { seq: number; tool: string; status: string; recorded: { effect: string }; draft?: { outcome: string; reason: string; policy_ids: string[] }; note?: string }[];
  draft_version: string;
  live_version: string;
}

describe('POST /v1/policies/shadow', () => {
  let h: Harness;
  let token: string;

  beforeEach(async () => {
    h = await startHarness();
    const agent = await h.registerAgent('shadow');
    const t = await h.startTask(agent, mandate({ tools: [{ name: 'helpdesk.search_tickets' }, { name: 'fs.read_file', args: { path: { prefix: '/srv/kb/' } } }] }));
    token = t.token;
    await h.authorize(token, { tool: 'helpdesk.search_tickets', args: { query: 'refund' } });
    await h.authorize(token, { tool: 'fs.read_file', args: { path: '/srv/kb/a.md' } });
    await h.authorize(token, { tool: 'helpdesk.search_tickets', args: { query: 'x', api_key: 'sk-secret' } });
    await h.authorize(token, { tool: 'fs.read_file', args: { path: '/etc/passwd' } });
  });
  afterEach(async () => h.close());

  const shadow = async (text: string) => {
    const res = await h.op('POST', '/v1/policies/shadow', { policies: [{ source: 'draft.cedar', text }] });
    expect(res.statusCode).toBe(200);
    return res.json<ShadowBody>();
  };

  it('finds no divergence for the policy set in force', async () => {
    const r = await shadow(ORG);
    expect(r.examined).toBe(4);
    expect(r.counts).toEqual({ same: 2, diverged: 0, not_evaluated: 1, unreconstructable: 1 });
  });

  it('reports the calls a stricter draft would deny, with the policy that denies them', async () => {
    const stricter = `${ORG}\n@id("draft.no-kb-reads")\nforbid (principal, action == Mandate::Action::"call_tool", resource) when { resource.name == "fs.read_file" };\n`;
    const r = await shadow(stricter);
    expect(r.draft_version).not.toBe(r.live_version);
    expect(r.counts.diverged).toBe(1);
    const d = r.records.find((x) => x.status === 'diverged');
    expect(d).toMatchObject({ tool: 'fs.read_file', recorded: { effect: 'allow' }, draft: { outcome: 'deny', reason: 'POLICY_FORBID' } });
    expect(d?.draft?.policy_ids).toContain('draft.no-kb-reads');
  });

  it('reports the calls an empty draft would deny (deny by default)', async () => {
    const r = await shadow('// nothing permitted\n');
    expect(r.counts.diverged).toBe(2);
    expect(r.records.filter((x) => x.status === 'diverged').every((x) => x.draft?.reason === 'NO_PERMITTING_POLICY')).toBe(true);
  });

  it('says per record why it was not rebuilt: redacted arguments, or decided before policy', async () => {
    const r = await shadow(ORG);
    const redacted = r.records.find((x) => x.status === 'unreconstructable');
    expect(redacted?.note).toMatch(/redacted/);
    const before = r.records.find((x) => x.status === 'not_evaluated');
    expect(before).toMatchObject({ tool: 'fs.read_file' });
    expect(before?.note).toMatch(/ARG_CONSTRAINT_FAILED/);
  });

  it('answers an invalid draft with its problems and never loads it', async () => {
    const res = await h.op('POST', '/v1/policies/shadow', { policies: [{ source: 'bad.cedar', text: 'permit (principal, action, resource) when { nonsense };' }] });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ ok: boolean; problems: unknown[] }>()).toMatchObject({ ok: false });
    const live = (await h.op('GET', '/v1/policies')).json<{ version: string }>();
    expect(live.version).toBe(h.runtime.policies.current.version);
  });

  it('bounds the window and requires an operator', async () => {
    const big = await h.op('POST', '/v1/policies/shadow', { policies: [], limit: 100_000 });
    expect(big.statusCode).toBe(400);
    expect(errorOf(big).code).toBe('MALFORMED_REQUEST');
    const anon = await h.inject({ method: 'POST', url: '/v1/policies/shadow', payload: { policies: [] } });
    expect(anon.statusCode).toBe(401);
  });
});

describe('GET /v1/audit by task and from the tail', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => h.close());

  it('returns one task’s records, and the last N records', async () => {
    const agent = await h.registerAgent('audit');
    const a = await h.startTask(agent);
    const b = await h.startTask(agent);
    await h.authorize(a.token, { tool: 'helpdesk.search_tickets', args: {} });
    await h.authorize(b.token, { tool: 'helpdesk.search_tickets', args: {} });
    const byTask = (await h.op('GET', `/v1/audit?task_id=${a.id}`)).json<{ records: { task_id: string; kind: string }[] }>();
    expect(byTask.records.length).toBeGreaterThan(1);
    expect(byTask.records.every((r) => r.task_id === a.id)).toBe(true);
    const tail = (await h.op('GET', '/v1/audit?tail=true&limit=2')).json<{ records: { seq: number; task_id: string }[] }>();
    expect(tail.records).toHaveLength(2);
    expect(tail.records.at(-1)?.task_id).toBe(b.id);
    const head = await h.runtime.store.audit.head();
    expect(tail.records.at(-1)?.seq).toBe(head?.seq);
  });
});
