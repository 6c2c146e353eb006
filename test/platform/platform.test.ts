/**
 * Platform identification and verdicts: fixture trees of each 2.22 platform's release files (including
 * the three systeminformation misreads: CentOS 6 without os-release, CentOS 7's os-release without the
 * minor release, Ubuntu 12.04's swapped PRETTY_NAME), `platform check` on them and on this host, and
 * `start` refusing an unsupported platform.
 */
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { parseKeyValues, readOsRelease } from '../../src/platform/release';
import { loadProfiles, verdictFor } from '../../src/platform/profiles';
import { e2e } from '../helpers/requires';

const FIX = path.join(__dirname, '..', 'fixtures', 'platforms');
const BIN = path.join(__dirname, '..', '..', 'bin', 'vrouter-emu.cjs');

const cases: [string, string, string, string, string | undefined][] = [
  // fixture, distro, release, verdict, profile
  ['ubuntu-14.04.2', 'ubuntu', '14.04.2', 'supported', 'ubuntu-14.04.2'],
  ['ubuntu-14.04.2-hwe', 'ubuntu', '14.04.2', 'compatible', 'ubuntu-14.04.2'],
  ['ubuntu-12.04.4', 'ubuntu', '12.04.4', 'supported', 'ubuntu-12.04.4'],
  ['centos-6.5', 'centos', '6.5', 'supported', 'centos-6.5'],
  ['centos-6.5-rdo', 'centos', '6.5', 'supported', 'centos-6.5'],
  ['centos-6.5-431', 'centos', '6.5', 'compatible', 'centos-6.5'],
  ['centos-7.1', 'centos', '7.1', 'supported', 'centos-7.1'],
  ['rhel-7.1', 'rhel', '7.1', 'compatible', 'rhel-7-rhosp-5'],
  ['debian-12', 'debian', '12.7', 'development', 'development'],
  ['centos-5', 'centos', '5.11', 'unsupported', undefined],
];

test('every fixture gets its distro, release, profile and verdict', (t) => {
  const profiles = loadProfiles();
  t.deepEqual(profiles.map((p) => p.id).sort(), ['centos-6.5', 'centos-7.1', 'development', 'rhel-7-rhosp-5', 'ubuntu-12.04.4', 'ubuntu-14.04.2']);
  for (const [fix, distro, release, verdict, profile] of cases) {
    const rel = readOsRelease(path.join(FIX, fix));
    const v = verdictFor(rel, profiles);
    t.deepEqual([rel.distro, rel.release, v.verdict, v.profile?.id], [distro, release, verdict, profile], fix);
  }
});

test('what the verdicts say: the kernel that differs, why unsupported, the 6.4 kernel note', (t) => {
  const profiles = loadProfiles();
  const why = (fix: string): string => verdictFor(readOsRelease(path.join(FIX, fix)), profiles).why;
  t.regex(why('ubuntu-14.04.2-hwe'), /kernel 3\.16\.0-30-generic is not the 3\.13\.0-40-generic the release notes name/);
  t.regex(why('rhel-7.1'), /3\.10\.0-229\.el7\.x86_64 is not the 3\.10\.0-299\.el7\.x86_64/);
  t.regex(why('centos-5'), /CentOS release 5\.11 \(Final\) with kernel 2\.6\.18-398\.el5 is not a Contrail 2\.22 platform .* older than the 3\.10 the emulator needs/);
  const c65 = profiles.find((p) => p.id === 'centos-6.5');
  t.regex(c65?.notes.join(' ') ?? '', /2\.6\.32-358 is the CentOS\/RHEL 6\.4 GA kernel/);
  t.regex(profiles.find((p) => p.id === 'rhel-7-rhosp-5')?.notes.join(' ') ?? '', /matches no RHEL release/);
  t.regex(profiles.find((p) => p.id === 'ubuntu-14.04.2')?.vcenter ?? '', /5\.5/);
});

test('os-release syntax: quotes, escapes, comments', (t) => {
  const m = parseKeyValues('# c\nNAME="CentOS Linux"\nID=centos\nX=\'a b\'\nY="say \\"hi\\""\nnot a line\n');
  t.deepEqual(Object.fromEntries(m), { NAME: 'CentOS Linux', ID: 'centos', X: 'a b', Y: 'say "hi"' });
});

test('platform check --root: JSON report, exit 0, or 1 for an unsupported platform; no probes for a fixture', (t) => {
  const r = spawnSync(process.execPath, [BIN, 'platform', 'check', '--root', path.join(FIX, 'centos-7.1'), '--json'], { encoding: 'utf8' });
  t.is(r.status, 0);
  const j = JSON.parse(r.stdout) as { verdict: string; profile: { id: string; kernels: string[] }; probes?: unknown; os: { sources: string[] } };
  t.is(j.verdict, 'supported');
  t.deepEqual(j.profile.kernels, ['3.10.0-229.el7.x86_64']);
  t.is(j.probes, undefined);
  t.deepEqual(j.os.sources, ['etc/centos-release']);
  const u = spawnSync(process.execPath, [BIN, 'platform', 'check', '--root', path.join(FIX, 'centos-5')], { encoding: 'utf8' });
  t.is(u.status, 1);
  t.regex(u.stdout, /^Verdict: {2}unsupported: /m);
  t.regex(u.stdout, /Probes: {3}not run \(--root/);
  const bad = spawnSync(process.execPath, [BIN, 'platform', 'nope'], { encoding: 'utf8' });
  t.is(bad.status, 2);
});

e2e({ root: true, tools: ['ip'] })('platform check on this host: development, every probe passes, exit 0', (t) => {
  const r = spawnSync(process.execPath, [BIN, 'platform', 'check', '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stdout);
  const j = JSON.parse(r.stdout) as { verdict: string; probes: { name: string; ok: boolean }[]; host: { arch: string; cpus: number } };
  t.is(j.verdict, 'development');
  t.deepEqual(j.probes.filter((p) => !p.ok), []);
  t.deepEqual(j.probes.map((p) => p.name), ['C addon', '/dev/net/tun', 'TUNGETFEATURES', 'CAP_NET_ADMIN', 'network namespaces', 'veth', 'packet sockets']);
  t.is(j.host.arch, 'x64');
  t.true(j.host.cpus >= 1);
});

e2e({ root: true })('start refuses an unsupported platform with one line (nothing created); --allow-unsupported-platform goes on', (t) => {
  // The demo's namespaces (other test files create their own namespaces meanwhile: count only these).
  const demo = (): string[] => (fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : []).filter((n) => n === 'vm-vm1' || n === 'vm-vm2');
  const before = demo();
  const r = spawnSync(process.execPath, [BIN, 'start', '--platform-root', path.join(FIX, 'centos-5'), '--socket', '/tmp/vremu-plat.sock'], { encoding: 'utf8' });
  t.is(r.status, 2);
  t.regex(r.stderr, /^vrouter-emu: unsupported platform: CentOS release 5\.11 .*; see vrouter-emu platform check, or start anyway with --allow-unsupported-platform\n$/);
  t.deepEqual(demo(), before);
  t.false(fs.existsSync('/tmp/vremu-plat.sock'), 'no control socket either');
  // Allowed: the next problem (a missing topology) is the one reported.
  const a = spawnSync(process.execPath, [BIN, 'start', '--platform-root', path.join(FIX, 'centos-5'), '--allow-unsupported-platform', '--topology', '/nonexistent.json', '--socket', '/tmp/vremu-plat.sock'], { encoding: 'utf8' });
  t.is(a.status, 2);
  t.regex(a.stdout, /platform unsupported: /);
  t.regex(a.stderr, /nonexistent\.json: no such topology file/);
});
