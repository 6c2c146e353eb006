#!/usr/bin/env node
'use strict';
// The `vrouter-emu` command: the bundle built at `npm install` (scripts/build.cjs).
//
// This file stays in ES5 on purpose: the Vagrant matrix runs it on Ubuntu 12.04 and CentOS 6, whose Node
// (10.x) cannot parse the bundle (optional chaining). There it says so, and `selftest --json` still
// prints a report (a failed "Node runtime" check) so that the box's row names the reason.
var major = Number(process.versions.node.split('.')[0]);
if (major < 16) {
  var args = process.argv.slice(2);
  var why = 'node ' + process.version + ' is too old: vrouter-emu needs Node 16 or later (see README, Platforms)';
  if (args[0] === 'selftest' && args.indexOf('--json') >= 0) {
    process.stdout.write(JSON.stringify({
      ok: false, platform: null, node: process.version,
      checks: [{ name: 'Node runtime', ok: false, detail: why }],
    }) + '\n');
    process.exit(1);
  }
  process.stderr.write('vrouter-emu: ' + why + '\n');
  process.exit(2);
}
var cli;
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
