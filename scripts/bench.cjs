#!/usr/bin/env node
// Run a benchmark on the code users run: bundle bench/<name>.ts the way scripts/build.cjs bundles the
// CLI (esbuild, CommonJS, scope-hoisted constants), then run it with node --expose-gc.
// Usage: node scripts/bench.cjs <name> [args...]
'use strict';
const esbuild = require('esbuild');
const path = require('path');
const { spawnSync } = require('child_process');

const name = process.argv[2];
if (!name) {
  process.stderr.write('usage: node scripts/bench.cjs <name> [args...]\n');
  process.exit(2);
}
const root = path.join(__dirname, '..');
const out = path.join(root, 'dist', 'bench', `${name}.cjs`);
esbuild.buildSync({
  absWorkingDir: root,
  entryPoints: [`bench/${name}.ts`],
  outfile: out,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node16',
  logLevel: 'warning',
});
const r = spawnSync(process.execPath, ['--expose-gc', out, ...process.argv.slice(3)], { stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
