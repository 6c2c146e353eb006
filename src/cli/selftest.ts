/**
 * `vrouter-emu selftest [--json]`: what a platform team runs on a box (the last provisioning step of
 * every machine of the Vagrant matrix, so `vagrant up`'s exit status is the box's verdict): the platform
 * check with its kernel probes, a compute node of two namespace VMs started for real with a ping through
 * the flow engine and its ICMP pair in `flow -l`, and a short replay of the bundled capture.
 * Exit status 0 when every check passed, 1 when one failed.
 * @module
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import { UserError } from '../errors';
import { packageRoot } from '../lib/package-root';
import { platformReport, PlatformReport } from './platform';
import { Parsed } from './args';

export const SELFTEST_USAGE = 'sudo vrouter-emu selftest [--json]';
export const SELFTEST_OPTS = { '--json': {} };

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface SelftestReport {
  ok: boolean;
  platform: { profile: string; verdict: string; why: string; distro: string; release: string; kernel: string };
  node: string;
  checks: Check[];
}

const BIN = (): string => path.join(packageRoot(), 'bin', 'vrouter-emu.cjs');

function tool(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN(), ...args], { encoding: 'utf8', timeout: 60000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Start a node of two VMs, ping across, read flow -l, stop it; nothing may be left behind. */
async function forwarding(): Promise<Check[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-selftest-'));
  const socket = path.join(dir, 'vrouter.sock');
  const topo = path.join(dir, 'topology.json');
  const tag = `st${process.pid % 10000}`;
  fs.writeFileSync(topo, JSON.stringify({
    networks: [{ name: 'selftest', subnet: '10.250.1.0/24', gateway: '10.250.1.1' }],
    vms: [{ name: `${tag}a`, ip: '10.250.1.3', network: 'selftest' }, { name: `${tag}b`, ip: '10.250.1.4', network: 'selftest' }],
  }));
  const checks: Check[] = [];
  let out = '';
  const proc: ChildProcess = spawn(process.execPath, [BIN(), 'start', '--topology', topo, '--socket', socket, '--allow-unsupported-platform'], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  try {
    const ready = await Promise.race([
      new Promise<boolean>((r) => {
        const t = setInterval(() => {
          if (out.includes('Stop with Ctrl-C')) {
            clearInterval(t);
            r(true);
          }
        }, 100);
        void exited.then(() => {
          clearInterval(t);
          r(false);
        });
      }),
      // 90 s: inside a Vagrant box under TCG the start (addon load, netlink, worker) is slow.
      new Promise<boolean>((r) => setTimeout(() => r(false), 90000)),
    ]);
    checks.push({ name: 'start', ok: ready, detail: ready ? 'a compute node with two namespace VMs came up' : `did not come up: ${out.trim().split('\n').pop() ?? ''}` });
    if (!ready) return checks;
    const ping = spawnSync('ip', ['netns', 'exec', `vm-${tag}a`, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '10.250.1.4'], { encoding: 'utf8', timeout: 20000 });
    const got = /(\d+) received/.exec(ping.stdout ?? '')?.[1] ?? '0';
    checks.push({ name: 'ping through the flow engine', ok: ping.status === 0, detail: `${got} of 3 echo replies` });
    const fl = tool(['flow', '-l', '--socket', socket]);
    const pair = /10\.250\.1\.3:\d+ +10\.250\.1\.4:0 +1 \(1\)\n\t\(K\(nh\):\d+, Action:F/.test(fl.stdout) && /10\.250\.1\.4:\d+ +10\.250\.1\.3:0 +1 \(1\)/.test(fl.stdout);
    checks.push({ name: 'flow -l', ok: fl.status === 0 && pair, detail: pair ? 'the ICMP pair, action Forward' : `no ICMP pair in flow -l (${fl.stderr.trim() || 'listing without it'})` });
  } finally {
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
    const code = await exited;
    clearTimeout(t);
    const left = [`vm-${tag}a`, `vm-${tag}b`].filter((n) => fs.existsSync(`/run/netns/${n}`));
    checks.push({ name: 'clean stop', ok: code === 0 && left.length === 0, detail: left.length ? `left behind: ${left.join(', ')}` : `exit ${code}, namespaces removed` });
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return checks;
}

function replay(): Check {
  const root = packageRoot();
  const r = tool(['replay', path.join(root, 'examples', 'demo.pcap'), '--params', path.join(root, 'module-params', 'small.conf')]);
  const m = /forwarded (\d+), dropped (\d+)/.exec(r.stdout);
  const ok = r.status === 0 && m !== null && Number(m[1]) > 0 && m[2] === '0';
  return { name: 'replay', ok, detail: m ? `examples/demo.pcap: forwarded ${m[1]}, dropped ${m[2]}` : `failed: ${r.stderr.trim()}` };
}

export async function selftest(): Promise<SelftestReport> {
  const pr: PlatformReport = await platformReport('/');
  const checks: Check[] = [{ name: 'platform', ok: pr.verdict !== 'unsupported', detail: `${pr.verdict}: ${pr.why}` }];
  const major = Number(process.versions.node.split('.')[0]);
  checks.push({ name: 'Node runtime', ok: major >= 16, detail: `Node ${process.versions.node}${major >= 16 ? '' : ': the emulator needs 16 or later'}` });
  for (const p of pr.probes ?? []) checks.push({ name: `probe: ${p.name}`, ok: p.ok, detail: p.detail });
  const canRun = (pr.probes ?? []).every((p) => p.ok);
  if (canRun) checks.push(...(await forwarding()));
  else checks.push({ name: 'start', ok: false, detail: 'not tried: a probe failed' });
  checks.push(replay());
  return {
    ok: checks.every((c) => c.ok),
    platform: { profile: pr.profile?.id ?? 'none', verdict: pr.verdict, why: pr.why, distro: pr.os.distro, release: pr.os.release, kernel: pr.os.kernel },
    node: process.versions.node,
    checks,
  };
}

export async function cmdSelftest(p: Parsed): Promise<number> {
  if (p.positional.length > 0) throw new UserError(`usage: ${SELFTEST_USAGE}`);
  if (process.getuid?.() !== 0) throw new UserError('selftest needs root (it starts a compute node with namespaces and TAP devices); run it with sudo');
  const r = await selftest();
  if (p.flags.has('--json')) {
    process.stdout.write(JSON.stringify(r) + '\n');
  } else {
    process.stdout.write(`selftest on ${r.platform.distro} ${r.platform.release}, kernel ${r.platform.kernel}, Node ${r.node}: profile ${r.platform.profile}, ${r.platform.verdict}\n`);
    for (const c of r.checks) process.stdout.write(`  ${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(28)} ${c.detail}\n`);
    process.stdout.write(r.ok ? 'selftest passed\n' : 'selftest FAILED\n');
  }
  return r.ok ? 0 : 1;
}
