import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The app imports the SDK from its sources (clients/ts/src), so one build carries
// both and the stamp (scripts/stamp.mjs) covers both.
export default defineConfig({
  resolve: {
    alias: { '@natter/sdk': fileURLToPath(new URL('../../clients/ts/src/index.ts', import.meta.url)) },
  },
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 200 },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8080', '/ws': { target: 'ws://127.0.0.1:8080', ws: true } },
  },
});
