import { beforeAll, describe, expect, it } from 'vitest';
import { runStoreConformance, testHasher } from '../../store-testkit/src/index.ts';
import { openPostgresStore } from '../src/index.ts';
import { dropSchema, freshSchema, PG_URL, unreachable } from './support.ts';

// CI starts PostgreSQL: when it does not answer, this file fails with the reason instead of
// skipping, so a broken database can never pass as a green run.
describe('postgres test database', () => {
  let problem: string | undefined;
  beforeAll(async () => {
    problem = await unreachable();
  });

  it('answers', () => {
    expect(problem, problem).toBeUndefined();
  });
});

runStoreConformance('postgres', async () => {
  const schema = freshSchema();
  try {
    const store = await openPostgresStore({ url: PG_URL, hasher: testHasher, schema, poolSize: 4 });
    return { store, cleanup: () => dropSchema(schema) };
  } catch (error) {
    await dropSchema(schema).catch(() => undefined);
    throw error;
  }
});
