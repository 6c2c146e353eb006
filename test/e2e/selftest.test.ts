/**
 * `vrouter-emu selftest`, as each box of the Vagrant matrix runs it: the platform check, a compute node
 * started for real with a ping through the flow engine, a replay; one JSON report, exit 0.
 */
import { spawnSync } from 'child_process';
import { BIN } from '../helpers/instance';
import { e2e } from '../helpers/requires';

e2e({ root: true, tools: ['ip', 'ping'] })('selftest --json on this host: every check passes, exit 0', (t) => {
  const r = spawnSync(process.execPath, [BIN, 'selftest', '--json'], { encoding: 'utf8', timeout: 120000 });
  t.is(r.status, 0, r.stdout + r.stderr);
  const j = JSON.parse(r.stdout) as { ok: boolean; platform: { profile: string; verdict: string }; checks: { name: string; ok: boolean; detail: string }[] };
  t.true(j.ok);
  t.deepEqual([j.platform.profile, j.platform.verdict], ['development', 'development']);
  const names = j.checks.map((c) => c.name);
  for (const n of ['platform', 'Node runtime', 'probe: TUNGETFEATURES', 'start', 'ping through the flow engine', 'flow -l', 'clean stop', 'replay']) t.true(names.includes(n), n);
  t.regex(j.checks.find((c) => c.name === 'ping through the flow engine')?.detail ?? '', /^3 of 3 echo replies$/);
});

e2e({ root: true, tools: ['setpriv'] })('selftest without root: one line, exit 2', (t) => {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, 'selftest'], { encoding: 'utf8' });
  t.is(r.status, 2);
  t.regex(r.stderr, /^vrouter-emu: selftest needs root .*; run it with sudo\n$/);
});
