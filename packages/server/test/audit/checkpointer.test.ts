/**
 * The checkpointer keeps the unanchored tail (records no signed checkpoint covers) bounded:
 * in time, also when nothing is appended through it (a tail left by a crashed run, records of
 * another node), and to nothing at a clean close, an append still under way included. The API
 * reports the tail. Run on both stores: the head and the checkpoints come from each.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRuntime, parseConfig, sha256Hasher, type MandateConfigInput, type MandateRuntime } from '@mandate/server';
import { openSqliteStore } from '@mandate/store-sqlite';
import { openPostgresStore } from '@mandate/store-postgres';
import type { AuditDraft, Store } from '@mandate/core';
import { afterAll, describe, expect, it } from 'vitest';
import { PG_URL, dropSchema, freshSchema } from '../../../store-postgres/test/support.ts';
import { ManualClock, startHarness, WIDE_CEILING } from '../support.ts';

const drafts = (n: number, tag: string): AuditDraft[] => Array.from({ length: n }, (_, i) => ({ kind: 'decision' as const, ts: Date.now(), callId: `${tag}-${i}`, data: { effect: 'deny' } }));

/** polls until `check` holds, generously bounded (a busy machine is slow, never wrong) */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting until ${what}`);
}

async function newestCheckpoint(rt: MandateRuntime): Promise<number> {
  return (await rt.store.checkpoints.listCheckpoints()).at(-1)?.seq ?? 0;
}

const schemas: string[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const s of schemas) await dropSchema(s);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface Kind {
  readonly name: string;
  /** the store part of a config, fresh for each call */
  config(): Promise<Partial<MandateConfigInput>>;
  /** the same store opened on its own: a crashed run's or another node's writes */
  open(config: Partial<MandateConfigInput>): Store | Promise<Store>;
}

const sqlite: Kind = {
  name: 'SQLite',
  async config() {
    const dir = await mkdtemp(join(tmpdir(), 'mandate-cp-'));
    dirs.push(dir);
    return { data_dir: dir };
  },
  open: async (c) => openSqliteStore({ path: join(c.data_dir as string, 'mandate.db'), hasher: sha256Hasher }),
};

const postgres: Kind = {
  name: 'PostgreSQL',
  async config() {
    const dir = await mkdtemp(join(tmpdir(), 'mandate-cp-'));
    dirs.push(dir);
    const schema = freshSchema();
    schemas.push(schema);
    return { data_dir: dir, store: PG_URL, postgres: { schema } };
  },
  open: (c) => openPostgresStore({ url: PG_URL, hasher: sha256Hasher, schema: (c.postgres as { schema: string }).schema }),
};

async function runtimeOf(store: Partial<MandateConfigInput>, audit: MandateConfigInput['audit']): Promise<MandateRuntime> {
  return createRuntime(parseConfig({ environment: 'prod', log: { level: 'silent' }, ...store, audit }), { writeAdminKeyFile: false });
}

/** a second handle on the same store, as another node (or a crashed run) has */
async function sideStore(kind: Kind, store: Partial<MandateConfigInput>): Promise<Store> {
  return kind.open(store);
}

describe.each([sqlite, postgres])('the audit checkpointer on $name', (kind) => {
  it('covers records it did not append (another node, a crashed run) within checkpoint_interval while idle', async () => {
    const store = await kind.config();
    const rt = await runtimeOf(store, { checkpoint_interval: '300ms', checkpoint_every: 1_000_000 });
    const side = await sideStore(kind, store);
    try {
      await rt.audit.append(drafts(1, 'own'));
      await rt.audit.checkpointNow();
      const [last] = (await side.audit.append(drafts(3, 'other'))).slice(-1);
      // nothing more is appended through this node: only the timer can cover those records
      await eventually(async () => (await newestCheckpoint(rt)) >= (last?.seq ?? Infinity), 'a checkpoint covers the records appended elsewhere');
    } finally {
      await side.close();
      await rt.close();
    }
  });

  it('covers at start-up the unanchored tail a crashed run left behind', async () => {
    const store = await kind.config();
    const first = await runtimeOf(store, { checkpoint_interval: '1h' });
    await first.audit.append(drafts(2, 'before'));
    await first.close();
    const side = await sideStore(kind, store);
    const [last] = (await side.audit.append(drafts(4, 'crashed'))).slice(-1);
    await side.close();
    // an hour-long interval: only a checkpoint at start-up covers the tail soon
    const rt = await runtimeOf(store, { checkpoint_interval: '1h' });
    try {
      await eventually(async () => (await newestCheckpoint(rt)) === last?.seq, 'the inherited tail is covered');
    } finally {
      await rt.close();
    }
  });

  it('signs the final head at close, covering an append still under way, and refuses appends after it', async () => {
    const store = await kind.config();
    const rt = await runtimeOf(store, { checkpoint_interval: '1h' });
    const pending = rt.audit.append(drafts(3, 'in-flight'));
    await rt.close();
    const [last] = (await pending).slice(-1);
    await expect(rt.audit.append(drafts(1, 'late'))).rejects.toMatchObject({ code: 'AUDIT_UNAVAILABLE' });
    const side = await sideStore(kind, store);
    try {
      expect((await side.audit.head())?.seq).toBe(last?.seq);
      expect((await side.checkpoints.listCheckpoints()).at(-1)?.seq).toBe(last?.seq);
    } finally {
      await side.close();
    }
  });
});

describe('the checkpoint settings', () => {
  it('refuses an interval that would not bound the tail, or would spin (CONFIG_INVALID)', () => {
    for (const checkpoint_interval of ['0s', '10ms', '2d']) {
      expect(() => parseConfig({ audit: { checkpoint_interval } })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    }
    expect(parseConfig({ audit: { checkpoint_interval: '100ms' } }).audit.checkpoint_interval).toBe(100);
  });
});

describe('GET /v1/audit/verify and the unanchored tail', () => {
  it('reports the records after the newest checkpoint (how many, since when) and whether the checkpointer is overdue', async () => {
    const clock = new ManualClock();
    const h = await startHarness({ clock, config: { audit: { checkpoint_interval: '30s', checkpoint_every: 1_000_000 } } });
    try {
      const agent = await h.registerAgent('tail', WIDE_CEILING);
      const task = await h.startTask(agent);
      await h.runtime.audit.checkpointNow();
      const anchored = (await h.runtime.store.audit.head())?.seq ?? 0;
      clock.advance(1000);
      expect((await h.authorize(task.token, { tool: 'helpdesk.search_tickets', args: { q: 'x' } })).statusCode).toBe(200);
      const head = (await h.runtime.store.audit.head())?.seq ?? 0;
      const v = (await h.op('GET', '/v1/audit/verify')).json<Record<string, unknown>>();
      expect(v).toMatchObject({
        ok: true,
        status: 'unanchored_tail',
        anchored_seq: anchored,
        unanchored: { records: head - anchored, from_seq: anchored + 1, to_seq: head, since: new Date(clock.now()).toISOString() },
        checkpointer: { every: 1_000_000, interval_ms: 30_000, overdue: false, last_error: null },
        anchors: null,
        anchor_sinks: [],
      });
      clock.advance(60_000);
      expect((await h.op('GET', '/v1/audit/verify')).json()).toMatchObject({ status: 'unanchored_tail', checkpointer: { overdue: true } });
      await h.runtime.audit.checkpointNow();
      expect((await h.op('GET', '/v1/audit/verify')).json()).toMatchObject({ ok: true, status: 'intact', unanchored: null, checkpointer: { overdue: false } });
    } finally {
      await h.close();
    }
  });
});
