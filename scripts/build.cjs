#!/usr/bin/env node
// Build the runtime bundle dist/vrouter-emu.cjs (CommonJS, Node 16 syntax and APIs) with esbuild, and the
// live page's client dist/web/app.js (browser, es2019).
// Runs at `npm install` (prepare) in a checkout.
'use strict';
const esbuild = require('esbuild');
const os = require('os');
const path = require('path');
const pkg = require('../package.json');

const root = path.join(__dirname, '..');
const buildInfo = {
  version: `2.22-vrouter-emu-${pkg.version}`,
  user: os.userInfo().username,
  host: os.hostname(),
  time: new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'),
};

esbuild
  .build({
    absWorkingDir: root,
    entryPoints: { 'vrouter-emu': 'src/cli/main.ts', 'dp-worker': 'src/io/dp-worker.ts', 'netns-worker': 'src/io/netns-worker.ts', 'plan-worker': 'src/capacity/plan-worker.ts', report: 'src/capacity/report.ts' },
    // rtnetlink's binding is a native module: loaded from node_modules at run time.
    external: ['netlink'],
    outdir: 'dist',
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node16',
    sourcemap: true,
    define: { __BUILD_INFO__: JSON.stringify(buildInfo) },
    logLevel: 'warning',
  })
  // The live page's client (served by the introspect as /app.js): for the browser, no dependencies.
  .then(() =>
    esbuild.build({
      absWorkingDir: root,
      entryPoints: { 'web/app': 'src/introspect/web/app.ts' },
      outdir: 'dist',
      bundle: true,
      platform: 'browser',
      format: 'iife',
      target: 'es2019',
      minify: true,
      logLevel: 'warning',
    }),
  )
  .catch(() => process.exit(1));
