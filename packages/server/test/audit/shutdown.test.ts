/**
 * `mandate serve` stopped by SIGTERM or SIGINT signs a checkpoint of its final head and anchors
 * it before it exits: a clean stop leaves no unanchored tail.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../cluster/throwaway-pg.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..', '..');
const CLI = join(ROOT, 'packages', 'cli', 'src', 'main.ts');
const ADMIN = 'mk_' + 'S'.repeat(43);
const AGENT = 'spiffe://dev.mandate.local/agents/stopping';

const root = mkdtempSync(join(tmpdir(), 'mandate-shutdown-'));
const running: ChildProcess[] = [];
afterAll(() => {
  for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

describe.each(['SIGTERM', 'SIGINT'] as const)('mandate serve stopped by %s', (signal) => {
  it('checkpoints and anchors its final head before it exits', { timeout: 120_000 }, async () => {
    const data = join(root, `data-${signal}`);
    mkdirSync(join(root, `anchors-${signal}`));
    const anchors = join(root, `anchors-${signal}`, 'checkpoints.jsonl');
    const config = join(root, `config-${signal}.yaml`);
    // an hour between checkpoints: only the one at shutdown covers these calls
    writeFileSync(config, `audit: { checkpoint_interval: 1h, checkpoint_every: 1000000, anchors: { file: ${JSON.stringify(anchors)} } }\n`);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const proc = spawn(process.execPath, [CLI, 'serve', '--config', config, '--port', String(port), '--data-dir', data, '--policies', join(ROOT, 'examples', 'policies'), '--dev-issuer'], {
      env: { ...process.env, MANDATE_BOOTSTRAP_ADMIN_KEY: ADMIN, MANDATE_ENVIRONMENT: 'prod', MANDATE_LOG_LEVEL: 'silent' },
      stdio: 'ignore',
    });
    running.push(proc);
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    // a busy machine starts slowly: wait on readiness, generously
    const deadline = Date.now() + 90_000;
    while (!(await fetch(`${url}/readyz`).then((r) => r.ok, () => false))) {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error('the server did not become ready');
      await new Promise((r) => setTimeout(r, 100));
    }
    const post = async (path: string, bearer: string, body: unknown) => {
      const res = await fetch(url + path, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return (await res.json()) as Record<string, unknown>;
    };
    await post('/v1/agents', ADMIN, { id: AGENT, owner: 'team', type: 'support' });
    const svid = (await post('/v1/dev/workload-tokens', ADMIN, { spiffe_id: AGENT }))['token'] as string;
    const task = await post('/v1/tasks', svid, { mandate: { purpose: 'shutdown test', environment: 'prod', tools: [{ name: 'helpdesk.search_tickets' }], data_classes: ['internal'] } });
    for (let i = 0; i < 5; i++) expect((await post('/v1/authorize', task['token'] as string, { tool: 'helpdesk.search_tickets', args: { q: String(i) } }))['effect']).toBe('allow');

    proc.kill(signal);
    expect(await exited).toBe(0);
    const db = new DatabaseSync(join(data, 'mandate.db'), { readOnly: true });
    try {
      const head = (db.prepare('SELECT MAX(seq) AS s FROM audit_log').get() as { s: number }).s;
      const newest = (db.prepare('SELECT MAX(seq) AS s FROM checkpoints').get() as { s: number | null }).s;
      expect(head).toBeGreaterThan(10);
      expect(newest).toBe(head);
      const anchored = readFileSync(anchors, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq);
      expect(anchored.at(-1)).toBe(head);
    } finally {
      db.close();
    }
  });
});
