#!/usr/bin/env node
// npm's install step: build the C addon (build/Release/vrouter_native.node) with node-gyp. Without a C
// toolchain it says so in one line and leaves the install to finish, so that `npm install` completes
// and `sudo npm start` (scripts/preflight.cjs) installs the toolchain or names it; a failed compile
// with the toolchain present is a real failure (exit 1, node-gyp's output above).
'use strict';
var fs = require('fs');
var path = require('path');
var cp = require('child_process');
var pf = require('./preflight.cjs');

var m = pf.missing(pf.deps.build);
if (m.length > 0) {
  var pk = pf.packagesOf(m);
  process.stderr.write('vrouter-emu: the C addon is not built: ' + m.map(function (e) { return e.command; }).join(', ') +
    ' not found (Debian packages ' + pk.join(' ') + '); `sudo npm start` or `sudo npm test` installs them, or: sudo apt-get install -y ' +
    pk.join(' ') + ' && npm rebuild\n');
  process.exit(0);
}

// npm passes its own node-gyp in npm_config_node_gyp; outside npm, the one npm ships next to node.
var candidates = [
  process.env.npm_config_node_gyp,
  path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter(function (f) { return f && fs.existsSync(f); });
// Build against the headers of the node that runs us when they are installed with it (Debian's nodejs,
// the official tarballs): node-gyp would otherwise download them, which fails on an offline host.
var prefix = path.join(path.dirname(process.execPath), '..');
var gypArgs = ['rebuild'];
if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) {
  gypArgs.push('--nodedir=' + path.resolve(prefix));
}
var r = candidates.length > 0
  ? cp.spawnSync(process.execPath, [candidates[0]].concat(gypArgs), { cwd: path.join(__dirname, '..'), stdio: 'inherit' })
  : cp.spawnSync('npx', ['--yes', 'node-gyp'].concat(gypArgs), { cwd: path.join(__dirname, '..'), stdio: 'inherit' });
process.exit(r.status === 0 ? 0 : 1);
