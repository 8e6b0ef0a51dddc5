import { defineConfig } from 'vite';

// Built into dist/ and served by `mandate serve` under /dashboard/ (see README "Operator dashboard").
// No inline script or style ends up in the page: the CSP there is default-src 'self'.
export default defineConfig({
  base: '/dashboard/',
  root: import.meta.dirname,
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
  },
});
