// The stamp of the web app's sources: a SHA-256 over every file the build reads
// (this app's sources and config, and the SDK's sources), written to build.stamp
// after `npm run build`. web/chat's Go test recomputes it and fails when the
// committed dist/ was built from other sources. Keep the file list in step with
// sourceFiles in web/chat/embed.go.
//
//   node scripts/stamp.mjs write | check
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(dirname(fileURLToPath(import.meta.url))); // web/chat
const root = join(here, '..', '..');
const roots = ['web/chat/index.html', 'web/chat/package.json', 'web/chat/package-lock.json', 'web/chat/vite.config.ts',
  'web/chat/tsconfig.json', 'web/chat/src', 'clients/ts/src'];

function walk(rel, out) {
  const abs = join(root, rel);
  if (statSync(abs).isDirectory()) {
    for (const e of readdirSync(abs)) walk(rel + '/' + e, out);
  } else out.push(rel);
}

export function stamp() {
  const files = [];
  for (const r of roots) walk(r, files);
  files.sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(f + '\0');
    h.update(readFileSync(join(root, f)));
    h.update('\0');
  }
  return h.digest('hex');
}

const mode = process.argv[2];
const file = join(here, 'build.stamp');
if (mode === 'write') {
  writeFileSync(file, stamp() + '\n');
  console.log('wrote', relative(root, file));
} else if (mode === 'check') {
  const want = readFileSync(file, 'utf8').trim();
  if (want !== stamp()) {
    console.error('web/chat/dist is stale: run `npm run build` in web/chat');
    process.exit(1);
  }
}
