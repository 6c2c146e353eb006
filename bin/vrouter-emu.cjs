#!/usr/bin/env node
'use strict';
// The `vrouter-emu` command: the bundle built at `npm install` (scripts/build.cjs).
let cli;
try {
  cli = require('../dist/vrouter-emu.cjs');
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND') {
    process.stderr.write('vrouter-emu: dist/vrouter-emu.cjs is missing; run `npm install` (or `npm run build`) in the checkout\n');
    process.exit(2);
  }
  throw e;
}
cli.runCli(process.argv.slice(2));
