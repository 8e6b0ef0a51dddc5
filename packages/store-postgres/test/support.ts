/**
 * The machine's shared PostgreSQL, used only through throw-away schemas: each store gets a fresh
 * `t_<random>` schema, dropped afterwards. Nothing here stops or breaks the server.
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { Client } from 'pg';
import { afterEach } from 'vitest';
import { testHasher } from '../../store-testkit/src/index.ts';
import { openPostgresStore, type PostgresStore, type PostgresStoreOptions, type StoreChange } from '../src/index.ts';

export const PG_URL = process.env['MANDATE_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

export function freshSchema(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

/** runs one statement on a short-lived connection of its own */
export async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await admin((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

/** undefined when the server answers, else why it does not (the suites then fail, loudly) */
export async function unreachable(): Promise<string | undefined> {
  try {
    await admin((c) => c.query('SELECT 1'));
    return undefined;
  } catch (error) {
    return `PostgreSQL is not reachable at ${PG_URL} (set MANDATE_TEST_PG_URL): ${error instanceof Error ? error.message : String(error)}`;
  }
}

/**
 * A TCP gate in front of the server, for one store: closing it cuts that store's connections and
 * refuses new ones (a network partition for that node only), opening it lets it reconnect.
 */
export interface Gate {
  /** PG_URL with host and port pointing at the gate */
  readonly url: string;
  /** the local ports the server sees for this store's connections (pg_stat_activity.client_port) */
  upstreamPorts(): number[];
  /** refuses new connections; with cut, also drops the open ones */
  close(opts?: { cut?: boolean }): void;
  open(): void;
  destroy(): Promise<void>;
}

export async function openGate(): Promise<Gate> {
  const target = new URL(PG_URL);
  const host = target.hostname;
  const port = Number(target.port || '5432');
  let allowed = true;
  const pairs = new Set<{ down: Socket; up: Socket }>();
  const server = createServer((down) => {
    if (!allowed) {
      down.destroy();
      return;
    }
    const up = connect({ host, port });
    const pair = { down, up };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      down.destroy();
      up.destroy();
    };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = new URL(PG_URL);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.toString(),
    upstreamPorts: () => [...pairs].map((p) => p.up.localPort).filter((p): p is number => p !== undefined),
    close(opts = {}) {
      allowed = false;
      if (opts.cut) for (const p of [...pairs]) p.down.destroy();
    },
    open() {
      allowed = true;
    },
    async destroy() {
      allowed = false;
      for (const p of [...pairs]) p.down.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** polls until `check` holds, or fails after `ms` with `what` */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Opens stores on fresh schemas for one test file and, after each test, closes them, drops the
 * schemas and removes the gates.
 */
export function storeHarness() {
  const stores: PostgresStore[] = [];
  const schemas = new Set<string>();
  const gates: Gate[] = [];

  afterEach(async () => {
    for (const g of gates.splice(0)) await g.destroy();
    await Promise.allSettled(stores.splice(0).map((s) => s.close()));
    for (const schema of [...schemas]) await dropSchema(schema);
    schemas.clear();
  });

  const open = async (schema: string, opts: Partial<PostgresStoreOptions> = {}): Promise<PostgresStore> => {
    schemas.add(schema);
    const s = await openPostgresStore({ url: PG_URL, hasher: testHasher, schema, poolSize: 4, ...opts });
    stores.push(s);
    return s;
  };

  return {
    open,
    /** two nodes: two stores, two pools, one schema */
    async twoNodes(opts: Partial<PostgresStoreOptions> = {}): Promise<[PostgresStore, PostgresStore]> {
      const schema = freshSchema();
      return [await open(schema, opts), await open(schema, opts)];
    },
    async gate(): Promise<Gate> {
      const g = await openGate();
      gates.push(g);
      return g;
    },
  };
}

/** collects what a subscriber hears */
export function recorder(): { seen: StoreChange[]; onChange: (c: StoreChange) => void } {
  const seen: StoreChange[] = [];
  return { seen, onChange: (c) => seen.push(c) };
}

/** a valid approval of task-1, approved unless `over` says otherwise */
export { approval } from '../../store-testkit/src/index.ts';
