import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READY_TIMEOUT_MS, startServe, type ServeProcess } from '../../server/test/serve-process.ts';
import { cli, EXAMPLE_POLICIES } from './support.ts';

const ADMIN = 'mk_' + 'R'.repeat(43);
const WAIT_MS = 60_000;

/** the JSON log lines the process wrote so far */
function logLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line cut by the 1 MiB window
    }
  }
  return out;
}

describe('mandate serve reloads its policies on SIGHUP and on `mandate policy reload`', () => {
  let served: ServeProcess;
  let dataDir: string;
  let policyDir: string;

  const events = (name: string) => logLines(served.output()).filter((l) => l['event'] === name);
  const waitFor = async (name: string, count: number) => {
    const start = performance.now();
    while (events(name).length < count) {
      if (performance.now() - start > WAIT_MS) throw new Error(`no ${count}th ${name} log line:\n${served.output()}`);
      if (served.child.exitCode !== null) throw new Error(`mandate serve exited:\n${served.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return events(name)[count - 1] as Record<string, unknown>;
  };
  const api = async (path: string) => (await fetch(`${served.url}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } })).json() as Promise<Record<string, unknown>>;
  const policyVersion = async () => (await api('/v1/policies'))['version'];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'mandate-sighup-data-'));
    policyDir = mkdtempSync(join(tmpdir(), 'mandate-sighup-policies-'));
    cpSync(EXAMPLE_POLICIES, policyDir, { recursive: true });
    served = await startServe({ args: ['--port', '0', '--data-dir', dataDir, '--policies', policyDir], env: { ...process.env, MANDATE_BOOTSTRAP_ADMIN_KEY: ADMIN, MANDATE_ENVIRONMENT: 'prod' } });
  }, READY_TIMEOUT_MS + 30_000);

  afterAll(async () => {
    await served.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(policyDir, { recursive: true, force: true });
  });

  it('logs its start as a structured line', async () => {
    const started = await waitFor('server.started', 1);
    expect(started).toMatchObject({ url: served.url, environment: 'prod', store: 'sqlite', policyVersion: await policyVersion() });
  });

  it('SIGHUP loads a changed folder, audits it, and the process keeps serving', async () => {
    const before = await policyVersion();
    writeFileSync(join(policyDir, 'zz-extra.cedar'), '@id("test.extra")\nforbid (principal, action == Mandate::Action::"call_tool", resource == Mandate::Tool::"shell.exec");\n');
    served.child.kill('SIGHUP');
    const line = await waitFor('policy.reloaded', 1);
    expect(line).toMatchObject({ via: 'signal', by: 'signal:SIGHUP', previousVersion: before });
    expect(served.child.exitCode).toBeNull();
    expect(await policyVersion()).toBe(line['version']);
  });

  it('SIGHUP with a broken folder is refused, logged and audited; the set in force stays', async () => {
    const before = await policyVersion();
    writeFileSync(join(policyDir, 'zz-broken.cedar'), 'permit (principal, action, resource) when { nonsense };\n');
    served.child.kill('SIGHUP');
    const line = await waitFor('policy.reload_refused', 1);
    expect(line).toMatchObject({ via: 'signal', version: before, level: 40 });
    expect(await policyVersion()).toBe(before);

    // the CLI asks the server, and is refused the same way (exit 1)
    const refused = await cli(['policy', 'reload', '--url', served.url, '--api-key', ADMIN]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('POLICY_INVALID');
    rmSync(join(policyDir, 'zz-broken.cedar'));
    const ok = await cli(['policy', 'reload', '--url', served.url, '--api-key', ADMIN]);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/^reloaded: \d+ policies, version sha256:/);

    const audit = (await api('/v1/audit?from=1&limit=1000'))['records'] as { kind: string; data: Record<string, unknown> }[];
    const kinds = audit.filter((r) => r.kind.startsWith('policy.')).map((r) => `${r.kind}/${String(r.data['via'])}`);
    expect(kinds).toEqual(['policy.reloaded/signal', 'policy.reload_refused/signal', 'policy.reload_refused/api', 'policy.reloaded/api']);
    const verified = await api('/v1/audit/verify');
    expect(verified['ok']).toBe(true);
  });

  it('stops on SIGTERM with structured stopping and stopped lines', async () => {
    expect(await served.stop()).toBe(0);
    expect(events('server.stopping')[0]).toMatchObject({ signal: 'SIGTERM' });
    expect(events('server.stopped')).toHaveLength(1);
  });
});

describe('mandate policy validate', () => {
  it('fails on a folder with no policy unless --allow-empty', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'mandate-empty-policies-'));
    try {
      const r = await cli(['policy', 'validate', empty]);
      expect(r.code).toBe(1);
      expect(r.err).toContain('holds no policy');
      expect((await cli(['policy', 'validate', empty, '--allow-empty'])).code).toBe(0);
      expect((await cli(['policy', 'validate', EXAMPLE_POLICIES])).code).toBe(0);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
