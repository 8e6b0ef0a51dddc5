/**
 * `--json` output is one JSON document on stdout and nothing else (messages go to stderr), for
 * every command family that lists or shows something; and a missing flag or argument is named,
 * exit 2, before any key or server is looked for. Run as processes, as scripts run them.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, serve, type RunningServer } from '@mandate/server';
import { EXIT } from '../src/exit-codes.ts';
import { EXAMPLE_POLICIES } from './support.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'mandate.js');
const exec = promisify(execFile);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function mandate(args: string[], env: Record<string, string> = {}): Promise<Run> {
  try {
    const r = await exec(process.execPath, [BIN, ...args], { timeout: 300_000, env: { ...process.env, MANDATE_LOG_LEVEL: 'error', ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? String(e) };
  }
}

/** stdout is exactly one JSON document (and its newline): anything before or after fails to parse */
function onlyJson(r: Run): unknown {
  expect(r.stdout.endsWith('\n'), `stdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(true);
  expect(r.stdout.indexOf('\n'), 'one line').toBe(r.stdout.length - 1);
  return JSON.parse(r.stdout);
}

let server: RunningServer;
let dir: string;
let admin: string;
const agent = 'spiffe://json.test/agents/mailer';
const secretsKey = randomBytes(32).toString('base64');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-json-'));
  server = await serve(
    parseConfig({
      environment: 'prod',
      data_dir: join(dir, 'data'),
      server: { port: 0 },
      policies: { dir: EXAMPLE_POLICIES },
      identity: { dev_issuer: { enabled: true, trust_domain: 'json.test' } },
      log: { level: 'silent' },
      behaviour: { enabled: true, containment: { rules: [{ detector: 'drift', severity: 'medium', action: 'narrow' }] } },
    }),
    { writeAdminKeyFile: false, logger: false, env: { MANDATE_SECRETS_KEY: secretsKey } },
  );
  admin = server.runtime.bootstrapAdminKey as string;
}, 300_000);
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const as = (...a: string[]) => [...a, '--url', server.url, '--api-key', admin];

describe('--json prints one JSON document on stdout and nothing else', () => {
  it('agent add, list, disable and enable', async () => {
    expect(onlyJson(await mandate(as('agent', 'add', '--id', agent, '--owner', 'team', '--type', 'support', '--json')))).toMatchObject({ id: agent });
    const list = onlyJson(await mandate(as('agent', 'list', '--json'))) as { agents: { id: string }[] };
    expect(list.agents.map((a) => a.id)).toContain(agent);
    expect(onlyJson(await mandate(as('agent', 'disable', '--id', agent, '--json')))).toEqual({ id: agent, status: 'disabled' });
    expect(onlyJson(await mandate(as('agent', 'enable', '--id', agent, '--json')))).toEqual({ id: agent, status: 'active' });
  }, 300_000);

  it('approvals list and approve, task lift, kill and unkill', async () => {
    const rt = server.runtime;
    const svid = await (rt.devIssuer as NonNullable<typeof rt.devIssuer>).mint(agent, { audience: 'mandate', ttlMs: 60_000 });
    const mail = await rt.tasks.start(svid, { purpose: 'mail', environment: 'prod', tools: [{ name: 'mail.send' }], data_classes: ['internal'] });
    const held = await rt.engine.decide({ taskToken: mail.token, tool: 'mail.send', args: { to: 'a@acme.example' } });
    expect(held.effect, held.reasons.join()).toBe('approval_required');
    const { task, token } = await rt.tasks.start(svid, { purpose: "Summarise this week's refund tickets.", environment: 'prod', tools: [{ name: 'helpdesk.search_tickets' }, { name: 'helpdesk.draft_reply' }], data_classes: ['internal'] });
    const listed = onlyJson(await mandate(as('approvals', 'list', '--state', 'pending', '--json'))) as { id: string }[];
    expect(listed.map((a) => a.id)).toEqual([held.approvalId]);
    expect(onlyJson(await mandate(as('approvals', 'approve', held.approvalId as string, '--reason', 'recipient checked', '--json')))).toMatchObject({ id: held.approvalId, state: 'approved' });

    // a draft the purpose never declared narrows the tool away; lifting it prints what was lifted
    const draft = await rt.engine.decide({ taskToken: token, tool: 'helpdesk.draft_reply', args: { ticket: 'T-1', body: 'ok' } });
    expect(draft.reasons).toEqual(['CONTAINMENT_NARROWED']);
    await expect.poll(async () => (await rt.store.containment.listRestrictions(task.id)).length, { timeout: 60_000 }).toBe(1);
    expect(onlyJson(await mandate(as('task', 'lift', task.id, '--reason', 'drafts are fine this week', '--json')))).toMatchObject({ task: { id: task.id } });

    expect(onlyJson(await mandate(as('kill', '--task', task.id, '--reason', 'incident', '--json')))).toMatchObject({ killed_tasks: [task.id] });
    expect(onlyJson(await mandate(as('unkill', '--agent', agent, '--reason', 'cleared', '--json')))).toBeTypeOf('object');
  }, 300_000);

  it('secret set, list and delete (the value never on stdout)', async () => {
    const value = 'crm-token-' + randomBytes(8).toString('hex');
    const set = await mandate(as('secret', 'set', 'crm-token', '--from-env', 'CRM_TOKEN', '--json'), { CRM_TOKEN: value });
    expect(onlyJson(set)).toMatchObject({ name: 'crm-token' });
    expect(set.stdout + set.stderr).not.toContain(value);
    const list = onlyJson(await mandate(as('secret', 'list', '--json'))) as { secrets: { name: string }[] };
    expect(list.secrets.map((s) => s.name)).toEqual(['crm-token']);
    expect(onlyJson(await mandate(as('secret', 'delete', 'crm-token', '--json')))).toEqual({ name: 'crm-token', deleted: true });
  }, 300_000);

  it('policy validate (valid and invalid: the problems on stderr too) and policy reload', async () => {
    expect(onlyJson(await mandate(['policy', 'validate', EXAMPLE_POLICIES, '--json']))).toMatchObject({ ok: true, policies: { dir: EXAMPLE_POLICIES }, problems: [] });
    const bad = join(dir, 'bad-policies');
    await rm(bad, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(bad));
    await writeFile(join(bad, 'p.cedar'), 'permit (principal, action, resource) when { context.nonexistent == 1 };\n');
    const invalid = await mandate(['policy', 'validate', bad, '--json']);
    expect(invalid.code).toBe(EXIT.FAILED);
    const report = onlyJson(invalid) as { ok: boolean; problems: string[] };
    expect(report.ok).toBe(false);
    expect(report.problems.length).toBeGreaterThan(0);
    expect(invalid.stderr).toContain(report.problems[0]);
    expect(onlyJson(await mandate(as('policy', 'reload', '--json')))).toMatchObject({ policies: expect.any(Number), version: expect.any(String) });
  }, 300_000);

  it('audit verify, backup, restore, keys rotate-kek and config validate', async () => {
    const data = join(dir, 'data');
    expect(onlyJson(await mandate(['audit', 'verify', '--data-dir', data, '--json']))).toMatchObject({ ok: true });
    const backup = join(dir, 'backup');
    expect(onlyJson(await mandate(['backup', '--data-dir', data, '--out', backup, '--json']))).toMatchObject({ records: expect.any(Number) });
    const restored = join(dir, 'restored');
    expect(onlyJson(await mandate(['restore', '--from', backup, '--data-dir', restored, '--json']))).toMatchObject({ ok: true });
    // the backup leaves the key encryption key out: the restored folder takes the server's
    const kek = (await readFile(join(data, 'kek.key'), 'utf8')).trim();
    const rotated = onlyJson(await mandate(['keys', 'rotate-kek', '--data-dir', restored, '--new-kek-file', join(dir, 'new.kek'), '--json'], { MANDATE_KEK: kek }));
    expect(rotated).toMatchObject({ created: true, keys: expect.any(Number) });
    const config = join(dir, 'c.yaml');
    await writeFile(config, 'server:\n  port: 9000\n');
    expect(onlyJson(await mandate(['config', 'validate', config, '--json']))).toEqual({ ok: true, file: config });
  }, 300_000);
});

describe('a missing flag or argument is named, exit 2, before a key or a server is looked for', () => {
  const nowhere = ['--data-dir', 'no-such-folder', '--url', 'http://127.0.0.1:9'];
  it.each([
    [['approvals', 'approve', '--reason', 'ok'], 'missing the approval ID'],
    [['approvals', 'deny', 'a-1'], 'missing --reason'],
    [['approvals'], 'missing the sub-command (list, approve or deny)'],
    [['task', 'lift', '--reason', 'fine'], 'missing the TASK_ID'],
    [['task', 'lift', 't-1'], 'missing --reason'],
    [['kill', '--reason', 'incident'], 'missing one of --agent, --task, --all'],
    [['kill', '--agent', agent], 'missing --reason'],
    [['kill', '--all', '--agent', agent, '--reason', 'x'], 'only one of --agent, --task, --all (got --agent, --all)'],
    [['unkill', '--reason', 'cleared'], 'missing one of --agent, --all'],
    [['secret', 'set', 'crm-token'], 'missing one of --from-env, --stdin'],
    [['secret', 'set', '--stdin'], 'missing the secret NAME'],
    [['secret', 'delete'], 'missing the secret NAME'],
    [['secret'], 'missing the sub-command (set, list or delete)'],
  ])('mandate %j', async (args, message) => {
    const r = await mandate([...args, ...nowhere]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.stderr.split('\n')[0]).toBe(message);
    expect(r.stdout).toBe('');
  }, 300_000);
});

describe('secret set against a server without a secrets key', () => {
  it('says the server is up but has no secrets key, and where to set it: SECRETS_KEY_MISSING, exit 3', async () => {
    const bare = await serve(parseConfig({ environment: 'prod', data_dir: join(dir, 'bare'), server: { port: 0 }, log: { level: 'silent' } }), { writeAdminKeyFile: false, logger: false, env: {} });
    try {
      const r = await mandate(['secret', 'set', 'crm-token', '--from-env', 'CRM_TOKEN', '--url', bare.url, '--api-key', bare.runtime.bootstrapAdminKey as string], { CRM_TOKEN: 'a-long-enough-value' });
      expect(r.code).toBe(EXIT.CONFIG);
      expect(r.stderr).toMatch(new RegExp(`^SECRETS_KEY_MISSING: the server at ${bare.url.replace(/[.]/g, '\\.')} is running but was started without a secrets key`));
      expect(r.stderr).toContain('mcp.secrets_key_file');
      expect(r.stderr).toContain('MANDATE_SECRETS_KEY');
      expect(r.stderr).not.toMatch(/unavailable|cannot reach/i);
    } finally {
      await bare.close();
    }
  }, 300_000);
});
