import tseslint from 'typescript-eslint';

export default tseslint.config(
  // the dashboard's browser code (TSX) is checked by its own tsconfig (npm run typecheck); its tests are linted here
  { ignores: ['node_modules/**', '**/dist/**', 'packages/dashboard/src/**', 'packages/dashboard/vite.config.ts', 'bench/results/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A forgotten await on an audit write or a revocation check is a security bug.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      'no-restricted-syntax': ['error', { selector: 'ExportAllDeclaration', message: 'Use explicit named exports.' }],
      // no dynamic code: nothing from config, policy or a request is ever evaluated as JavaScript
      'no-eval': 'error',
      'no-new-func': 'error',
      '@typescript-eslint/no-implied-eval': 'error',
    },
  },
  {
    // The core is pure: no node:* modules, no environment, no I/O.
    files: ['packages/core/src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['node:*', 'fs', 'path', 'http', 'https', 'crypto', 'os', 'child_process'], message: 'packages/core is pure: inject I/O through ports.' }] }],
      'no-restricted-globals': ['error', { name: 'process', message: 'packages/core never reads the environment.' }, { name: 'fetch', message: 'packages/core does no I/O.' }],
      'no-restricted-properties': ['error', { object: 'Date', property: 'now', message: 'Use the injected Clock.' }, { object: 'Math', property: 'random', message: 'Use the injected IdGenerator.' }],
    },
  },
  {
    // The SDK's main entry and adapters run on edge runtimes: fetch and WebCrypto only.
    files: ['packages/sdk/src/**/*.ts'],
    ignores: ['packages/sdk/src/node.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['node:*', 'fs', 'path', 'http', 'https', 'crypto', 'os', 'net', 'child_process'], message: 'the SDK runs on edge runtimes: node-only code goes in src/node.ts.' }] }],
    },
  },
);
