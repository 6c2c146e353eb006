#!/usr/bin/env node
// What the README's two commands need from the host, checked before they run (ES5-safe CommonJS, no
// dependencies: it runs before anything is built).
//
//   node scripts/preflight.cjs test    (npm test)   the addon's toolchain and the end-to-end tests' tools
//   node scripts/preflight.cjs start   (npm start)  the addon and what the demo runs (ip, ping)
//   node scripts/preflight.cjs packages [build|tools|all]   the Debian package names, one line (.ci/run)
//
// The list is scripts/system-deps.json, the only one: .ci/run installs from it too. As root on a host
// with apt-get, missing packages are installed (the line says which); otherwise `test` says once which
// tools are missing and which package each comes from (the tests that need them skip, see
// test/helpers/requires.ts), and `start` prints one line naming the packages and exits 2.
// Commands are looked up on PATH, so the fresh-machine proof in .ci/run can hide them.
'use strict';
var fs = require('fs');
var path = require('path');
var cp = require('child_process');

var root = path.join(__dirname, '..');
var deps = JSON.parse(fs.readFileSync(path.join(__dirname, 'system-deps.json'), 'utf8'));
var ADDON = path.join(root, 'build', 'Release', 'vrouter_native.node');

function which(cmd) {
  // An absolute path names a file a package installs (not a command on PATH).
  if (cmd.charAt(0) === '/') return fs.existsSync(cmd) ? cmd : null;
  var dirs = (process.env.PATH || '').split(':');
  for (var i = 0; i < dirs.length; i++) {
    if (!dirs[i]) continue;
    var f = path.join(dirs[i], cmd);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      if (fs.statSync(f).isFile()) return f;
    } catch (e) {
      // not here
    }
  }
  return null;
}

function missing(entries) {
  return entries.filter(function (e) { return !which(e.command); });
}

function packagesOf(entries) {
  var seen = {};
  var out = [];
  entries.forEach(function (e) {
    if (!seen[e.package]) { seen[e.package] = true; out.push(e.package); }
  });
  return out;
}

var isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
var canApt = isRoot && which('apt-get') !== null && which('dpkg-query') !== null;

function say(line) {
  process.stderr.write('vrouter-emu: ' + line + '\n');
}

/** apt-get install the packages (as root). @returns true when apt-get succeeded. */
function aptInstall(pkgs, why) {
  say('installing the Debian packages ' + why + ': ' + pkgs.join(' ') +
    ' (apt-get install -y --no-install-recommends)');
  var env = Object.assign({}, process.env, { DEBIAN_FRONTEND: 'noninteractive' });
  // apt's own output goes to stderr, so that a test runner's stdout stays the test report.
  var opts = { stdio: ['ignore', 2, 2], env: env };
  var u = cp.spawnSync('apt-get', ['update', '-q'], opts);
  var r = u.status === 0 ? cp.spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends'].concat(pkgs), opts) : u;
  if (r.status !== 0) {
    say('apt-get failed (exit ' + r.status + '); install them by hand: apt-get install -y ' + pkgs.join(' '));
    return false;
  }
  return true;
}

/** Build the C addon when it is missing and the toolchain is there. @returns true when it exists. */
function ensureAddon() {
  if (fs.existsSync(ADDON)) return true;
  if (missing(deps.build).length > 0) return false;
  say('building the C addon (node-gyp rebuild)');
  var gyp = cp.spawnSync(process.execPath, [path.join(__dirname, 'build-addon.cjs')], { cwd: root, stdio: ['ignore', 2, 2] });
  return gyp.status === 0 && fs.existsSync(ADDON);
}

function toolchainLine(m) {
  var pkgs = packagesOf(m);
  return 'the C addon (build/Release/vrouter_native.node) cannot be built: ' +
    m.map(function (e) { return e.command; }).join(', ') + ' not found; install the Debian packages ' +
    pkgs.join(' ') + ' (sudo apt-get install -y ' + pkgs.join(' ') + '), then run npm rebuild';
}

function preflightTest() {
  var mb = missing(deps.build);
  var mt = missing(deps.tools);
  if (mb.length + mt.length > 0 && canApt) {
    aptInstall(packagesOf(mb.concat(mt)), 'the build and the end-to-end tests need');
    mb = missing(deps.build);
    mt = missing(deps.tools);
  }
  if (!ensureAddon()) say(toolchainLine(mb.length > 0 ? mb : deps.build) + '; the tests that need it fail');
  if (!isRoot) {
    say('not root: the end-to-end tests (namespaces, TAP devices) are skipped; run `sudo npm test` to run them');
  }
  if (mt.length > 0) {
    var pk = packagesOf(mt);
    say('missing test tools: ' + mt.map(function (e) { return e.command + ' (' + e.package + ')'; }).join(', ') +
      '; the tests that need them are skipped' + (process.env.CI === 'true' ? ' (in CI: they fail)' : '') +
      '; install them with: sudo apt-get install -y ' + pk.join(' '));
  }
  return 0;
}

function preflightStart() {
  var mb = missing(deps.build);
  var need = deps.tools.filter(function (e) { return e.command === 'ip' || e.command === 'ping'; });
  var mt = missing(need);
  if (!fs.existsSync(ADDON) && mb.length > 0) {
    if (canApt) {
      aptInstall(packagesOf(mb), 'the C addon needs');
      mb = missing(deps.build);
    }
    if (mb.length > 0) {
      say(toolchainLine(mb));
      return 2;
    }
  }
  if (!ensureAddon()) {
    say('the C addon (build/Release/vrouter_native.node) did not build; see node-gyp\'s output above, then run npm rebuild');
    return 2;
  }
  if (mt.length > 0 && canApt) {
    aptInstall(packagesOf(mt), 'the demo runs');
    mt = missing(need);
  }
  if (mt.length > 0) {
    var pk = packagesOf(mt);
    say('the demo needs ' + mt.map(function (e) { return e.command; }).join(' and ') + ': install the Debian packages ' +
      pk.join(' ') + ' (sudo apt-get install -y ' + pk.join(' ') + ')');
    return 2;
  }
  return 0;
}

function main(argv) {
  var verb = argv[0];
  if (verb === 'test') return preflightTest();
  if (verb === 'start') return preflightStart();
  if (verb === 'packages') {
    var which_ = argv[1] || 'all';
    var list = which_ === 'build' ? deps.build : which_ === 'tools' ? deps.tools : deps.build.concat(deps.tools);
    process.stdout.write(packagesOf(list).join(' ') + '\n');
    return 0;
  }
  process.stderr.write('usage: node scripts/preflight.cjs test|start|packages [build|tools|all]\n');
  return 2;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));
module.exports = { which: which, missing: missing, packagesOf: packagesOf, deps: deps };
