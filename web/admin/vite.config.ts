import { defineConfig } from "vite";

// The console is served by the edge at /admin/ from the files built here into
// dist/, which edge/gateway embeds (go:embed). `npm run build` rebuilds them;
// web/admin/console_test.go checks that the committed dist/ matches the sources.
export default defineConfig({
  base: "/admin/",
  build: {
    outDir: process.env.CONSOLE_OUT_DIR || "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 200,
  },
  server: {
    // `npm run dev` against a running edge (go tool task up) on :8080.
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
});
