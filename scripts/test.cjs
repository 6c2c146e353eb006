#!/usr/bin/env node
// `npm test`: type-check, build the CLI bundle the tests run, then the ava suite (TAP), ending with one
// line "N passed, N failed" (also N skipped when any). Exit status 0 only if nothing failed.
// Extra arguments go to ava (e.g. `npm test -- test/dp/flow.test.ts`).
'use strict';
const { spawnSync, spawn } = require('child_process');
const path = require('path');

const root = path.join(__dirname, '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

function step(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) {
    process.stdout.write(`0 passed, 1 failed (${path.basename(cmd)} ${args.join(' ')})\n`);
    process.exit(1);
  }
}

step(bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
step(process.execPath, [path.join(root, 'scripts', 'build.cjs')]);

const ava = spawn(bin('ava'), ['--tap', ...process.argv.slice(2)], { cwd: root, stdio: ['inherit', 'pipe', 'inherit'] });
let pass = 0;
let fail = 0;
let skip = 0;
let buf = '';
ava.stdout.on('data', (d) => {
  process.stdout.write(d);
  buf += d.toString();
  let nl;
  while ((nl = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    let m;
    if ((m = /^# pass (\d+)/.exec(line))) pass = +m[1];
    else if ((m = /^# fail (\d+)/.exec(line))) fail = +m[1];
    else if ((m = /^# skip (\d+)/.exec(line))) skip = +m[1];
  }
});
ava.on('close', (code) => {
  if (code !== 0 && fail === 0) fail = 1; // a crash or an uncaught exception outside a test
  process.stdout.write(`${pass} passed, ${fail} failed${skip ? `, ${skip} skipped` : ''}\n`);
  process.exit(fail === 0 && code === 0 ? 0 : 1);
});
