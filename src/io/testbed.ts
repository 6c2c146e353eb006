/**
 * The OS side of the testbed: a network namespace per VM whose eth0 is the kernel side of a TAP the
 * emulator holds, configured through rtnetlink; and the record of everything created, so that a clean
 * exit removes it and the next start can remove what a crashed run left behind.
 * @module
 */
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { Worker } from 'worker_threads';
import { UserError } from '../errors';
import { distFile } from '../lib/package-root';
import type { HostSpec, Network } from '../lib/topology-types';
import { loadNative, type PacketIo } from './native';
import { VIF_IO_PACKET, VIF_IO_TAP } from './ring';
import type { NetnsJob } from './netns-worker';

export const RUN_DIR = '/run/vrouter-emu';

/** What one running instance created or changed (written to its state file as it goes). */
export interface TestbedState {
  pid: number;
  socket: string;
  namespaces: string[];
  taps: string[];
  /** qemu processes of the guests. */
  guests?: number[];
  /** Interfaces attached by packet socket, and how to leave them as they were. */
  attached?: AttachedIf[];
}

/** An interface the emulator attached to: what it changed, so that detaching restores it. */
export interface AttachedIf {
  ifname: string;
  ifindex: number;
  /** Whether it was up before (the emulator brings it up). */
  wasUp: boolean;
  /** /proc/sys/net/ipv6/conf/IF/disable_ipv6 before ('' when the host has no IPv6). */
  ipv6Was: string;
  /** The fabric NIC's IPv4 addresses (CIDR) that moved to vhost0, put back on detach. */
  addrs?: string[];
  /** /proc/sys files changed on the fabric NIC and their values before. */
  sysctls?: [string, string][];
}

/**
 * Every instance registers what it creates under one directory, whatever its --socket, so that the next
 * start finds a crashed run's leftovers even when that run used another socket (a test's private one).
 */
export const INSTANCES_DIR = `${RUN_DIR}/instances`;

export function statePath(pid: number): string {
  return `${INSTANCES_DIR}/${pid}.json`;
}

/**
 * The mount namespace named network namespaces must be made in, when it is not this process's: a node
 * started with `ip netns exec` (as the testbed starts each node) has a private mount namespace, where
 * `ip netns add` would bind its VMs' namespaces out of everyone else's sight and `ip netns del` would
 * not remove them. Its starter's (the parent's) mount namespace is the host's view: held open from the
 * start (captureHostMountNs), as the parent may be gone by the time the namespaces are deleted.
 */
let hostMntFd = -1;

/** Hold the starter's mount namespace when it is not this process's (see ip()). Idempotent. */
export function captureHostMountNs(): void {
  if (hostMntFd >= 0) return;
  try {
    const parent = `/proc/${process.ppid}/ns/mnt`;
    if (fs.readlinkSync(parent) !== fs.readlinkSync('/proc/self/ns/mnt')) hostMntFd = fs.openSync(parent, 'r');
  } catch {
    // no /proc, or the parent is gone: this process's own view
  }
}

function ip(args: string[]): string {
  if (hostMntFd >= 0 && args[0] === 'netns' && (args[1] === 'add' || args[1] === 'del')) {
    // nsenter gets the held namespace as its fd 3.
    return execFileSync('nsenter', ['--mount=/proc/self/fd/3', '--', 'ip', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', hostMntFd] });
  }
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `ip …` for a VM's set-up: a failure is a UserError naming the VM and the command. */
function ipFor(vm: string, args: string[]): string {
  try {
    return ip(args);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    const why = err.code === 'ENOENT' ? 'the ip command (iproute2) is not installed' : (err.stderr ?? err.message).trim();
    throw new UserError(`setting up VM ${vm}: ip ${args.join(' ')} failed: ${why}`);
  }
}

export function nsExists(name: string): boolean {
  return fs.existsSync(`/run/netns/${name}`);
}

export function linkExists(name: string): boolean {
  return fs.existsSync(`/sys/class/net/${name}`);
}

/** Whether `pid` is a live vrouter-emu (not gone, not a zombie, not a reused pid). */
function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false;
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('vrouter-emu');
  } catch {
    return false;
  }
}

/** Whether `pid` is a live qemu process (not a reused pid). */
function guestAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('qemu-system');
  } catch {
    return false;
  }
}

function ifUp(ifname: string): boolean {
  try {
    return (parseInt(fs.readFileSync(`/sys/class/net/${ifname}/flags`, 'utf8'), 16) & 1) === 1;
  } catch {
    return false;
  }
}

function ipv6Path(ifname: string): string {
  return `/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`;
}

/** Leave an attached interface as it was found (best effort: it may be going away). */
export function restoreIf(a: AttachedIf): void {
  try {
    if (a.ipv6Was !== '') fs.writeFileSync(ipv6Path(a.ifname), a.ipv6Was);
    for (const [f, v] of a.sysctls ?? []) fs.writeFileSync(f, v);
    for (const cidr of a.addrs ?? []) ip(['addr', 'replace', cidr, 'dev', a.ifname]);
    if (!a.wasUp) ip(['link', 'set', a.ifname, 'down']);
  } catch {
    // gone meanwhile
  }
}

/** The IPv4 addresses (CIDR) of an interface. */
function ifAddrs(ifname: string): string[] {
  try {
    const out = ip(['-4', '-o', 'addr', 'show', 'dev', ifname]);
    return [...out.matchAll(/\binet (\d+\.\d+\.\d+\.\d+\/\d+)/g)].map((m) => m[1]);
  } catch {
    return [];
  }
}

function sysNum(ifname: string, what: string, dflt: number): number {
  try {
    const v = fs.readFileSync(`/sys/class/net/${ifname}/${what}`, 'utf8').trim();
    if (what === 'duplex') return v === 'full' ? 1 : v === 'half' ? 0 : dflt;
    const n = Number(v);
    return Number.isFinite(n) ? n : dflt;
  } catch {
    return dflt; // a veth reports no speed while down; some drivers none at all
  }
}

/** What the fabric NIC is: its MAC, IP MTU, speed (Mb/s) and duplex (1 full), −1 when unknown. */
export interface FabricNic {
  fd: number;
  mac: Uint8Array;
  mtu: number;
  speed: number;
  duplex: number;
}

/**
 * Attach to an existing interface as the vRouter attaches a vif to a VM's tap: bring it up, disable IPv6
 * on it (the host's own ND/MLD would otherwise reach the VM), open a packet socket bound to it.
 * @throws UserError naming the interface.
 */
export function attachIf(ifname: string, who: string, io: PacketIo = 'ring'): { fd: number; att: AttachedIf } {
  if (!linkExists(ifname)) throw new UserError(`${who}: interface ${ifname} does not exist; start the guest (or create the interface) first`);
  let ifindex = 0;
  try {
    ifindex = Number(fs.readFileSync(`/sys/class/net/${ifname}/ifindex`, 'utf8'));
  } catch {
    // raced with its removal: packetOpen says so
  }
  let ipv6Was = '';
  try {
    ipv6Was = fs.readFileSync(ipv6Path(ifname), 'utf8').trim();
  } catch {
    // no IPv6 on this host
  }
  const att: AttachedIf = { ifname, ifindex, wasUp: ifUp(ifname), ipv6Was };
  try {
    if (ipv6Was !== '') fs.writeFileSync(ipv6Path(ifname), '1');
    ip(['link', 'set', ifname, 'up']);
    return { fd: loadNative().packetOpen(ifname, io).fd, att };
  } catch (e) {
    restoreIf(att);
    const err = e as Error & { stderr?: string };
    throw new UserError(`${who}: cannot attach to ${ifname}: ${(err.stderr ?? err.message).trim()}`);
  }
}

/** The interface's current ifindex, or 0 when it does not exist. */
export function ifIndex(ifname: string): number {
  try {
    return Number(fs.readFileSync(`/sys/class/net/${ifname}/ifindex`, 'utf8'));
  } catch {
    return 0;
  }
}

/** Remove what one dead instance created. @returns one line per object removed or left. */
function cleanInstance(st: TestbedState): string[] {
  const done: string[] = [];
  for (const pid of st.guests ?? []) {
    if (guestAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
        done.push(`stopped guest qemu pid ${pid} left by pid ${st.pid}`);
      } catch {
        done.push(`could not stop guest qemu pid ${pid}; stop it with: kill ${pid}`);
      }
    }
  }
  for (const a of st.attached ?? []) {
    if (linkExists(a.ifname)) {
      restoreIf(a);
      done.push(`restored interface ${a.ifname} left attached by pid ${st.pid}`);
    }
  }
  for (const ns of st.namespaces ?? []) {
    if (nsExists(ns)) {
      try {
        ip(['netns', 'del', ns]);
        done.push(`removed namespace ${ns} left by pid ${st.pid}`);
      } catch (e) {
        done.push(`could not remove namespace ${ns} left by pid ${st.pid} (${(e as Error).message.trim()}); remove it with: ip netns del ${ns}`);
      }
    }
  }
  for (const t of st.taps ?? []) {
    if (linkExists(t)) {
      try {
        ip(['link', 'del', t]);
        done.push(`removed interface ${t} left by pid ${st.pid}`);
      } catch {
        done.push(`could not remove interface ${t} left by pid ${st.pid}; remove it with: ip link del ${t}`);
      }
    }
  }
  if (typeof st.socket === 'string' && fs.existsSync(st.socket)) fs.rmSync(st.socket, { force: true });
  return done;
}

/**
 * Find what earlier runs that did not exit cleanly left behind (state files naming dead pids, whatever
 * socket they used) and remove it. @returns a description of what was removed, one line each.
 * @throws UserError when a live instance uses this socket.
 */
export function cleanLeftovers(socket: string): string[] {
  let files: string[];
  try {
    files = fs.readdirSync(INSTANCES_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const done: string[] = [];
  for (const f of files) {
    const sp = path.join(INSTANCES_DIR, f);
    let st: TestbedState;
    try {
      st = JSON.parse(fs.readFileSync(sp, 'utf8')) as TestbedState;
      if (typeof st.pid !== 'number') throw new Error('no pid');
    } catch {
      fs.rmSync(sp, { force: true });
      done.push(`removed an unreadable state file ${sp}`);
      continue;
    }
    if (st.pid !== process.pid && pidAlive(st.pid)) {
      if (st.socket === socket) {
        throw new UserError(`an instance (pid ${st.pid}) is running with socket ${socket}; stop it, or give another --socket PATH`);
      }
      continue;
    }
    done.push(...cleanInstance(st));
    fs.rmSync(sp, { force: true });
  }
  return done;
}

/** A host interface the testbed made or attached: the fd the datapath reads, and how (VIF_IO_*). */
export interface HostIf {
  host: HostSpec;
  fd: number;
  io: number;
}

/** Creates and removes the OS objects of the testbed. */
export class Testbed {
  readonly state: TestbedState;
  private readonly fds: number[] = [];

  /** @param packetIo how attached interfaces' packet sockets are read (start --packet-io). */
  constructor(readonly socket: string, readonly packetIo: PacketIo = 'ring') {
    this.state = { pid: process.pid, socket, namespaces: [], taps: [], guests: [], attached: [] };
    captureHostMountNs();
    fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o700 });
    fs.mkdirSync(INSTANCES_DIR, { recursive: true, mode: 0o700 });
  }

  save(): void {
    fs.writeFileSync(statePath(this.state.pid), JSON.stringify(this.state) + '\n', { mode: 0o600 });
  }

  /** Check every name before anything is created. @throws UserError naming the first one taken. */
  checkFree(vms: HostSpec[]): void {
    for (const v of vms) {
      if (v.kind === 'attach') {
        if (!linkExists(v.tap)) throw new UserError(`interface ${v.tap} (VM ${v.name}) does not exist; start the guest (or create the interface) first, or remove "attach" from the topology`);
        continue;
      }
      if (v.kind === 'qemu') {
        if (linkExists(v.tap)) throw new UserError(`interface ${v.tap} (VM ${v.name}) already exists; remove it with: ip link del ${v.tap}`);
        continue;
      }
      if (v.nsExisting && !nsExists(v.namespace)) {
        throw new UserError(`namespace ${v.namespace} (VM ${v.name}) does not exist; create it with: ip netns add ${v.namespace}`);
      }
      if (v.nsExisting && fs.existsSync(`/run/netns/${v.namespace}`)) {
        let hasEth0 = false;
        try {
          ip(['-n', v.namespace, 'link', 'show', 'eth0']);
          hasEth0 = true;
        } catch {
          // no eth0 there: good
        }
        if (hasEth0) {
          throw new UserError(`namespace ${v.namespace} (VM ${v.name}) already has an eth0; remove it with: ip -n ${v.namespace} link del eth0`);
        }
      }
      if (!v.nsExisting && nsExists(v.namespace)) {
        throw new UserError(
          `namespace ${v.namespace} (VM ${v.name}) already exists; remove it with: ip netns del ${v.namespace}, or attach the VM to it with "namespace": "${v.namespace}" in a topology`,
        );
      }
      if (linkExists(v.tap)) throw new UserError(`interface ${v.tap} (VM ${v.name}) already exists; remove it with: ip link del ${v.tap}`);
    }
  }

  /** Attach to an interface (recorded, so that teardown or the next start restores it). */
  attach(ifname: string, who: string): number {
    const { fd, att } = attachIf(ifname, who, this.packetIo);
    this.fds.push(fd);
    this.state.attached?.push(att);
    this.save();
    return fd;
  }

  /**
   * Attach vif0/0 to the fabric NIC, as the module takes the physical interface: its IPv4 addresses move
   * to vhost0 (the host's traffic goes through the vRouter from now on), and come back on exit.
   * @throws UserError naming the interface.
   */
  attachFabric(ifname: string, node: string): FabricNic {
    this.checkFabric(ifname, node);
    const addrs = ifAddrs(ifname);
    const fd = this.attach(ifname, `node ${node} (fabric)`);
    const att = this.state.attached?.find((a) => a.ifname === ifname) as AttachedIf;
    att.addrs = addrs;
    // The module's rx handler takes every frame of the NIC; a packet socket only copies them, and the
    // host's stack would still answer what arrives on the NIC for vhost0's address (a second echo
    // reply, ARP replies, ICMP port unreachable for the tunnels). Strict reverse-path filtering drops
    // every IPv4 packet there (the NIC has no routes), arp_ignore 8 every ARP answer; the packet socket
    // sees the frames before either.
    att.sysctls = [];
    for (const [k, v] of [['rp_filter', '1'], ['arp_ignore', '8']]) {
      const f = `/proc/sys/net/ipv4/conf/${ifname}/${k}`;
      try {
        att.sysctls.push([f, fs.readFileSync(f, 'utf8').trim()]);
        fs.writeFileSync(f, v);
      } catch (e) {
        throw new UserError(`node ${node}: cannot set ${f}: ${(e as Error).message}`);
      }
    }
    this.save();
    for (const cidr of addrs) ipFor(`node ${node}`, ['addr', 'del', cidr, 'dev', ifname]);
    const mac = Uint8Array.from(fs.readFileSync(`/sys/class/net/${ifname}/address`, 'utf8').trim().split(':').map((x) => parseInt(x, 16)));
    return { fd, mac, mtu: sysNum(ifname, 'mtu', 1500), speed: sysNum(ifname, 'speed', -1), duplex: sysNum(ifname, 'duplex', -1) };
  }

  /** Check, before anything is created, that the fabric NIC is here and vhost0 is not. @throws UserError */
  checkFabric(ifname: string, node: string): void {
    if (!linkExists(ifname)) {
      throw new UserError(`node ${node}: fabric interface ${ifname} does not exist here; run the node where it does (vrouter-emu testbed starts each node in its namespace), or set nodes[].fabric_interface`);
    }
    if (linkExists('vhost0')) throw new UserError(`node ${node}: an interface vhost0 exists already here; remove it with: ip link del vhost0 (or run the node in its own namespace)`);
  }

  /** vhost0: a TAP in this namespace with the node's fabric address and the NIC's MAC and MTU. @returns its fd. */
  addVhost(node: string, cidr: string, mac: Uint8Array, mtu: number): number {
    if (linkExists('vhost0')) throw new UserError(`node ${node}: an interface vhost0 exists already here; remove it with: ip link del vhost0 (or run the node in its own namespace)`);
    const nat = loadNative();
    let fd: number;
    try {
      fd = nat.tapOpen('vhost0', nat.constants.IFF_TAP | nat.constants.IFF_NO_PI).fd;
    } catch (e) {
      throw new UserError(`node ${node}: cannot create the TAP vhost0: ${(e as Error).message}`);
    }
    this.fds.push(fd);
    this.state.taps.push('vhost0');
    this.save();
    const macStr = Array.from(mac, (x) => x.toString(16).padStart(2, '0')).join(':');
    try {
      fs.writeFileSync(ipv6Path('vhost0'), '1');
    } catch {
      // no IPv6 here
    }
    ipFor(`node ${node}`, ['link', 'set', 'vhost0', 'address', macStr, 'mtu', String(mtu)]);
    ipFor(`node ${node}`, ['addr', 'add', cidr, 'dev', 'vhost0']);
    ipFor(`node ${node}`, ['link', 'set', 'vhost0', 'up']);
    return fd;
  }

  /** Close an fd the testbed opened, once the datapath no longer uses it. */
  closeFd(fd: number): void {
    const at = this.fds.indexOf(fd);
    if (at < 0) return;
    this.fds.splice(at, 1);
    try {
      loadNative().close(fd);
    } catch {
      // already closed
    }
  }

  /**
   * Take down a host set up at run time (addVm): its fd closed (once the datapath no longer uses it),
   * its namespace deleted unless it existed before, a qemu guest's tap deleted (the guest stopped first). @returns problems, each with its fix.
   */
  removeVm(v: HostSpec, fd: number): string[] {
    const problems: string[] = [];
    this.closeFd(fd);
    if (v.kind === 'qemu') this.detach(v.tap); // its packet socket's record
    const t = this.state.taps.indexOf(v.tap);
    if (t >= 0) this.state.taps.splice(t, 1);
    // A qemu guest's tap is persistent: it goes only when deleted (a namespace VM's went with its fd).
    if (v.kind === 'qemu' && linkExists(v.tap)) {
      try {
        ip(['link', 'del', v.tap]);
      } catch {
        problems.push(`could not remove ${v.tap}; remove it with: ip link del ${v.tap}`);
      }
    }
    const n = v.nsExisting ? -1 : this.state.namespaces.indexOf(v.namespace);
    if (n >= 0) {
      this.state.namespaces.splice(n, 1);
      try {
        ip(['netns', 'del', v.namespace]);
      } catch (e) {
        problems.push(`could not remove namespace ${v.namespace}: ${(e as Error).message.trim()}; remove it with: ip netns del ${v.namespace}`);
      }
    }
    this.save();
    return problems;
  }

  /** Forget an attached interface (after `vif --delete` or its vanishing) and restore it if it is there. */
  detach(ifname: string): void {
    const at = this.state.attached?.findIndex((a) => a.ifname === ifname) ?? -1;
    if (at < 0) return;
    const [a] = (this.state.attached as AttachedIf[]).splice(at, 1);
    if (ifIndex(a.ifname) === a.ifindex) restoreIf(a);
    this.save();
  }

  /** Forget a guest's qemu process once it has been stopped (its pid may be reused). */
  removeGuest(pid: number): void {
    const at = this.state.guests?.indexOf(pid) ?? -1;
    if (at >= 0) (this.state.guests as number[]).splice(at, 1);
    this.save();
  }

  /** Record a guest's qemu process (stopped by teardown, or by the next start after a crash). */
  addGuest(pid: number): void {
    this.state.guests?.push(pid);
    this.save();
  }

  /**
   * Set up a host: for `netns`, its namespace (unless it exists), its TAP moved in as eth0 and configured;
   * for `qemu`, a persistent tap the guest will open, attached; for `attach`, the existing interface.
   */
  async addVm(v: HostSpec, nw: Network): Promise<HostIf> {
    if (v.kind === 'attach') return { host: v, fd: this.attach(v.tap, `VM ${v.name}`), io: VIF_IO_PACKET };
    if (v.kind === 'qemu') {
      ipFor(v.name, ['tuntap', 'add', 'dev', v.tap, 'mode', 'tap']);
      this.state.taps.push(v.tap);
      this.save();
      ipFor(v.name, ['link', 'set', v.tap, 'mtu', String(v.mtu)]);
      return { host: v, fd: this.attach(v.tap, `VM ${v.name}`), io: VIF_IO_PACKET };
    }
    const nat = loadNative();
    if (!v.nsExisting) {
      ipFor(v.name, ['netns', 'add', v.namespace]);
      this.state.namespaces.push(v.namespace);
      this.save();
    }
    let fd: number;
    try {
      fd = nat.tapOpen(v.tap, nat.constants.IFF_TAP | nat.constants.IFF_NO_PI).fd;
    } catch (e) {
      throw new UserError(`setting up VM ${v.name}: cannot create TAP ${v.tap}: ${(e as Error).message}`);
    }
    this.fds.push(fd);
    this.state.taps.push(v.tap);
    this.save();
    try {
      await this.intoNamespace(v, nw);
    } catch (e) {
      this.closeFd(fd); // a VM set up at run time that failed leaves no open TAP behind
      throw e;
    }
    return { host: v, fd, io: VIF_IO_TAP };
  }

  /** Move a namespace VM's TAP into its namespace as eth0 and configure it there. @throws UserError */
  private async intoNamespace(v: HostSpec, nw: Network): Promise<void> {
    // Into the VM's namespace (rtnetlink IFLA_NET_NS_FD), then configured from inside it.
    const { createRtNetlink } = require('netlink') as typeof import('netlink');
    const rt = createRtNetlink();
    const nsFd = fs.openSync(`/run/netns/${v.namespace}`, 'r');
    try {
      const link = (await rt.getLinks()).find((l) => l.attrs.ifname === v.tap);
      if (!link || link.data.index === undefined) throw new Error(`${v.tap} vanished after it was created`);
      await rt.setLink({ index: link.data.index }, { netNsFd: nsFd });
    } catch (e) {
      throw new UserError(`setting up VM ${v.name}: cannot move ${v.tap} into namespace ${v.namespace}: ${(e as Error).message}`);
    } finally {
      fs.closeSync(nsFd);
      rt.socket.close();
    }
    const job: NetnsJob = {
      nsPath: `/run/netns/${v.namespace}`, ifname: v.tap, newName: 'eth0', mac: Array.from(v.mac), mtu: v.mtu,
      ip: v.ipStr.split('.').map(Number), prefixLen: nw.prefixLen, gateway: nw.gatewayStr.split('.').map(Number),
    };
    await new Promise<void>((resolve, reject) => {
      const w = new Worker(distFile('netns-worker.cjs'), { workerData: job });
      const fail = (why: string): void => reject(new UserError(`setting up VM ${v.name}: configuring eth0 in namespace ${v.namespace} failed: ${why}`));
      w.once('message', (m: { ok: boolean; message?: string }) => (m.ok ? resolve() : fail(m.message ?? 'unknown error')));
      w.once('error', (e) => fail(e.message));
      w.once('exit', (code) => code !== 0 && fail(`its thread exited with ${code}`));
    });
  }

  /**
   * Close the TAPs (they vanish with their fd), leave attached interfaces as they were, delete the
   * namespaces and persistent taps this run created. Guests are stopped before (see guest.ts).
   */
  teardown(): string[] {
    const problems: string[] = [];
    const nat = loadNative();
    for (const a of this.state.attached?.splice(0) ?? []) if (ifIndex(a.ifname) === a.ifindex) restoreIf(a);
    for (const pid of this.state.guests?.splice(0) ?? []) {
      if (guestAlive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          problems.push(`could not stop guest qemu pid ${pid}; stop it with: kill ${pid}`);
        }
      }
    }
    for (const fd of this.fds.splice(0)) {
      try {
        nat.close(fd);
      } catch {
        // already gone
      }
    }
    for (const ns of this.state.namespaces.splice(0)) {
      try {
        ip(['netns', 'del', ns]);
      } catch (e) {
        problems.push(`could not remove namespace ${ns}: ${(e as Error).message.trim()}; remove it with: ip netns del ${ns}`);
      }
    }
    for (const t of this.state.taps.splice(0)) {
      if (linkExists(t)) {
        try {
          ip(['link', 'del', t]);
        } catch {
          problems.push(`could not remove ${t}; remove it with: ip link del ${t}`);
        }
      }
    }
    fs.rmSync(statePath(this.state.pid), { force: true });
    return problems;
  }
}
