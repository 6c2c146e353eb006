/**
 * The OS side of `vrouter-emu testbed`: several compute nodes on one host, joined by an emulated
 * underlay. Everything lives in network namespaces whose names start with the run's prefix P:
 *
 * ```
 *  P-fabric:  br-fabric ── n-node1 ─┐ ── n-node2 ─┐ ── bm1 ─┐        (the underlay switch)
 *  P-node1:   eth1 (fabric_interface, up, no address, IPv6 off) ◀──┘  `start --node node1` runs here
 *  P-node2:   eth1 ◀──────────────────────────────────────────────────┘
 *  vtep-bms1: eth1 (vtep_ip/fabric prefix) ◀── br0 ── vxlan<VNI> (kernel VTEP, static fdb) ── host0
 *  bms-bms1:  eth0 (the bare-metal host: ip/prefix, MAC, MTU, default route via the gateway) ◀─┘
 * ```
 *
 * Every veth is created with both ends directly in their namespaces (`ip link add … netns A type veth
 * peer … netns B`): nothing is ever named in the host's namespace, so two testbeds (or a testbed and the
 * host's own interfaces) never collide, and deleting a namespace deletes its veths. What is created is
 * recorded in /run/vrouter-emu/testbeds/P.json as it goes, so that the next `testbed` removes what a
 * crashed run left.
 * @module
 */
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { UserError } from '../errors';
import { ipString } from '../lib/ipv4';
import type { BareMetalSpec, BgpSpec, HostSpec, Network, NodeSpec } from '../lib/topology-types';
import { routeTarget } from '../agent/bgp/contrail-bgp';
import { RUN_DIR, cleanLeftovers, nsExists } from './testbed';
import { FRR_DIR, FRR_RUN_DIR, GOBGPD_BIN, reflectorToml, startFrr, waitFrr } from './bgp-daemons';

/** Where the testbeds' state files are (one per prefix: P.json). */
export const TESTBEDS_DIR = `${RUN_DIR}/testbeds`;
export const DEFAULT_PREFIX = 'vre';
/** Letters and digits, at most 5: `P-` + an 8-byte node name stays a short namespace name. */
export const PREFIX_RE = /^[A-Za-z0-9]{1,5}$/;
/** Node names become namespace (P-NODE) and veth (n-NODE) names: at most 8 bytes. */
export const NODE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,7}$/;
export const MAX_NODES = 8;
export const MAX_BARE_METAL = 64;
/** The underlay switch, inside P-fabric. */
export const FABRIC_BRIDGE = 'br-fabric';
/** The IANA VXLAN port, which the kernel VTEPs send to and the nodes listen on. */
export const VXLAN_PORT = 4789;
/** The fabric is 1500 bytes; VXLAN over IPv4 adds 50: a bare-metal host's MTU unless its topology gives one. */
export const FABRIC_MTU = 1500;
export const BARE_METAL_DEFAULT_MTU = FABRIC_MTU - 50;
/** How long a node process has to answer on its socket, and to exit after SIGTERM. */
export const NODE_READY_MS = 60_000;
export const NODE_STOP_MS = 15_000;

/** The run directory of testbed P: the nodes' sockets and logs, the generated topology. */
export function testbedDir(prefix: string): string {
  return `${RUN_DIR}/testbed-${prefix}`;
}

export function nodeSocket(prefix: string, node: string): string {
  return `${testbedDir(prefix)}/${node}.sock`;
}

export function statePathFor(prefix: string): string {
  return `${TESTBEDS_DIR}/${prefix}.json`;
}

/** @throws UserError when the prefix cannot make the testbed's names. */
export function checkPrefix(prefix: string): void {
  if (!PREFIX_RE.test(prefix)) {
    throw new UserError(`--prefix ${JSON.stringify(prefix).slice(1, -1)}: expected 1 to 5 letters or digits (the namespaces are PREFIX-fabric, PREFIX-NODE), e.g. --prefix vre2`);
  }
}

/** What the plan needs of a topology (agent/topology.ts's Topology has these). */
export interface ClusterTopology {
  networks: Network[];
  vms: HostSpec[];
  nodes: NodeSpec[];
  bareMetal: BareMetalSpec[];
  global: { vxlanMode: 'automatic' | 'configured' };
  routeSource?: 'static' | 'bgp';
  bgp?: BgpSpec;
}

/**
 * A network's VNI: in `automatic` mode its position in the topology plus one (the network id the 2.22
 * config node allocates in order), in `configured` mode its vxlan_network_identifier (0 when not given).
 */
export function networkVni(topo: ClusterTopology, nw: Network): number {
  return topo.global.vxlanMode === 'configured' ? nw.vxlanId : topo.networks.indexOf(nw) + 1;
}

// ---------------------------------------------------------------------------------------------------
// The embedded demo

/** The topology of `testbed` without --topology: N nodes, one network, one VM per node (raw JSON). */
export function demoClusterTopology(n: number, prefix: string): Record<string, unknown> {
  const nodes = [];
  const vms = [];
  for (let i = 1; i <= n; i++) {
    nodes.push({ name: `node${i}`, fabric_ip: `192.168.50.${10 + i}/24` });
    vms.push({ name: `vm${i}`, ip: `10.1.1.${2 + i}`, network: 'demo', node: `node${i}`, namespace: `${prefix}-vm${i}` });
  }
  return { nodes, networks: [{ name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1' }], vms };
}

/** @throws UserError unless 1 ≤ N ≤ MAX_NODES. */
export function checkNodeCount(s: string): number {
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > MAX_NODES) {
    throw new UserError(`--nodes ${s}: expected a number of compute nodes from 1 to ${MAX_NODES}`);
  }
  return Number(s);
}

// ---------------------------------------------------------------------------------------------------
// The plan: every name and address, computed (and checked) before anything is created

export interface NodePlan {
  name: string;
  /** P-NODE. */
  ns: string;
  /** The node's end of its veth, inside ns: the topology's fabric_interface. */
  fabricIf: string;
  /** Its end on br-fabric, inside P-fabric: n-NODE. */
  port: string;
  fabricIp: string;
  prefixLen: number;
  socket: string;
  log: string;
  vms: VmPlan[];
}

export interface VmPlan {
  name: string;
  ip: string;
  network: string;
  namespace: string;
  /**
   * Who creates the VM's namespace: `node` (the default vm-NAME: the node process creates and removes it),
   * `testbed` (a namespace the topology names: the testbed creates it, unless it exists, then it is the
   * user's and left alone).
   */
  owner: 'node' | 'testbed';
}

export interface FdbEntry {
  mac: string;
  dst: string;
}

export interface VtepPlan {
  name: string;
  /** The VTEP's namespace and the host's. */
  vtepNs: string;
  hostNs: string;
  /** Its end on br-fabric: bm<i> (1-based position in bare_metal). */
  port: string;
  vtepIp: string;
  prefixLen: number;
  vni: number;
  /** vxlan<VNI>. */
  vxlanDev: string;
  /** The host: eth0's address/prefix, MAC, MTU, default route. */
  ip: string;
  hostPrefixLen: number;
  mac: string;
  mtu: number;
  gateway: string;
  network: string;
  /** BUM to every node (00:00:00:00:00:00), then each VM of the network to its node (none with BGP: FRR learns them). */
  fdb: FdbEntry[];
  /** With route_source "bgp": the VTEP is an FRR EVPN gateway (zebra + bgpd) instead of static fdb entries. */
  frr?: FrrPlan;
}

/** An FRR EVPN gateway on a bare-metal host's VTEP. */
export interface FrrPlan {
  /** FRR's pathspace (-N): its sockets and pid files under /var/run/frr/NAME, apart from any other FRR. */
  pathspace: string;
  /** Its config files, logs, pid files and vty sockets: FRR's runtime directory of the pathspace (the daemons run as user frr). */
  dir: string;
  /** br0's address in the network (the gateway's IRB): the host resolves it once, so zebra sees the host's MAC and IP. */
  irb: string;
  /** The network's route target (the emulator's derivation), imported and exported for the VNI. */
  rt: string;
}

/** The route reflector of route_source "bgp": a gobgpd in the fabric namespace, on br-fabric. */
export interface BgpPlan {
  as: number;
  reflector: string;
  prefixLen: number;
  restartTime: number;
  holdTime: number;
  /** Its clients: every node's fabric address, and every FRR gateway's VTEP (also in frrClients). */
  clients: string[];
  frrClients?: string[];
  conf: string;
  log: string;
  /** The reflector's gobgpd API port (127.0.0.1, in the fabric namespace). */
  apiPort: number;
}

export interface ClusterPlan {
  prefix: string;
  dir: string;
  fabricNs: string;
  fabricSubnet: string;
  nodes: NodePlan[];
  vteps: VtepPlan[];
  /** Every namespace the testbed creates, in creation order (the VMs' testbed-owned ones last). */
  namespaces: string[];
  /** The namespaces the node processes create (removed by the testbed only if a node could not). */
  nodeVmNamespaces: string[];
  bgp?: BgpPlan;
}

/** Linux interface names: 1 to 15 bytes, no '/', ':' or white space. */
const IFNAME_RE = /^[A-Za-z0-9_.-][A-Za-z0-9_.@-]{0,14}$/;

function mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/**
 * Names, addresses and fdb entries of the testbed for `topo`. `where` names the topology in errors.
 * @throws UserError (one line, naming the field and the fix) for what cannot be built on one host.
 */
export function clusterPlan(topo: ClusterTopology, prefix: string, where: string): ClusterPlan {
  checkPrefix(prefix);
  const fail = (field: string, msg: string): never => {
    throw new UserError(`${where}: ${field}: ${msg}`);
  };
  if (topo.nodes.length === 0) fail('nodes', 'the topology has no compute nodes; a testbed needs "nodes": [{"name": "node1", "fabric_ip": "192.168.50.11/24"}, …]');
  if (topo.nodes.length > MAX_NODES) fail('nodes', `${topo.nodes.length} nodes: a testbed runs at most ${MAX_NODES} on one host`);
  if (topo.bareMetal.length > MAX_BARE_METAL) fail('bare_metal', `${topo.bareMetal.length} hosts: a testbed runs at most ${MAX_BARE_METAL}`);
  const n0 = topo.nodes[0];
  const fabricNet = (n0.fabricIp & mask(n0.prefixLen)) >>> 0;
  const bgp = topo.routeSource === 'bgp' ? topo.bgp : undefined;
  const fabricSubnet = `${ipString(fabricNet)}/${n0.prefixLen}`;
  const dir = testbedDir(prefix);
  const used = new Map<number, string>();
  const nodes: NodePlan[] = topo.nodes.map((n, i) => {
    const f = `nodes[${i}]`;
    if (!NODE_NAME_RE.test(n.name)) fail(`${f}.name`, `${JSON.stringify(n.name)}: a testbed's node names are at most 8 letters, digits, _ or - (they name namespace ${prefix}-NODE); shorten it`);
    if (!IFNAME_RE.test(n.fabricInterface) || n.fabricInterface === 'lo' || n.fabricInterface === 'vhost0') {
      fail(`${f}.fabric_interface`, `${JSON.stringify(n.fabricInterface)}: expected an interface name of at most 15 bytes other than lo and vhost0, e.g. eth1`);
    }
    if (n.prefixLen !== n0.prefixLen || ((n.fabricIp & mask(n.prefixLen)) >>> 0) !== fabricNet) {
      fail(`${f}.fabric_ip`, `${n.fabricIpStr}/${n.prefixLen} is not in the fabric subnet ${fabricSubnet} of ${n0.name}: the testbed's fabric is one switch; give every node an address in one subnet`);
    }
    const other = used.get(n.fabricIp);
    if (other !== undefined) fail(`${f}.fabric_ip`, `${n.fabricIpStr} is also ${other}'s`);
    used.set(n.fabricIp, `node ${n.name}`);
    return {
      name: n.name, ns: `${prefix}-${n.name}`, fabricIf: n.fabricInterface, port: `n-${n.name}`, fabricIp: n.fabricIpStr, prefixLen: n.prefixLen,
      socket: nodeSocket(prefix, n.name), log: `${dir}/${n.name}.log`, vms: [],
    };
  });
  const nodeByName = new Map(nodes.map((n) => [n.name, n]));
  topo.vms.forEach((v, i) => {
    const n = nodeByName.get(v.node);
    if (!n) fail(`vms[${i}].node`, `${v.node === '' ? 'missing' : JSON.stringify(v.node)}: name the compute node VM ${v.name} runs on (${nodes.map((x) => x.name).join(', ')})`);
    if (v.kind !== 'netns') fail(`vms[${i}]`, `VM ${v.name} is a ${v.kind === 'qemu' ? 'qemu guest' : 'attached interface'}; a testbed's VMs are namespaces (remove "kind"/"attach")`);
    (n as NodePlan).vms.push({ name: v.name, ip: v.ipStr, network: v.network, namespace: v.namespace, owner: v.nsExisting ? 'testbed' : 'node' });
  });

  const vteps: VtepPlan[] = topo.bareMetal.map((b, i) => {
    const f = `bare_metal[${i}]`;
    if (((b.vtepIp & mask(n0.prefixLen)) >>> 0) !== fabricNet) fail(`${f}.vtep_ip`, `${b.vtepIpStr} is not in the fabric subnet ${fabricSubnet}`);
    const other = used.get(b.vtepIp);
    if (other !== undefined) fail(`${f}.vtep_ip`, `${b.vtepIpStr} is also ${other}'s`);
    used.set(b.vtepIp, `bare-metal host ${b.name}'s VTEP`);
    const nw = topo.networks.find((x) => x.name === b.network);
    if (!nw) return fail(`${f}.network`, `${JSON.stringify(b.network)} is not one of the networks (${topo.networks.map((x) => x.name).join(', ')})`);
    const vni = networkVni(topo, nw);
    if (!(vni >= 1 && vni <= 0xffffff)) {
      fail(`networks[${topo.networks.indexOf(nw)}].vxlan_network_identifier`, `network ${nw.name} has no VNI (${vni}); vxlan_network_identifier_mode is configured: give it a vxlan_network_identifier from 1 to 16777215`);
    }
    const fdb: FdbEntry[] = [];
    let frr: FrrPlan | undefined;
    if (bgp) {
      const irb = irbAddress(topo, nw, i);
      if (irb === undefined) fail(`bare_metal[${i}].network`, `network ${nw.name} (${nw.subnet}) has no free address left for the FRR gateway's IRB; use a larger subnet`);
      const pathspace = `${prefix}-${b.name}`.slice(0, 15);
      frr = { pathspace, dir: `${FRR_RUN_DIR}/${pathspace}`, irb: irb as string, rt: `${bgp.as}:${routeTarget(bgp.as, topo.networks.indexOf(nw)).local}` };
    } else {
      fdb.push(...nodes.map((n) => ({ mac: '00:00:00:00:00:00', dst: n.fabricIp })));
      for (const v of topo.vms) if (v.network === nw.name) fdb.push({ mac: v.macStr, dst: (nodeByName.get(v.node) as NodePlan).fabricIp });
    }
    return {
      name: b.name, vtepNs: b.vtepNamespace, hostNs: b.namespace, port: `bm${i + 1}`, vtepIp: b.vtepIpStr, prefixLen: n0.prefixLen, vni,
      vxlanDev: `vxlan${vni}`, ip: b.ipStr, hostPrefixLen: nw.prefixLen, mac: b.macStr, mtu: b.mtu, gateway: nw.gatewayStr, network: nw.name, fdb, frr,
    };
  });

  const namespaces = [`${prefix}-fabric`, ...nodes.map((n) => n.ns)];
  for (const v of vteps) namespaces.push(v.vtepNs, v.hostNs);
  const vmNs = nodes.flatMap((n) => n.vms);
  namespaces.push(...vmNs.filter((v) => v.owner === 'testbed').map((v) => v.namespace));
  const nodeVmNamespaces = vmNs.filter((v) => v.owner === 'node').map((v) => v.namespace);
  const seen = new Set<string>();
  for (const ns of [...namespaces, ...nodeVmNamespaces]) {
    if (seen.has(ns)) fail('(namespaces)', `namespace ${ns} would be used twice (node, VM and bare-metal namespaces must differ); rename one`);
    seen.add(ns);
  }
  const bgpPlan: BgpPlan | undefined = bgp && {
    as: bgp.as, reflector: bgp.reflectorsStr[0], prefixLen: n0.prefixLen, restartTime: bgp.restartTime, holdTime: bgp.holdTime,
    clients: [...nodes.map((n) => n.fabricIp), ...vteps.map((v) => v.vtepIp)], frrClients: vteps.map((v) => v.vtepIp), conf: `${dir}/reflector.toml`, log: `${dir}/reflector.log`, apiPort: REFLECTOR_API_PORT,
  };
  return { prefix, dir, fabricNs: `${prefix}-fabric`, fabricSubnet, nodes, vteps, namespaces, nodeVmNamespaces, bgp: bgpPlan };
}

/** The reflector's API port inside the fabric namespace (its own network namespace: no clash with a node's). */
export const REFLECTOR_API_PORT = 50051;

/**
 * The IRB address of the FRR gateway of bare_metal[i]: counted down from the top of the network's
 * subnet, the first that no VM, bare-metal host or gateway has. undefined when none is left.
 */
function irbAddress(topo: ClusterTopology, nw: Network, i: number): string | undefined {
  const used = new Set<number>([nw.gateway, ...topo.vms.map((v) => v.ip), ...topo.bareMetal.map((b) => b.ip)]);
  const top = ((nw.net | ~mask(nw.prefixLen)) - 1) >>> 0;
  let skip = i;
  for (let a = top; a > nw.net; a--) {
    if (used.has(a)) continue;
    if (skip-- === 0) return ipString(a);
  }
  return undefined;
}

/** The commands that build the underlay of `plan`, in order (argv of `ip`/`bridge`/`sysctl`, run as is). */
export function underlayCommands(plan: ClusterPlan): { ns?: string; argv: string[] }[] {
  const c: { ns?: string; argv: string[] }[] = [];
  const fab = plan.fabricNs;
  const nsPrep = (ns: string): void => {
    c.push({ ns, argv: ['ip', 'netns', 'add', ns] });
    c.push({ argv: ['ip', '-n', ns, 'link', 'set', 'lo', 'up'] });
  };
  nsPrep(fab);
  c.push({ argv: ['ip', '-n', fab, 'link', 'add', FABRIC_BRIDGE, 'type', 'bridge'] });
  c.push({ argv: ['ip', '-n', fab, 'link', 'set', FABRIC_BRIDGE, 'up'] });
  // The route reflector listens on the fabric switch itself (a host of the fabric subnet).
  if (plan.bgp) c.push({ argv: ['ip', '-n', fab, 'addr', 'add', `${plan.bgp.reflector}/${plan.bgp.prefixLen}`, 'dev', FABRIC_BRIDGE] });
  const port = (p: string, peerNs: string, peer: string): void => {
    c.push({ argv: ['ip', 'link', 'add', 'name', p, 'netns', fab, 'mtu', String(FABRIC_MTU), 'type', 'veth', 'peer', 'name', peer, 'netns', peerNs, 'mtu', String(FABRIC_MTU)] });
    c.push({ argv: ['ip', '-n', fab, 'link', 'set', p, 'master', FABRIC_BRIDGE, 'up'] });
    // The fabric is a wire: the switch hands every port frames of at most the MTU. Without this a kernel
    // VTEP's GSO super-frames (TCP in VXLAN, one skb of up to 64 KiB) would reach a node's packet socket
    // whole, as UDP-tunnel GSO it cannot take (counted IF RX Discard); one segment per skb makes the
    // bridge segment them in software before the port.
    c.push({ argv: ['ip', '-n', fab, 'link', 'set', 'dev', p, 'gso_max_segs', '1'] });
  };
  for (const n of plan.nodes) {
    nsPrep(n.ns);
    port(n.port, n.ns, n.fabricIf);
    c.push({ argv: ['ip', 'netns', 'exec', n.ns, 'sysctl', '-q', '-w', `net.ipv6.conf.${n.fabricIf}.disable_ipv6=1`] });
    c.push({ argv: ['ip', '-n', n.ns, 'link', 'set', n.fabricIf, 'up'] });
  }
  for (const v of plan.vteps) {
    nsPrep(v.vtepNs);
    nsPrep(v.hostNs);
    port(v.port, v.vtepNs, 'eth1');
    const inV = (...a: string[]): void => void c.push({ argv: ['ip', '-n', v.vtepNs, ...a] });
    inV('addr', 'add', `${v.vtepIp}/${v.prefixLen}`, 'dev', 'eth1');
    inV('link', 'set', 'eth1', 'up');
    // nolearning: the remote MACs are the static entries below; unknown unicast and BUM go to every node.
    inV('link', 'add', v.vxlanDev, 'mtu', String(v.mtu), 'type', 'vxlan', 'id', String(v.vni), 'local', v.vtepIp, 'dstport', String(VXLAN_PORT), 'nolearning');
    inV('link', 'add', 'br0', 'mtu', String(v.mtu), 'type', 'bridge');
    inV('link', 'set', v.vxlanDev, 'master', 'br0', 'up');
    c.push({ argv: ['ip', 'link', 'add', 'name', 'host0', 'netns', v.vtepNs, 'mtu', String(v.mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', v.hostNs, 'mtu', String(v.mtu)] });
    inV('link', 'set', 'host0', 'master', 'br0', 'up');
    inV('link', 'set', 'br0', 'up');
    if (v.frr) inV('addr', 'add', `${v.frr.irb}/${v.hostPrefixLen}`, 'dev', 'br0');
    for (const e of v.fdb) c.push({ argv: ['bridge', '-n', v.vtepNs, 'fdb', 'append', e.mac, 'dev', v.vxlanDev, 'dst', e.dst] });
    const inH = (...a: string[]): void => void c.push({ argv: ['ip', '-n', v.hostNs, ...a] });
    inH('link', 'set', 'eth0', 'address', v.mac, 'up');
    inH('addr', 'add', `${v.ip}/${v.hostPrefixLen}`, 'dev', 'eth0');
    inH('route', 'add', 'default', 'via', v.gateway);
  }
  return c;
}

// ---------------------------------------------------------------------------------------------------
// The state file and the processes

/** A process of ours: its pid and start time (/proc/PID/stat field 22), so that a reused pid is not taken for it. */
export interface ProcRef {
  pid: number;
  start: string;
}

export interface ClusterState extends ProcRef {
  prefix: string;
  dir: string;
  /** Namespaces this testbed created, in creation order. */
  namespaces: string[];
  /** Namespaces its nodes create (removed here only when a node could not remove them). */
  vmNamespaces: string[];
  nodes: (ProcRef & { name: string })[];
  /** The control plane's daemons (route reflector, FRR gateways), stopped after the nodes. */
  daemons?: (ProcRef & { name: string })[];
}

/** A process's start time in clock ticks since boot, or undefined when it is gone or a zombie. */
export function procStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
    return rest[19];
  } catch {
    return undefined;
  }
}

export function procAlive(p: ProcRef): boolean {
  return p.pid > 0 && procStart(p.pid) === p.start;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** SIGTERM the processes, wait up to `ms` for them to go, then SIGKILL what is left. @returns the pids killed. */
async function stopProcs(procs: ProcRef[], ms: number): Promise<number[]> {
  const live = procs.filter(procAlive);
  for (const p of live) {
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      // gone meanwhile
    }
  }
  const end = Date.now() + ms;
  while (live.some(procAlive) && Date.now() < end) await sleep(100);
  const killed: number[] = [];
  for (const p of live.filter(procAlive)) {
    try {
      process.kill(p.pid, 'SIGKILL');
      killed.push(p.pid);
    } catch {
      // gone meanwhile
    }
  }
  const end2 = Date.now() + 2000;
  while (live.some(procAlive) && Date.now() < end2) await sleep(50);
  return killed;
}

function delNs(ns: string, done: string[], problems: string[], what: string): void {
  if (!nsExists(ns)) return;
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: ['ignore', 'ignore', 'pipe'] });
    done.push(ns);
  } catch (e) {
    const err = e as Error & { stderr?: Buffer };
    problems.push(`could not remove namespace ${ns}${what} (${(err.stderr?.toString() ?? err.message).trim()}); remove it with: ip netns del ${ns}`);
  }
}

/**
 * Remove what a testbed created: its node processes (SIGTERM, then SIGKILL after `stopMs`), then the
 * VM namespaces its nodes left, its own namespaces (last created first), its run directory and state file.
 * @returns the namespaces removed, and problems (one line each, with the command that fixes them).
 */
export async function clusterRemove(st: ClusterState, stopMs = NODE_STOP_MS): Promise<{ removed: string[]; killed: number[]; problems: string[] }> {
  const removed: string[] = [];
  const problems: string[] = [];
  const killed = await stopProcs(st.nodes, stopMs);
  killed.push(...(await stopProcs(st.daemons ?? [], 5000)));
  // Speakers of nodes that were killed (each node's gobgpd names itself in DIR/NODE.sock.gobgpd.pid).
  killed.push(...(await stopProcs(speakerPids(st.dir), 3000)));
  // The FRR gateways' pathspaces (/var/run/frr/PREFIX-NAME).
  try {
    for (const d of fs.readdirSync(FRR_RUN_DIR)) if (d.startsWith(`${st.prefix}-`)) fs.rmSync(path.join(FRR_RUN_DIR, d), { recursive: true, force: true });
  } catch {
    // no FRR here
  }
  for (const ns of st.vmNamespaces) delNs(ns, removed, problems, ' (a VM of a node)');
  for (const ns of [...st.namespaces].reverse()) delNs(ns, removed, problems, '');
  if (typeof st.dir === 'string' && st.dir.startsWith(`${RUN_DIR}/testbed-`)) fs.rmSync(st.dir, { recursive: true, force: true });
  fs.rmSync(statePathFor(st.prefix), { force: true });
  return { removed, killed, problems };
}

/**
 * Remove what testbeds that did not exit cleanly left (state files whose pid is dead), whatever their
 * prefix; then what their killed nodes left (start's own leftovers).
 * @returns one line per testbed cleaned. @throws UserError when a live testbed uses `prefix`.
 */
export async function cleanClusterLeftovers(prefix: string): Promise<string[]> {
  let files: string[];
  try {
    files = fs.readdirSync(TESTBEDS_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const lines: string[] = [];
  let cleaned = false;
  for (const f of files) {
    const sp = path.join(TESTBEDS_DIR, f);
    let st: ClusterState;
    try {
      st = JSON.parse(fs.readFileSync(sp, 'utf8')) as ClusterState;
      if (typeof st.pid !== 'number' || typeof st.prefix !== 'string' || !PREFIX_RE.test(st.prefix) || `${st.prefix}.json` !== f) throw new Error('bad');
      st.namespaces = Array.isArray(st.namespaces) ? st.namespaces.filter((x) => typeof x === 'string') : [];
      st.vmNamespaces = Array.isArray(st.vmNamespaces) ? st.vmNamespaces.filter((x) => typeof x === 'string') : [];
      st.nodes = Array.isArray(st.nodes) ? st.nodes.filter((x) => typeof x?.pid === 'number') : [];
      st.daemons = Array.isArray(st.daemons) ? st.daemons.filter((x) => typeof x?.pid === 'number') : [];
    } catch {
      fs.rmSync(sp, { force: true });
      lines.push(`removed an unreadable testbed state file ${sp}`);
      continue;
    }
    if (st.pid !== process.pid && procAlive(st)) {
      if (st.prefix === prefix) {
        throw new UserError(`testbed ${prefix} is running (pid ${st.pid}); stop it (kill ${st.pid}), or give another --prefix`);
      }
      continue;
    }
    const r = await clusterRemove(st, 5000);
    cleaned = true;
    const what = [r.killed.length > 0 ? `killed node pids ${r.killed.join(', ')}` : '', r.removed.length > 0 ? `removed namespaces ${r.removed.join(', ')}` : '']
      .filter((x) => x !== '').join('; ');
    lines.push(`testbed ${st.prefix} (pid ${st.pid}) had not exited cleanly: ${what || 'nothing was left'}`);
    lines.push(...r.problems);
  }
  // Its nodes' own records (TAPs, state files under instances/) when they were killed.
  if (cleaned) lines.push(...cleanLeftovers(''));
  return lines;
}

// ---------------------------------------------------------------------------------------------------
// The testbed

/** Runs `argv`; a failure is a UserError naming the command and what it said. */
function run(argv: string[], what: string): void {
  try {
    execFileSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    const why = err.code === 'ENOENT' ? `the ${argv[0]} command is not installed (Debian package iproute2)` : (err.stderr?.toString() ?? err.message).trim();
    throw new UserError(`${what}: ${argv.join(' ')} failed: ${why}`);
  }
}

/** The last `n` lines of a file ('' when it cannot be read). */
export function tailFile(file: string, n: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

/** The gobgpd speakers the nodes of a testbed run (from their pid files), as processes to stop. */
function speakerPids(dir: unknown): ProcRef[] {
  if (typeof dir !== 'string' || !dir.startsWith(`${RUN_DIR}/testbed-`)) return [];
  let files: string[];
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.gobgpd.pid'));
  } catch {
    return [];
  }
  const out: ProcRef[] = [];
  for (const f of files) {
    const pid = Number(fs.readFileSync(path.join(dir, f), 'utf8').trim());
    const start = Number.isInteger(pid) && pid > 0 ? procStart(pid) : undefined;
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (start !== undefined && cmd.split('\0')[0].endsWith('gobgpd')) out.push({ pid, start });
  }
  return out;
}

/** Creates, records and removes one testbed (the underlay, then the node processes). */
export class Cluster {
  readonly state: ClusterState;
  private readonly procs: ChildProcess[] = [];

  constructor(readonly plan: ClusterPlan) {
    this.state = {
      pid: process.pid, start: procStart(process.pid) ?? '', prefix: plan.prefix, dir: plan.dir, namespaces: [], vmNamespaces: [...plan.nodeVmNamespaces], nodes: [],
    };
  }

  save(): void {
    fs.mkdirSync(TESTBEDS_DIR, { recursive: true, mode: 0o700 });
    const sp = statePathFor(this.plan.prefix);
    // Written whole then renamed: a reader never sees half a file.
    fs.writeFileSync(`${sp}.tmp`, JSON.stringify(this.state) + '\n', { mode: 0o600 });
    fs.renameSync(`${sp}.tmp`, sp);
  }

  /**
   * Check that nothing the plan names exists, before anything is created (after cleanClusterLeftovers,
   * anything there is not ours). VM namespaces the topology names (owner testbed) may exist: they are
   * then the user's and only used. @throws UserError naming the first one.
   */
  checkFree(): void {
    const p = this.plan;
    const vmUser = new Set(p.nodes.flatMap((n) => n.vms).filter((v) => v.owner === 'testbed').map((v) => v.namespace));
    for (const ns of [...p.namespaces, ...p.nodeVmNamespaces]) {
      if (vmUser.has(ns)) continue;
      if (nsExists(ns)) {
        throw new UserError(`namespace ${ns} exists already and is not from a testbed; remove it with: ip netns del ${ns}, or give another --prefix (or rename it in the topology)`);
      }
    }
    if (fs.existsSync(p.dir)) {
      for (const f of fs.readdirSync(p.dir)) {
        if (f.endsWith('.sock')) throw new UserError(`${p.dir}/${f} exists: is testbed ${p.prefix} running outside this one's record? stop it, or remove ${p.dir}`);
      }
    }
  }

  /**
   * Build the underlay: the fabric namespace and bridge, a namespace per node with its fabric interface,
   * a VTEP and a host namespace per bare-metal host, and the testbed-owned VM namespaces. Each namespace
   * is recorded before anything goes into it. `between` runs after each step (a signal check).
   */
  setupUnderlay(between: () => void = () => undefined): void {
    fs.mkdirSync(this.plan.dir, { recursive: true, mode: 0o700 });
    this.save();
    const ipv6 = fs.existsSync('/proc/sys/net/ipv6');
    for (const cmd of underlayCommands(this.plan)) {
      if (!ipv6 && cmd.argv[4] === 'sysctl') continue;
      run(cmd.argv, `testbed ${this.plan.prefix}`);
      if (cmd.ns !== undefined) {
        this.state.namespaces.push(cmd.ns);
        this.save();
      }
      if (cmd.ns !== undefined && ipv6) {
        // No IPv6 on what the testbed creates: the nodes' fabric NICs and the hosts would otherwise send
        // ND and MLD into the overlay.
        run(['ip', 'netns', 'exec', cmd.ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.all.disable_ipv6=1'], `testbed ${this.plan.prefix}`);
      }
      between();
    }
    for (const v of this.plan.nodes.flatMap((n) => n.vms)) {
      if (v.owner !== 'testbed' || nsExists(v.namespace)) continue;
      run(['ip', 'netns', 'add', v.namespace], `testbed ${this.plan.prefix}: VM ${v.name}`);
      this.state.namespaces.push(v.namespace);
      this.save();
      run(['ip', '-n', v.namespace, 'link', 'set', 'lo', 'up'], `testbed ${this.plan.prefix}: VM ${v.name}`);
    }
  }

  /**
   * Start one `vrouter-emu start --node` per node inside its namespace, one after the other (each
   * start cleans the dead instances' leftovers: the next waits until the previous answers), with its
   * output in its log; `alive` says whether a socket answers (control.ts's controlAlive). @throws UserError with the end of the log of a node that exited or did not answer.
   */
  async startNodes(topoFile: string, bin: string, alive: (socket: string) => Promise<boolean>, between: () => void = () => undefined, readyMs = NODE_READY_MS): Promise<void> {
    const end = Date.now() + readyMs;
    for (const n of this.plan.nodes) {
      const out = fs.openSync(n.log, 'a', 0o600);
      let proc: ChildProcess;
      try {
        proc = spawn('ip', ['netns', 'exec', n.ns, process.execPath, bin, 'start', '--topology', topoFile, '--node', n.name, '--socket', n.socket, '--no-demo-traffic'], {
          stdio: ['ignore', out, out], detached: true,
        });
      } finally {
        fs.closeSync(out);
      }
      let exited: string | undefined;
      proc.once('exit', (code, sig) => (exited = sig ?? `status ${code}`));
      proc.once('error', (e) => (exited = e.message));
      this.procs.push(proc);
      if (proc.pid !== undefined) {
        this.state.nodes.push({ name: n.name, pid: proc.pid, start: procStart(proc.pid) ?? '' });
        this.save();
      }
      for (;;) {
        if (exited !== undefined) {
          throw new UserError(`node ${n.name} exited (${exited}) while starting; the end of ${n.log}:\n${tailFile(n.log, 15)}`);
        }
        if (await alive(n.socket)) break;
        if (Date.now() > end) throw new UserError(`node ${n.name} did not answer on ${n.socket} within ${readyMs / 1000} s; the end of ${n.log}:\n${tailFile(n.log, 15)}`);
        between();
        await sleep(200);
      }
    }
  }

  /**
   * Start the control plane of route_source "bgp": the route reflector (a gobgpd in the fabric
   * namespace, supervised: when it dies it is started again a second later, as a control node's service
   * would be), and an FRR gateway (zebra + bgpd) on each bare-metal
   * host's VTEP, whose host then resolves the gateway's IRB address once, so that zebra advertises its
   * MAC and IP. @throws UserError naming a missing binary and its package.
   */
  async startControl(between: () => void = () => undefined): Promise<void> {
    const b = this.plan.bgp;
    if (!b) return;
    need(GOBGPD_BIN, 'gobgpd');
    if (this.plan.vteps.some((v) => v.frr)) for (const d of ['zebra', 'bgpd']) need(`${FRR_DIR}/${d}`, 'frr');
    fs.writeFileSync(b.conf, reflectorToml(b), { mode: 0o600 });
    const rr = [GOBGPD_BIN, '-f', b.conf, '--api-hosts', `127.0.0.1:${b.apiPort}`, '--pprof-disable', '-p', '-l', 'info'];
    // Not with -r (restarting) when started again: the nodes' speakers do not negotiate graceful restart
    // (bgp-routes.ts says why), so a restarting reflector would wait for End-of-RIB markers that never come.
    const respawn = (): void => {
      const p = this.daemon('reflector', this.plan.fabricNs, rr, b.log);
      p.once('exit', () => {
        if (this.stopping) return;
        fs.appendFileSync(b.log, `vrouter-emu: the route reflector exited; starting it again in 1 s\n`);
        setTimeout(() => {
          if (!this.stopping) respawn();
        }, 1000);
      });
    };
    respawn();
    between();
    for (const v of this.plan.vteps) {
      if (!v.frr) continue;
      startFrr(v, b, (name, argv, log) => this.daemon(name, v.vtepNs, argv, log));
      between();
    }
    await waitFrr(this.plan.vteps.filter((v) => v.frr));
    // The hosts announce themselves to their gateway: the ping puts the host's MAC in br0's fdb (learned on
    // its port) and its address in the IRB's neighbour table, from which zebra makes the MAC/IP route. The
    // neighbour entry is then made permanent, as a gateway's static ARP for its own host would be: with
    // thousands of remote MAC/IP routes zebra fills br0's neighbour table, the kernel's garbage collector
    // (gc_thresh1 128, not per namespace) would drop the host's learned entry after ~90 s, and FRR would
    // withdraw the host's MAC/IP route.
    for (const v of this.plan.vteps) {
      if (!v.frr) continue;
      runQuiet(['ip', 'netns', 'exec', v.hostNs, 'ping', '-c', '1', '-W', '1', v.frr.irb]);
      runQuiet(['ip', '-n', v.vtepNs, 'neigh', 'replace', v.ip, 'lladdr', v.mac, 'dev', 'br0', 'nud', 'permanent']);
    }
  }

  private stopping = false;

  /** Spawn a control-plane daemon in `ns` (its own process group, output to `log`), recorded in the state file. */
  private daemon(name: string, ns: string, argv: string[], log: string): ChildProcess {
    const out = fs.openSync(log, 'a', 0o600);
    let proc: ChildProcess;
    try {
      proc = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', out, out], detached: true });
    } finally {
      fs.closeSync(out);
    }
    proc.once('error', () => undefined);
    const list = (this.state.daemons ??= []);
    if (proc.pid !== undefined) {
      const i = list.findIndex((d) => d.name === name);
      const ref = { name, pid: proc.pid, start: procStart(proc.pid) ?? '' };
      if (i >= 0) list[i] = ref;
      else list.push(ref);
      this.save();
    }
    return proc;
  }

  /** Whether a node process exited (its name and how), for the foreground loop. */
  onNodeExit(cb: (node: string, how: string) => void): void {
    this.procs.forEach((p, i) => p.once('exit', (code, sig) => cb(this.plan.nodes[i].name, sig ?? `status ${code}`)));
  }

  /** Stop the nodes and remove everything. @returns lines to print. */
  async teardown(): Promise<{ removed: string[]; killed: number[]; problems: string[] }> {
    this.stopping = true;
    return clusterRemove(this.state);
  }
}

/** @throws UserError when `bin` is missing: install `pkg`. */
function need(bin: string, pkg: string): void {
  if (!fs.existsSync(bin)) throw new UserError(`route_source "bgp": ${bin} is missing; install it with: apt-get install -y ${pkg}`);
}

/** Run a command, ignoring how it ends (a best-effort step). */
function runQuiet(argv: string[]): void {
  try {
    execFileSync(argv[0], argv.slice(1), { stdio: 'ignore', timeout: 5000 });
  } catch {
    // best effort
  }
}
