import { defineConfig } from 'vitest/config';

// Two cores on the reference machine: parallel, but bounded.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'bench/**/*.test.ts', 'examples/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { minForks: 1, maxForks: 2 } },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: process.env['CI'] ? ['default'] : ['default'],
  },
});
