/**
 * Workload token sources (a string, an environment variable, a callback, a file), outcome
 * reports to a server that takes them, and the main entry's promise to run on edge runtimes
 * (no node:* import reachable from it).
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MandateClient, workloadTokenFromEnv } from '../src/index.ts';
import { keepTaskTokenFile, workloadTokenFromFile } from '../src/node.ts';
import { decision, fakeJwt, issued, json, startFakeServer, type FakeServer } from './fake-server.ts';

let fake: FakeServer;
beforeEach(async () => {
  fake = await startFakeServer();
  fake.handle((q, res) => {
    if (q.path === '/v1/tasks') return json(res, 201, issued('task_1', fakeJwt('t'), Date.now() + 300_000));
    if (q.path === '/v1/authorize') return json(res, 200, decision('allow', { call_id: 'call_42' }));
    if (q.path === '/v1/outcomes') return json(res, 200, { call_id: 'call_42', task_id: 'task_1', tool: 't', trust: 'untrusted', result_digest: 'sha256:x', audit_seq: 3 });
    return json(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${q.method} ${q.path}`, requestId: 'r' } });
  });
});
afterEach(async () => {
  await fake.close();
});

const startWith = async (source: ConstructorParameters<typeof MandateClient>[0]['workloadToken']) => {
  await new MandateClient({ url: fake.url, workloadToken: source, autoRenew: false }).startTask({ mandate: { purpose: 'p' } });
  return fake.requests.find((r) => r.path === '/v1/tasks');
};

describe('workload token sources', () => {
  it('sends a literal token as the bearer, and the mandate as the body', async () => {
    const seen = await startWith('svid-literal');
    expect(seen?.authorization).toBe('Bearer svid-literal');
    expect(seen?.body).toEqual({ mandate: { purpose: 'p' } });
  });

  it('reads an environment variable at each start', async () => {
    process.env['MANDATE_TEST_SVID'] = ' svid-from-env\n';
    try {
      expect((await startWith(workloadTokenFromEnv('MANDATE_TEST_SVID')))?.authorization).toBe('Bearer svid-from-env');
    } finally {
      delete process.env['MANDATE_TEST_SVID'];
    }
  });

  it('refuses an empty or missing variable before sending anything', async () => {
    await expect(startWith(workloadTokenFromEnv('MANDATE_TEST_UNSET'))).rejects.toThrow(/MANDATE_TEST_UNSET/);
    expect(fake.requests).toHaveLength(0);
  });

  it('asks a callback at each start (a rotating source)', async () => {
    let n = 0;
    const client = new MandateClient({ url: fake.url, workloadToken: async () => `svid-${(n += 1)}`, autoRenew: false });
    await client.startTask({ mandate: {} });
    await client.startTask({ mandate: {} });
    expect(fake.requests.map((r) => r.authorization)).toEqual(['Bearer svid-1', 'Bearer svid-2']);
  });

  it('re-reads a token file at each start (SPIRE rewrites it as it rotates)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mandate-sdk-'));
    try {
      const file = join(dir, 'svid.jwt');
      const source = workloadTokenFromFile(file);
      const client = new MandateClient({ url: fake.url, workloadToken: source, autoRenew: false });
      await writeFile(file, 'svid-one\n');
      await client.startTask({ mandate: {} });
      await writeFile(file, 'svid-two\n');
      await client.startTask({ mandate: {} });
      expect(fake.requests.map((r) => r.authorization)).toEqual(['Bearer svid-one', 'Bearer svid-two']);
      await writeFile(file, '');
      await expect(client.startTask({ mandate: {} })).rejects.toThrow(/empty/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a task token file for another enforcement point', () => {
  it('holds the current token, mode 0600, and follows every renewal', async () => {
    let n = 0;
    fake.handle((q, res) => json(res, q.path === '/v1/tasks' ? 201 : 200, issued('task_1', fakeJwt(`t${(n += 1)}`), Date.now() + 300_000)));
    const dir = await mkdtemp(join(tmpdir(), 'mandate-sdk-'));
    try {
      const file = join(dir, 'task.jwt');
      const task = await new MandateClient({ url: fake.url, workloadToken: 'w', autoRenew: false }).startTask({ mandate: {} });
      const stop = await keepTaskTokenFile(task, file);
      expect((await readFile(file, 'utf8')).trim()).toBe(fakeJwt('t1'));
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      await task.renew();
      await expect.poll(async () => (await readFile(file, 'utf8')).trim()).toBe(fakeJwt('t2'));
      stop();
      await task.renew();
      await new Promise((r) => setTimeout(r, 50));
      expect((await readFile(file, 'utf8')).trim()).toBe(fakeJwt('t2'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('outcome reports', () => {
  const reports = () => fake.requests.filter((r) => r.path === '/v1/outcomes');

  it("reports an allowed call's result against its call id, with the task token", async () => {
    const task = await new MandateClient({ url: fake.url, workloadToken: 'w', autoRenew: false }).startTask({ mandate: {} });
    const result = { tickets: ['T-1042'], from: 'customer@acme.example' };
    expect(await task.guard('helpdesk.search_tickets', (_args: object) => result)({ query: 'x' })).toEqual(result);
    expect(reports().map((r) => r.body)).toEqual([{ call_id: 'call_42', result }]);
    expect(reports()[0]?.authorization).toBe(`Bearer ${fakeJwt('t')}`);
  });

  it('reports a tool that threw as an error, and rethrows its error', async () => {
    const task = await new MandateClient({ url: fake.url, workloadToken: 'w', autoRenew: false }).startTask({ mandate: {} });
    await expect(task.guard('t', (_args: object) => { throw new Error('tool broke'); })({})).rejects.toThrow('tool broke');
    expect(reports().map((r) => r.body)).toEqual([{ call_id: 'call_42', result: 'Error: tool broke', is_error: true }]);
  });

  it('a result with no JSON form is not reported, and says so to onError', async () => {
    const errors: unknown[] = [];
    const task = await new MandateClient({ url: fake.url, workloadToken: 'w', autoRenew: false, onError: (e) => errors.push(e) }).startTask({ mandate: {} });
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(await task.guard('t', (_args: object) => cyclic)({})).toBe(cyclic);
    expect(reports()).toHaveLength(0);
    expect(String(errors[0])).toMatch(/no JSON form/);
  });

  it('learns from a "no route" 404 that the server predates outcome reports, and stops sending them', async () => {
    fake.handle((q, res) => {
      if (q.path === '/v1/tasks') return json(res, 201, issued('task_1', fakeJwt('t'), Date.now() + 300_000));
      if (q.path === '/v1/authorize') return json(res, 200, decision('allow', { call_id: 'call_42' }));
      return json(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${q.method} ${q.path}`, requestId: 'r' } });
    });
    const errors: unknown[] = [];
    const task = await new MandateClient({ url: fake.url, workloadToken: 'w', autoRenew: false, onError: (e) => errors.push(e) }).startTask({ mandate: {} });
    const t = task.guard('t', (_args: object) => 'ok');
    expect([await t({}), await t({}), await t({})]).toEqual(['ok', 'ok', 'ok']);
    expect(reports()).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('a failing report does not change the result, is told to onError, and reports go on', async () => {
    fake.handle((q, res) => {
      if (q.path === '/v1/tasks') return json(res, 201, issued('task_1', fakeJwt('t'), Date.now() + 300_000));
      if (q.path === '/v1/authorize') return json(res, 200, decision('allow', { call_id: 'call_42' }));
      // an unknown call is a NOT_FOUND too, but not a missing route
      return json(res, 404, { error: { code: 'NOT_FOUND', message: 'no allowed call with this id awaits an outcome for this task', requestId: 'r' } });
    });
    const errors: unknown[] = [];
    const task = await new MandateClient({ url: fake.url, workloadToken: 'w', autoRenew: false, onError: (e) => errors.push(e) }).startTask({ mandate: {} });
    const t = task.guard('t', (_args: object) => 'result');
    expect(await t({})).toBe('result');
    expect(await t({})).toBe('result');
    expect(reports()).toHaveLength(2);
    expect(errors).toHaveLength(2);
  });
});

describe('the main entry runs on edge runtimes', () => {
  it('imports no node:* module, directly or through its own files', async () => {
    const seen = new Set<string>();
    const queue = [resolve(import.meta.dirname, '../src/index.ts'), ...['ai', 'langchain', 'openai-agents'].map((f) => resolve(import.meta.dirname, `../src/integrations/${f}.ts`))];
    const bare: string[] = [];
    while (queue.length > 0) {
      const file = queue.pop() as string;
      if (seen.has(file)) continue;
      seen.add(file);
      const text = await readFile(file, 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s+'([^']+)'/g)) {
        const spec = m[1] as string;
        if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec));
        else bare.push(spec);
      }
    }
    expect(seen.size).toBeGreaterThan(6);
    expect([...seen].some((f) => f.endsWith('node.ts'))).toBe(false);
    expect(bare.filter((s) => s.startsWith('node:') || ['fs', 'path', 'os', 'http', 'https', 'crypto', 'net'].includes(s))).toEqual([]);
    // the only packages the entries reach are the frameworks an adapter is for
    expect(new Set(bare.filter((s) => !s.startsWith('node:')))).toEqual(new Set(['ai', '@langchain/core/messages', '@langchain/core/tools', '@openai/agents']));
  });
});

describe('a token revoked under a call by our own renewal', () => {
  it('asks once more with the new token', async () => {
    let task: Awaited<ReturnType<MandateClient['startTask']>> | undefined;
    fake.handle(async (q, res) => {
      if (q.path === '/v1/tasks') return json(res, 201, issued('task_1', fakeJwt('a'), Date.now() + 300_000));
      if (q.path === '/v1/tasks/task_1/renew') return json(res, 200, issued('task_1', fakeJwt('b'), Date.now() + 300_000));
      if (q.authorization === `Bearer ${fakeJwt('a')}`) {
        await task?.renew(); // a renewal lands while this call is in flight
        return json(res, 200, decision('deny', { reasons: ['TOKEN_REVOKED'] }));
      }
      return json(res, 200, decision('allow'));
    });
    task = await new MandateClient({ url: fake.url, workloadToken: 'w', autoRenew: false, reportOutcomes: false }).startTask({ mandate: {} });
    expect(await task.guard('t', (_args: object) => 'ran')({})).toBe('ran');
    expect(fake.requests.filter((r) => r.path === '/v1/authorize').map((r) => r.authorization)).toEqual([`Bearer ${fakeJwt('a')}`, `Bearer ${fakeJwt('b')}`]);
  });

  it('but a revocation it did not cause is a deny', async () => {
    fake.handle((q, res) => (q.path === '/v1/tasks' ? json(res, 201, issued('task_1', fakeJwt('a'), Date.now() + 300_000)) : json(res, 200, decision('deny', { reasons: ['TOKEN_REVOKED'] }))));
    const task = await new MandateClient({ url: fake.url, workloadToken: 'w', autoRenew: false, reportOutcomes: false }).startTask({ mandate: {} });
    await expect(task.guard('t', (_args: object) => 'ran')({})).rejects.toMatchObject({ name: 'MandateDeniedError', reasons: ['TOKEN_REVOKED'] });
    expect(fake.requests.filter((r) => r.path === '/v1/authorize')).toHaveLength(1);
  });
});
