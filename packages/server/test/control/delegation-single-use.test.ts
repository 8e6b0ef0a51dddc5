/**
 * A workload token is good for one delegation (THREATS ASI07): the use is known by the token's
 * issuer and claims, never its spelling, and it is spent by one atomic insert, so neither a
 * re-encoded signature nor a burst of concurrent requests gets a second child out of one token.
 * Run on SQLite and on PostgreSQL (the shared test database, a fresh schema, two nodes).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { buildHttpApp, createRuntime, parseConfig } from '@mandate/server';
import type { FastifyInstance } from 'fastify';
import { dropSchema, freshSchema, PG_URL } from '../../../store-postgres/test/support.ts';
import { EXAMPLE_POLICIES, errorOf, mandate, startHarness, TRUST_DOMAIN, type Harness, type StartedTask } from '../support.ts';

/** the order of P-256, the curve of the dev issuer's ES256 tokens */
const P256_N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

/** The same token with its ECDSA signature (r, s) re-encoded as (r, n − s): it verifies as well. */
function twinSignature(token: string): string {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const sig = Buffer.from(signature, 'base64url');
  expect(sig.length).toBe(64);
  const s = BigInt('0x' + sig.subarray(32).toString('hex'));
  const twin = Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex');
  return `${header}.${payload}.${Buffer.concat([sig.subarray(0, 32), twin]).toString('base64url')}`;
}

const parentMandate = () => mandate({ delegation: { allowed: true, max_depth: 2, max_children: 20 }, budgets: { calls: 100 } });
const childMandate = () => mandate({ tools: [{ name: 'helpdesk.search_tickets' }], budgets: { calls: 1 } });

type Inject = Harness['inject'];

function delegateVia(inject: Inject, parent: StartedTask, svid: string) {
  return inject({ method: 'POST', url: `/v1/tasks/${parent.id}/delegate`, headers: { authorization: `Bearer ${parent.token}` }, payload: { workload_token: svid, mandate: childMandate() } });
}

interface Stores {
  readonly name: string;
  /** one node's harness, and a second node on the same store where the store allows it */
  start(): Promise<{ h: Harness; other: Inject; close(): Promise<void> }>;
}

const sqlite: Stores = {
  name: 'SQLite',
  async start() {
    const h = await startHarness();
    return { h, other: h.inject, close: () => h.close() };
  },
};

const postgres: Stores = {
  name: 'PostgreSQL (two nodes)',
  async start() {
    const schema = freshSchema();
    const store = { store: PG_URL, postgres: { schema, pool_size: 8 } };
    let h: Harness;
    try {
      h = await startHarness({ config: store });
    } catch (e) {
      await dropSchema(schema);
      throw e;
    }
    // a second node: its own runtime and pool on the same schema (keys and dev issuer come from it)
    let app: FastifyInstance | undefined;
    let rt: Awaited<ReturnType<typeof createRuntime>> | undefined;
    try {
      rt = await createRuntime(
        parseConfig({
          environment: 'prod',
          data_dir: h.dir,
          ...store,
          policies: { dir: EXAMPLE_POLICIES },
          identity: { dev_issuer: { enabled: true, trust_domain: TRUST_DOMAIN } },
          log: { level: 'silent' },
        }),
        { writeAdminKeyFile: false, clock: h.clock },
      );
      app = buildHttpApp(rt, { logger: false });
    } catch (e) {
      await h.close();
      await dropSchema(schema);
      throw e;
    }
    const node = app;
    const runtime = rt;
    return {
      h,
      other: (o) => node.inject(o),
      async close() {
        try {
          await node.close();
          await runtime.close();
          await h.close();
        } finally {
          await dropSchema(schema);
        }
      },
    };
  },
};

describe.each([sqlite, postgres])('single-use delegation tokens on $name', (stores) => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('refuses a second delegation with the same token whose ECDSA signature was re-encoded (s → n − s)', async () => {
    const env = await stores.start();
    close = env.close;
    const { h } = env;
    const [root, sub] = [await h.registerAgent('root'), await h.registerAgent('sub')];
    const parent = await h.startTask(root, parentMandate());
    const svid = await h.workloadToken(sub);
    const twin = twinSignature(svid);
    expect(twin).not.toBe(svid);
    // the twin is a valid token in its own right: it starts a task (task start is not single-use)
    const started = await h.inject({ method: 'POST', url: '/v1/tasks', headers: { authorization: `Bearer ${twin}` }, payload: { mandate: childMandate() } });
    expect(started.statusCode).toBe(201);

    expect((await delegateVia(h.inject, parent, svid)).statusCode).toBe(201);
    const replay = await delegateVia(h.inject, parent, twin);
    expect(replay.statusCode).toBe(401);
    expect(errorOf(replay).code).toBe('TOKEN_REVOKED');
    // and the other way round, with a fresh token: the twin first, the original refused
    const svid2 = await h.workloadToken(sub);
    expect((await delegateVia(env.other, parent, twinSignature(svid2))).statusCode).toBe(201);
    expect(errorOf(await delegateVia(h.inject, parent, svid2)).code).toBe('TOKEN_REVOKED');
  });

  it('lets exactly one of many concurrent delegations with one token through', async () => {
    const env = await stores.start();
    close = env.close;
    const { h } = env;
    const [root, sub] = [await h.registerAgent('root'), await h.registerAgent('sub')];
    const parent = await h.startTask(root, parentMandate());
    for (let round = 0; round < 3; round++) {
      const svid = await h.workloadToken(sub);
      // half of them to each node (one node on SQLite), all at once
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => delegateVia(i % 2 === 0 ? h.inject : env.other, parent, svid)));
      const statuses = results.map((r) => r.statusCode);
      expect(statuses.filter((s) => s === 201), statuses.join(' ')).toHaveLength(1);
      for (const r of results.filter((x) => x.statusCode !== 201)) expect(errorOf(r).code).toBe('TOKEN_REVOKED');
    }
    const children = (await h.op('GET', `/v1/tasks?limit=100`)).json<{ tasks: { parent_id: string | null }[] }>().tasks.filter((t) => t.parent_id === parent.id);
    expect(children).toHaveLength(3);
  });
});
