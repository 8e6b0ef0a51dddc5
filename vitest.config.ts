import { defineConfig } from 'vitest/config';

// Two cores on the reference machine: parallel, but bounded.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'bench/**/*.test.ts', 'examples/**/*.test.ts', 'policies/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // .ci/run asks for a JSON report to print a plain "N passed, N failed" closing line.
    reporters: process.env['MANDATE_TEST_REPORT'] ? ['default', 'json'] : ['default'],
    ...(process.env['MANDATE_TEST_REPORT'] ? { outputFile: { json: process.env['MANDATE_TEST_REPORT'] } } : {}),
  },
});
