#!/usr/bin/env node
// `npm test`: the host preflight (scripts/preflight.cjs: as root, installs the Debian packages the
// end-to-end tests need; otherwise says once what is skipped and why), type-check, build the CLI bundle
// the tests run, then the ava suite (TAP), ending with the skipped tests and their reasons, then one line
// "N passed, N failed" (also N skipped when any). Exit status 0 only if nothing failed.
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

step(process.execPath, [path.join(root, 'scripts', 'preflight.cjs'), 'test']);
step(bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
step(process.execPath, [path.join(root, 'scripts', 'build.cjs')]);

// Two ava runs: the unit tests (files in parallel), then the end-to-end tests one file at a time — on
// this 2-CPU machine two instances forwarding real traffic at once would measure each other.
// Extra arguments make one run of what they name.
const extra = process.argv.slice(2);
const runs = extra.length > 0
  ? [extra]
  : [['test/**/*.test.ts', '!test/e2e/**'], ['--concurrency', '1', 'test/e2e/**/*.test.ts']];
let pass = 0;
let fail = 0;
let skip = 0;
const skipped = [];

function runAva(args) {
  return new Promise((resolve) => {
    const ava = spawn(bin('ava'), ['--tap', ...args], { cwd: root, stdio: ['inherit', 'pipe', 'inherit'] });
    let buf = '';
    let p = 0;
    let f = 0;
    let k = 0;
    ava.stdout.on('data', (d) => {
      process.stdout.write(d);
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let m;
        if ((m = /^# pass (\d+)/.exec(line))) p = +m[1];
        else if ((m = /^# fail (\d+)/.exec(line))) f = +m[1];
        else if ((m = /^# skip (\d+)/.exec(line))) k = +m[1];
        else if ((m = /^ok \d+ - (.*) # SKIP\s*$/.exec(line))) skipped.push(m[1]);
      }
    });
    ava.on('close', (code) => {
      if (code !== 0 && f === 0) f = 1; // a crash or an uncaught exception outside a test
      pass += p;
      fail += f;
      skip += k;
      resolve();
    });
  });
}

(async () => {
  for (const args of runs) await runAva(args);
  // Once, at the end: which tests did not run here and what each needs (the reason is in its title).
  if (skipped.length > 0) {
    process.stdout.write(`\nSkipped here (${skipped.length}):\n`);
    for (const s of skipped) process.stdout.write(`  ${s}\n`);
  }
  process.stdout.write(`${pass} passed, ${fail} failed${skip ? `, ${skip} skipped` : ''}\n`);
  process.exit(fail === 0 ? 0 : 1);
})();
