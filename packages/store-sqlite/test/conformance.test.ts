import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStoreConformance, testHasher } from '../../store-testkit/src/index.ts';
import { openSqliteStore } from '../src/index.ts';

runStoreConformance('sqlite (temp file)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mandate-sqlite-'));
  const store = openSqliteStore({ path: join(dir, 'mandate.db'), hasher: testHasher });
  return {
    store,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

runStoreConformance('sqlite (temp file, commit thread)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mandate-sqlite-'));
  const store = openSqliteStore({ path: join(dir, 'mandate.db'), hasher: testHasher, commitThread: true });
  return {
    store,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

runStoreConformance('sqlite (in memory)', async () => ({
  store: openSqliteStore({ path: ':memory:', hasher: testHasher, durability: 'normal' }),
  cleanup: async () => {},
}));
