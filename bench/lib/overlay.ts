/**
 * What bench:overlay builds: an underlay (a Linux bridge in a fabric namespace, one namespace per compute
 * node with its fabric NIC eth1 on the bridge, up, no address — as test/helpers/underlay.ts does, with a
 * settable MTU), `vrouter-emu start --node` processes run inside the node namespaces, and the baseline a
 * user would otherwise build: two host namespaces on the same kind of underlay, each with a kernel VXLAN
 * device (VNI 1, UDP 4789) in a bridge with a veth to a "VM" namespace.
 *
 * Every name starts with the caller's prefix; `removeLeftovers` deletes a crashed run's namespaces and
 * stops the node processes it recorded in its pid file.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import { BIN, sh, sleep } from './emulator';

export function tryDo(cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore' });
}

/** Write `value` to a sysfs file as seen from inside `ns` (ip netns exec remounts /sys for it). */
export function sysfsIn(ns: string, file: string, value: string): void {
  sh('ip', ['netns', 'exec', ns, 'sh', '-c', `echo ${value} > ${file}`]);
}

export function netnsList(): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0]).filter((l) => l !== '');
}

/** The pid file where the running node processes are recorded (for a crashed run's cleanup). */
export function pidFile(prefix: string): string {
  return path.join(os.tmpdir(), `${prefix}bench.pids`);
}

/** Stop the node processes a previous run recorded (only ours: their command line names our topology dir), delete namespaces matching `re`. */
export async function removeLeftovers(prefix: string, re: RegExp): Promise<string[]> {
  const gone: string[] = [];
  const pf = pidFile(prefix);
  if (fs.existsSync(pf)) {
    for (const line of fs.readFileSync(pf, 'utf8').split('\n').filter((l) => l !== '')) {
      const pid = Number(line);
      let cmd = '';
      try {
        cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (!cmd.includes('vrouter-emu') || !cmd.includes(`${prefix}bench-`)) continue;
      process.kill(pid, 'SIGTERM');
      for (let k = 0; k < 100 && fs.existsSync(`/proc/${pid}`); k++) await sleep(100);
      gone.push(`pid ${pid}`);
    }
    fs.rmSync(pf, { force: true });
  }
  for (const ns of netnsList().filter((n) => re.test(n))) {
    tryDo('ip', ['netns', 'del', ns]);
    gone.push(ns);
  }
  return gone;
}

export interface Fabric {
  fabric: string;
  hosts: string[];
  down(): void;
}

/** `${p}fab` with bridge br-fabric; `${p}n1`… each with eth1 (veth f1… on the bridge), all with `mtu`. */
export function fabricUp(p: string, nodes: number, mtu: number): Fabric {
  const fabric = `${p}fab`;
  const hosts = Array.from({ length: nodes }, (_, k) => `${p}n${k + 1}`);
  const all = [fabric, ...hosts];
  for (const ns of all) tryDo('ip', ['netns', 'del', ns]);
  sh('ip', ['netns', 'add', fabric]);
  sh('ip', ['-n', fabric, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', fabric, 'link', 'add', 'br-fabric', 'mtu', String(mtu), 'type', 'bridge']);
  sh('ip', ['-n', fabric, 'link', 'set', 'br-fabric', 'up']);
  hosts.forEach((ns, k) => {
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', fabric, 'link', 'add', `f${k + 1}`, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth1', 'netns', ns, 'mtu', String(mtu)]);
    sh('ip', ['-n', fabric, 'link', 'set', `f${k + 1}`, 'master', 'br-fabric', 'up']);
    // As the testbed does: no IPv6 on the fabric NIC (no router solicitations or DAD on the fabric).
    sysfsIn(ns, '/proc/sys/net/ipv6/conf/eth1/disable_ipv6', '1');
    sh('ip', ['-n', ns, 'link', 'set', 'eth1', 'up']);
  });
  return { fabric, hosts, down: () => all.forEach((ns) => tryDo('ip', ['netns', 'del', ns])) };
}

export interface KernelVm { ns: string; ip: string; mac: string }

export interface KernelOverlay {
  fabric: Fabric;
  vms: KernelVm[];
  down(): void;
}

/**
 * The kernel's overlay on a fabric of its own (`${p}fab`, hosts `${p}n1`, `${p}n2` with `hostIps` on eth1):
 * in each host, vxlan1 (VNI 1, dstport 4789, local = its address, nolearning, MTU 1500) and a veth `vmh`
 * to the VM namespace `${p}v1`/`${p}v2` (eth0: the VM's address and MAC) in bridge br0; static fdb
 * entries: the other host for broadcast (ARP) and the other VM's MAC. RPS: `vmh` (where the sender's
 * frames enter the host) is served by `rps[0]`'s CPU mask, the receiving host's eth1 by `rps[1]`'s —
 * the kernel's forwarding runs on the CPUs the emulator's datapath threads are pinned to.
 */
export function kernelOverlayUp(p: string, mtu: number, hostIps: string[], prefixLen: number, vms: { ip: string; mac: string }[], rps: [string, string]): KernelOverlay {
  const fabric = fabricUp(p, 2, mtu);
  const out: KernelVm[] = [];
  const vmNs = [`${p}v1`, `${p}v2`];
  for (const ns of vmNs) tryDo('ip', ['netns', 'del', ns]);
  for (let k = 0; k < 2; k++) {
    const h = fabric.hosts[k];
    const other = hostIps[1 - k];
    sh('ip', ['-n', h, 'addr', 'add', `${hostIps[k]}/${prefixLen}`, 'dev', 'eth1']);
    sh('ip', ['-n', h, 'link', 'add', 'vxlan1', 'mtu', '1500', 'type', 'vxlan', 'id', '1', 'local', hostIps[k], 'dstport', '4789', 'nolearning']);
    sh('ip', ['-n', h, 'link', 'add', 'br0', 'mtu', '1500', 'type', 'bridge']);
    sh('ip', ['-n', h, 'link', 'set', 'vxlan1', 'master', 'br0', 'up']);
    const ns = vmNs[k];
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', h, 'link', 'add', 'vmh', 'mtu', '1500', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns, 'mtu', '1500']);
    sh('ip', ['-n', h, 'link', 'set', 'vmh', 'master', 'br0', 'up']);
    sh('ip', ['-n', h, 'link', 'set', 'br0', 'up']);
    sh('bridge', ['-n', h, 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vxlan1', 'dst', other]);
    sh('bridge', ['-n', h, 'fdb', 'append', vms[1 - k].mac, 'dev', 'vxlan1', 'dst', other]);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'address', vms[k].mac]);
    sh('ip', ['-n', ns, 'addr', 'add', `${vms[k].ip}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    out.push({ ns, ip: vms[k].ip, mac: vms[k].mac });
  }
  sysfsIn(fabric.hosts[0], '/sys/class/net/vmh/queues/rx-0/rps_cpus', rps[0]);
  sysfsIn(fabric.hosts[1], '/sys/class/net/eth1/queues/rx-0/rps_cpus', rps[1]);
  return {
    fabric,
    vms: out,
    down: () => {
      for (const ns of vmNs) tryDo('ip', ['netns', 'del', ns]);
      fabric.down();
    },
  };
}

export interface Node {
  name: string;
  socket: string;
  proc: ChildProcess;
  out: () => string;
  tool: (...args: string[]) => string;
  stop: () => Promise<void>;
}

/**
 * `vrouter-emu start --topology T --node NAME --no-demo-traffic` (name null: a single node) inside `ns`, with its own socket in `dir`
 * (whose name carries the prefix: leftover cleanup recognises its processes by it); `nodeArgs` go before
 * the script (e.g. --cpu-prof), `args` after. Resolves when the node says it is ready.
 */
export async function startNode(dir: string, topo: string, name: string | null, ns: string, args: string[], nodeArgs: string[], pids: string): Promise<Node> {
  const socket = path.join(dir, `${name ?? 'single'}.sock`);
  const which = name === null ? [] : ['--node', name];
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, ...nodeArgs, BIN, 'start', '--topology', topo, ...which, '--socket', socket, '--no-demo-traffic', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  fs.appendFileSync(pids, `${proc.pid}\n`);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      await exited;
    }
  };
  for (let k = 0; k < 160 && !out.includes('Stop with Ctrl-C') && proc.exitCode === null; k++) await sleep(250);
  if (!out.includes('Stop with Ctrl-C')) {
    await stop();
    throw new Error(`node ${name} did not start in ${ns}:\n${out}`);
  }
  return { name: name ?? 'single', socket, proc, out: () => out, tool: (...a) => sh(process.execPath, [BIN, ...a, '--socket', socket]), stop };
}
