/**
 * The testbed's topology: virtual networks, the VMs on the compute node(s) and the outside hosts of
 * router-external networks, with the Contrail objects that configure them (network policies and their
 * references, virtual-machine-interface fat-flow protocols, floating IPs, global-vrouter-config), read
 * from a JSON file and validated into typed objects — the agent's view of what the controller would have
 * configured. Every problem is a UserError naming the file, the field and the fix. Objects may be given
 * inline or as paths (relative to the topology file) to JSON files in the Contrail API's shape.
 *
 * ```json
 * { "networks": [{ "name": "demo", "subnet": "10.1.1.0/24", "gateway": "10.1.1.1",
 *                  "network_policy_refs": [{ "to": ["default-domain", "admin", "web"] }] },
 *                { "name": "public", "subnet": "203.0.113.0/24", "gateway": "203.0.113.1",
 *                  "router_external": true, "outside": { "namespace": "outside", "ip": "203.0.113.254" } }],
 *   "vms": [{ "name": "vm1", "ip": "10.1.1.3", "network": "demo", "floating_ips": ["203.0.113.10"] },
 *           { "name": "vm2", "ip": "10.1.1.4", "network": "demo", "mac": "02:00:0a:01:01:04",
 *             "mtu": 1500, "namespace": "an-existing-netns", "virtual_machine_interface": "vm2-vmi.json" },
 *           { "name": "g1", "ip": "10.1.1.5", "network": "demo", "kind": "qemu", "run": "ping -c 3 10.1.1.3" },
 *           { "name": "lv", "ip": "10.1.1.6", "network": "demo", "mac": "52:54:00:12:34:56", "attach": "vnet0" }],
 *   "network_policies": ["web.json"],
 *   "global_vrouter_config": "global-vrouter-config.json" }
 * ```
 *
 * A cluster (several compute nodes reading the same file) adds `nodes` (all on one fabric subnet; a VM's
 * `node` defaults to the only node, an outside host's to the first), VNIs, and bare-metal hosts behind
 * kernel VXLAN VTEPs on the fabric (`mac`, `mtu`, `namespace` bms-NAME, `vtep_namespace` vtep-NAME optional):
 *
 * ```json
 * { "nodes": [{ "name": "node1", "fabric_ip": "192.168.50.11/24", "fabric_interface": "eth1",
 *               "encapsulations": ["MPLSoUDP", "MPLSoGRE", "VXLAN"] },
 *             { "name": "node2", "fabric_ip": "192.168.50.12/24" }],
 *   "networks": [{ "name": "demo", "subnet": "10.1.1.0/24", "gateway": "10.1.1.1", "vxlan_network_identifier": 5001 }],
 *   "vms": [{ "name": "vm1", "ip": "10.1.1.3", "network": "demo", "node": "node1" },
 *           { "name": "vm2", "ip": "10.1.1.4", "network": "demo", "node": "node2" }],
 *   "bare_metal": [{ "name": "bms1", "vtep_ip": "192.168.50.20", "ip": "10.1.1.20", "network": "demo" }],
 *   "global_vrouter_config": { "encapsulation_priorities": { "encapsulation": ["MPLSoUDP", "MPLSoGRE", "VXLAN"] },
 *                              "vxlan_network_identifier_mode": "configured" } }
 * ```
 * In "configured" mode every network of a cluster needs its own vxlan_network_identifier (checkVniMode);
 * otherwise (automatic) the VNI is the network id and the values given are ignored.
 * @module
 */
import * as path from 'path';
import { UserError } from '../errors';
import {
  GLOBAL_VROUTER_CONFIG_DEFAULTS,
  GlobalVrouterConfig,
  NetworkPolicy,
  inlineOrFile,
  parseEncapList,
  parseGlobalVrouterConfig,
  parseNetworkPolicy,
  parsePolicyRefs,
  parseVmi,
  vnFqName,
} from './contrail-config';
import { ipParse, ipString } from '../lib/ipv4';
import { ENCAPS } from '../lib/topology-types';
import type { BareMetalSpec, BgpSpec, HostKind, HostSpec, Network, NodeSpec, VmSpec } from '../lib/topology-types';
import { jsonErrorLine, oneLine, readInputFile, show } from '../lib/input';

export { ipParse, ipString };
// The host and network shapes are shared with src/io (namespaces, TAPs, guests); re-exported for the agent's users.
export type { BareMetalSpec, BgpSpec, HostKind, HostSpec, Network, NodeSpec, VmSpec };

/** Linux interface names: 1 to 15 bytes, no '/', ':' or white space. */
export const IFNAME_RE = /^[A-Za-z0-9_.-][A-Za-z0-9_.@-]{0,14}$/;

export interface Topology {
  networks: Network[];
  vms: VmSpec[];
  /** Outside hosts (the far side of a router-external network's gateway). */
  outside: HostSpec[];
  policies: Map<string, NetworkPolicy>;
  global: GlobalVrouterConfig;
  /** The compute nodes of a cluster (`nodes`); empty for one isolated node. */
  nodes: NodeSpec[];
  /** Bare-metal hosts behind kernel VXLAN VTEPs (`bare_metal`). */
  bareMetal: BareMetalSpec[];
  /** Where remote routes come from: `static` (derived from this file) or `bgp` (learned, `bgp` below). */
  routeSource: 'static' | 'bgp';
  bgp?: BgpSpec;
  /** Notes for the log (configuration the 2.22 agent ignores). */
  notes: string[];
}

/** The demo of `vrouter-emu start` without --topology. */
export const DEMO_TOPOLOGY = {
  networks: [{ name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1' }],
  vms: [
    { name: 'vm1', ip: '10.1.1.3', network: 'demo' },
    { name: 'vm2', ip: '10.1.1.4', network: 'demo' },
  ],
};

/** The IP as the flow key and route tables hold it (its 4 bytes read little-endian, int32). */
export function ipKeyWord(v: number): number {
  return ((v >>> 24) | ((v >>> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24)) | 0;
}

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Networks per topology (the default vr_vrfs), and VMs (each a namespace or guest with a TAP). */
export const MAX_NETWORKS = 4096;
export const MAX_VMS = 4096;
/** Compute nodes of a cluster, and bare-metal hosts. */
export const MAX_NODES = 64;
export const MAX_BARE_METAL = 4096;
/** The largest VXLAN network identifier (24 bits; 0 is not a VNI). */
export const MAX_VNI = 0xffffff;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

function check(cond: boolean, file: string, field: string, msg: string): asserts cond {
  if (!cond) throw new UserError(`${file}: ${field}: ${msg}`);
}

function onlyKeys(o: Record<string, unknown>, allowed: string[], file: string, field: string): void {
  for (const k of Object.keys(o)) {
    check(allowed.includes(k), file, `${field}.${k}`, `unknown key; the keys are ${allowed.join(', ')}`);
  }
}

function macFrom(v: unknown, file: string, f: string, ip: number): Uint8Array {
  if (v === undefined) {
    // Locally administered, from the address: 02:00:a:b:c:d.
    return Uint8Array.from([0x02, 0x00, ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255]);
  }
  const mm = typeof v === 'string' ? /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(v) : null;
  check(mm !== null, file, f, `${show(v)} is not a MAC address like 02:00:0a:01:01:03`);
  const mac = Uint8Array.from(mm.slice(1).map((x) => parseInt(x, 16)));
  check((mac[0] & 1) === 0, file, f, `${v} is a multicast address; use a unicast one (even first byte)`);
  check(!mac.every((x) => x === 0), file, f, 'the all-zero MAC is not usable');
  return mac;
}

/** Names for an error line: the first few, and how many more. */
function nameList(names: string[]): string {
  const more = names.length > 6 ? ` and ${names.length - 6} more` : '';
  return names.slice(0, 6).map((x) => oneLine(x)).join(', ') + more;
}

/** Whether `ip` is a host address (not the network or broadcast address) of net/len. */
function hostOf(net: number, len: number, ip: number): boolean {
  const mask = (0xffffffff << (32 - len)) >>> 0;
  return ((ip & mask) >>> 0) === net && ip !== net && ip !== ((net | ~mask) >>> 0);
}

/** `nodes`: the compute nodes of a cluster, all on one fabric subnet. */
function parseNodes(v: unknown, file: string): NodeSpec[] {
  check(Array.isArray(v) && v.length > 0, file, 'nodes', 'expected a non-empty list of {name, fabric_ip}, or no "nodes" for one compute node');
  check(v.length <= MAX_NODES, file, 'nodes', `${v.length} nodes: the emulator runs at most ${MAX_NODES}`);
  const nodes: NodeSpec[] = [];
  v.forEach((n: unknown, i: number) => {
    const f = `nodes[${i}]`;
    check(typeof n === 'object' && n !== null && !Array.isArray(n), file, f, 'expected {name, fabric_ip, fabric_interface, encapsulations}');
    const o = n as Record<string, unknown>;
    onlyKeys(o, ['name', 'fabric_ip', 'fabric_interface', 'encapsulations'], file, f);
    check(typeof o.name === 'string' && NAME_RE.test(o.name), file, `${f}.name`, 'expected a name of letters, digits, _ . - (at most 32)');
    const twin = nodes.findIndex((x) => x.name === o.name);
    check(twin < 0, file, `${f}.name`, `node ${o.name} is also nodes[${twin}]; give each node its own name`);
    const m = typeof o.fabric_ip === 'string' ? /^(.+)\/(\d{1,2})$/.exec(o.fabric_ip) : null;
    const ip = m ? ipParse(m[1]) : -1;
    const len = m ? Number(m[2]) : -1;
    check(ip >= 0 && len >= 8 && len <= 30, file, `${f}.fabric_ip`, `${show(o.fabric_ip)} is not the node's fabric address with its prefix, like 192.168.50.11/24 (prefix 8 to 30)`);
    const ipStr = m ? m[1] : '';
    const mask = (0xffffffff << (32 - len)) >>> 0;
    const net = (ip & mask) >>> 0;
    check(hostOf(net, len, ip), file, `${f}.fabric_ip`, `${ipStr} is not a host address of ${ipString(net)}/${len}`);
    const same = nodes.findIndex((x) => x.fabricIp === ip);
    check(same < 0, file, `${f}.fabric_ip`, `${ipStr} is also nodes[${same}] (${nodes[same]?.name}); give each node its own fabric address`);
    if (nodes.length > 0) {
      const n0 = nodes[0];
      const net0 = (n0.fabricIp & ((0xffffffff << (32 - n0.prefixLen)) >>> 0)) >>> 0;
      check(len === n0.prefixLen && net === net0, file, `${f}.fabric_ip`,
        `${o.fabric_ip as string} is not on the fabric subnet ${ipString(net0)}/${n0.prefixLen} of nodes[0] (${n0.name}); the emulator's fabric is one L2 segment: put every node on that subnet`);
    }
    const ifname = o.fabric_interface === undefined ? 'eth1' : o.fabric_interface;
    check(typeof ifname === 'string' && IFNAME_RE.test(ifname), file, `${f}.fabric_interface`, `${show(o.fabric_interface)} is not an interface name (1 to 15 characters)`);
    const encapsulations = o.encapsulations === undefined ? [...ENCAPS] : parseEncapList(o.encapsulations, file, `${f}.encapsulations`, false);
    nodes.push({ name: o.name, fabricIp: ip, fabricIpStr: ipStr, prefixLen: len, fabricInterface: ifname, encapsulations });
  });
  return nodes;
}

/**
 * The VNI checks of vxlan_network_identifier_mode "configured" (topo.global): in a cluster, every network
 * needs its vxlan_network_identifier (a bare-metal host's network first); and no two networks share one.
 * In automatic mode the VNI is the network id and the configured values are ignored. topologyFrom calls
 * it; call it again after replacing topo.global (--global-config). `file` is the topology file.
 * @throws UserError naming the network's field.
 */
export function checkVniMode(topo: Topology, file: string): void {
  if (topo.global.vxlanMode !== 'configured') return;
  const mode = 'vxlan_network_identifier_mode is "configured"';
  if (topo.nodes.length > 0) {
    topo.bareMetal.forEach((b, k) => {
      const i = topo.networks.findIndex((n) => n.name === b.network);
      check(i < 0 || topo.networks[i].vxlanId > 0, file, `bare_metal[${k}].network`,
        `${b.network} has no vxlan_network_identifier, and a bare-metal host is reached by VXLAN (${mode}): give networks[${i}] one (1 to ${MAX_VNI})`);
    });
  }
  const seen = new Map<number, number>();
  topo.networks.forEach((n, i) => {
    const f = `networks[${i}].vxlan_network_identifier`;
    check(n.vxlanId > 0 || topo.nodes.length === 0, file, f, `missing: ${mode}, so every network of a cluster needs its VNI: give it one (1 to ${MAX_VNI}), or make the mode "automatic"`);
    if (n.vxlanId === 0) return;
    const j = seen.get(n.vxlanId);
    check(j === undefined, file, f, `VNI clash: ${f} ${n.vxlanId} is also networks[${j}] (${topo.networks[j as number]?.name}); give each network its own`);
    seen.set(n.vxlanId, i);
  });
}

export function tapName(name: string): string {
  const h = fnv(name).toString(16).padStart(8, '0');
  return `tap${h}-${(fnv(`${name}/${h}`) & 0xff).toString(16).padStart(2, '0')}`;
}

function hostIn(nw: Network, ip: number): boolean {
  const mask = (0xffffffff << (32 - nw.prefixLen)) >>> 0;
  return ((ip & mask) >>> 0) === nw.net && ip !== nw.net && ip !== ((nw.net | ~mask) >>> 0) && ip !== nw.gateway;
}

/** Validate a parsed topology; `file` names it in errors, `baseDir` resolves the object files it names. */
export function topologyFrom(raw: unknown, file: string, baseDir = '.'): Topology {
  check(typeof raw === 'object' && raw !== null && !Array.isArray(raw), file, '(top)', 'expected an object with "networks" and "vms"');
  const top = raw as Record<string, unknown>;
  onlyKeys(top, ['nodes', 'networks', 'vms', 'bare_metal', 'network_policies', 'global_vrouter_config', 'route_source', 'bgp'], file, '(top)');
  check(Array.isArray(top.networks) && top.networks.length > 0, file, 'networks', 'expected a non-empty list of {name, subnet, gateway}');
  check(Array.isArray(top.vms), file, 'vms', 'expected a list of {name, ip, network}');
  // The checks below compare each network and VM with the others: bound the lists so that a generated
  // file cannot make them run for minutes.
  check(top.networks.length <= MAX_NETWORKS, file, 'networks', `${top.networks.length} networks: the emulator holds at most ${MAX_NETWORKS} (vr_vrfs)`);
  check(top.vms.length <= MAX_VMS, file, 'vms', `${top.vms.length} VMs: the emulator runs at most ${MAX_VMS}`);
  const notes: string[] = [];

  const policies = new Map<string, NetworkPolicy>();
  if (top.network_policies !== undefined) {
    check(Array.isArray(top.network_policies), file, 'network_policies', 'expected a list of network-policy objects or files');
    top.network_policies.forEach((p: unknown, k: number) => {
      const src = inlineOrFile(p, baseDir, file, `network_policies[${k}]`);
      const pol = parseNetworkPolicy(src.value, src.where, src.field === '(top)' ? 'network-policy' : src.field);
      check(!policies.has(pol.name), file, `network_policies[${k}]`, `policy ${oneLine(pol.name)} is defined twice`);
      policies.set(pol.name, pol);
    });
  }
  let global = GLOBAL_VROUTER_CONFIG_DEFAULTS;
  if (top.global_vrouter_config !== undefined) {
    const src = inlineOrFile(top.global_vrouter_config, baseDir, file, 'global_vrouter_config');
    global = parseGlobalVrouterConfig(src.value, src.where, src.field === '(top)' ? 'global-vrouter-config' : src.field);
    notes.push(...global.ignored.map((x) => `${src.where}: ${x}: ignored`));
  }

  const nodes = top.nodes === undefined ? [] : parseNodes(top.nodes, file);
  const nodeNames = nodes.map((n) => n.name);
  /** A host's `node`: one of the nodes, or `dflt` when not given ('' without nodes; null: it must be given). */
  const nodeOf = (v: unknown, f: string, dflt: string | null): string => {
    if (nodes.length === 0) {
      check(v === undefined, file, f, 'the topology has no nodes list (one compute node); add a nodes list or remove node');
      return '';
    }
    if (v === undefined) {
      check(dflt !== null, file, f, `missing: the topology has ${nodes.length} nodes (${nameList(nodeNames)}); say which one the VM runs on`);
      return dflt;
    }
    check(typeof v === 'string' && nodeNames.includes(v), file, f, `${show(v)} is not one of the nodes (${nameList(nodeNames)})`);
    return v;
  };

  const networks: Network[] = [];
  const outsideRaw: { o: Record<string, unknown>; nw: Network; f: string }[] = [];
  top.networks.forEach((n: unknown, i: number) => {
    const f = `networks[${i}]`;
    check(typeof n === 'object' && n !== null, file, f, 'expected {name, subnet, gateway}');
    const o = n as Record<string, unknown>;
    onlyKeys(o, ['name', 'subnet', 'gateway', 'router_external', 'outside', 'network_policy_refs', 'vxlan_network_identifier'], file, f);
    check(typeof o.name === 'string' && NAME_RE.test(o.name), file, `${f}.name`, 'expected a name of letters, digits, _ . - (at most 32)');
    check(!networks.some((x) => x.name === o.name), file, `${f}.name`, `network ${String(o.name)} is defined twice`);
    const m = typeof o.subnet === 'string' ? /^(.+)\/(\d{1,2})$/.exec(o.subnet) : null;
    const net = m ? ipParse(m[1]) : -1;
    const len = m ? Number(m[2]) : -1;
    check(net >= 0 && len >= 8 && len <= 30, file, `${f}.subnet`, `${show(o.subnet)} is not an IPv4 subnet like 10.1.1.0/24 (prefix 8 to 30)`);
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    check(((net & mask) >>> 0) === net, file, `${f}.subnet`, `${o.subnet} has host bits set; write ${ipString((net & mask) >>> 0)}/${len}`);
    const gw = ipParse(o.gateway);
    check(gw >= 0, file, `${f}.gateway`, `${show(o.gateway)} is not an IPv4 address`);
    check(((gw & mask) >>> 0) === net && gw !== net && gw !== ((net | ~mask) >>> 0), file, `${f}.gateway`, `${o.gateway} is not a host address of ${o.subnet}`);
    for (const other of networks) {
      const m2 = (0xffffffff << (32 - Math.min(len, other.prefixLen))) >>> 0;
      check(((net & m2) >>> 0) !== ((other.net & m2) >>> 0), file, `${f}.subnet`, `${o.subnet} overlaps ${other.name} (${other.subnet})`);
    }
    check(o.router_external === undefined || typeof o.router_external === 'boolean', file, `${f}.router_external`, 'expected true or false');
    const refs = parsePolicyRefs(o.network_policy_refs, file, `${f}.network_policy_refs`);
    refs.forEach((r, k) => check(policies.has(r), file, `${f}.network_policy_refs[${k}]`, `no network policy ${oneLine(r)} in network_policies`));
    const vni = o.vxlan_network_identifier ?? 0;
    check(o.vxlan_network_identifier === undefined || (Number.isInteger(vni) && (vni as number) >= 1 && (vni as number) <= MAX_VNI), file, `${f}.vxlan_network_identifier`,
      `${show(o.vxlan_network_identifier)}: expected a VNI, an integer 1 to ${MAX_VNI} (24 bits; 0 is not a VNI)`);
    const nw: Network = {
      name: o.name, fqName: vnFqName(o.name), net, prefixLen: len, gateway: gw, subnet: o.subnet as string, gatewayStr: o.gateway as string,
      routerExternal: o.router_external === true, policies: refs, vxlanId: vni as number,
    };
    networks.push(nw);
    if (o.outside !== undefined) {
      check(nw.routerExternal, file, `${f}.outside`, 'only a router_external network has outside hosts');
      check(typeof o.outside === 'object' && o.outside !== null, file, `${f}.outside`, 'expected {namespace, ip}');
      outsideRaw.push({ o: o.outside as Record<string, unknown>, nw, f: `${f}.outside` });
    }
  });

  const used = new Map<number, string>(); // addresses taken
  const hosts: HostSpec[] = [];
  const host = (o: Record<string, unknown>, f: string, nw: Network, name: string, defaultNs: string, defaultNode: string | null): HostSpec => {
    const ip = ipParse(o.ip);
    check(ip >= 0, file, `${f}.ip`, `${show(o.ip)} is not an IPv4 address`);
    check(hostIn(nw, ip), file, `${f}.ip`, ip === nw.gateway ? `${o.ip} is the gateway of ${nw.name}` : `${o.ip} is not a host address of ${nw.name} (${nw.subnet})`);
    check(!used.has(ip), file, `${f}.ip`, `${o.ip} is also ${used.get(ip)}`);
    used.set(ip, f);
    const mac = macFrom(o.mac, file, `${f}.mac`, ip);
    const macStr = Array.from(mac, (x) => x.toString(16).padStart(2, '0')).join(':');
    check(!hosts.some((x) => x.macStr === macStr), file, `${f}.mac`, `${macStr} is given twice`);
    check(macStr !== '00:00:5e:00:01:00', file, `${f}.mac`, 'that is the vRouter MAC');
    const mtu = o.mtu === undefined ? 1500 : o.mtu;
    check(Number.isInteger(mtu) && (mtu as number) >= 576 && (mtu as number) <= 9000, file, `${f}.mtu`, `${show(o.mtu)}: expected an MTU from 576 to 9000`);
    if (o.namespace !== undefined) check(typeof o.namespace === 'string' && NAME_RE.test(o.namespace), file, `${f}.namespace`, 'expected a namespace name');
    check(o.kind === undefined || o.kind === 'netns' || o.kind === 'qemu', file, `${f}.kind`, `${show(o.kind)}: expected "netns" (the default) or "qemu"`);
    if (o.attach !== undefined) {
      check(typeof o.attach === 'string' && IFNAME_RE.test(o.attach), file, `${f}.attach`, `${show(o.attach)} is not an interface name (1 to 15 characters)`);
      check(o.kind === undefined && o.namespace === undefined, file, `${f}.attach`, 'an attached interface has no "kind" and no "namespace": the VM is whatever is behind the interface');
      check(!hosts.some((x) => x.tap === o.attach), file, `${f}.attach`, `interface ${o.attach} is attached twice`);
    }
    const kind: HostKind = o.attach !== undefined ? 'attach' : o.kind === 'qemu' ? 'qemu' : 'netns';
    check(kind !== 'qemu' || o.namespace === undefined, file, `${f}.namespace`, 'a qemu guest has no namespace');
    const ns = kind === 'netns' ? ((o.namespace as string | undefined) ?? defaultNs) : '';
    check(ns === '' || !hosts.some((x) => x.namespace === ns), file, `${f}.namespace`, `namespace ${ns} is used twice`);
    const node = nodeOf(o.node, `${f}.node`, defaultNode);
    let guest: HostSpec['guest'];
    if (kind === 'qemu') {
      check(o.run === undefined || typeof o.run === 'string', file, `${f}.run`, 'expected the shell commands the guest runs, as one string');
      const mem = o.memory_mb === undefined ? 256 : o.memory_mb;
      check(Number.isInteger(mem) && (mem as number) >= 128 && (mem as number) <= 4096, file, `${f}.memory_mb`, `${show(o.memory_mb)}: expected MiB from 128 to 4096`);
      guest = { run: (o.run as string | undefined) ?? '', memoryMb: mem as number };
    } else {
      check(o.run === undefined && o.memory_mb === undefined, file, `${f}.${o.run !== undefined ? 'run' : 'memory_mb'}`, 'only a "kind": "qemu" VM has these');
    }
    const h: HostSpec = {
      name, ip, ipStr: o.ip as string, mac, macStr, network: nw.name, mtu: mtu as number, kind, namespace: ns,
      nsExisting: kind === 'netns' && o.namespace !== undefined, tap: kind === 'attach' ? (o.attach as string) : tapName(name), guest,
      node,
    };
    hosts.push(h);
    return h;
  };

  const vms: VmSpec[] = [];
  top.vms.forEach((v: unknown, i: number) => {
    const f = `vms[${i}]`;
    check(typeof v === 'object' && v !== null, file, f, 'expected {name, ip, network}');
    const o = v as Record<string, unknown>;
    onlyKeys(o, ['name', 'ip', 'mac', 'network', 'mtu', 'kind', 'namespace', 'attach', 'run', 'memory_mb', 'floating_ips', 'virtual_machine_interface', 'node'], file, f);
    check(typeof o.name === 'string' && NAME_RE.test(o.name), file, `${f}.name`, 'expected a name of letters, digits, _ . - (at most 32)');
    const twin = vms.findIndex((x) => x.name === o.name);
    check(twin < 0, file, `${f}.name`, `VM ${String(o.name)} is defined twice (also vms[${twin}]); a VM runs on one node: give each VM its own name`);
    const nw = networks.find((n) => n.name === o.network);
    check(nw !== undefined, file, `${f}.network`, `${show(o.network)} is not one of the networks (${networks.map((n) => n.name).join(', ')})`);
    const h = host(o, f, nw, o.name, `vm-${o.name}`, nodes.length === 1 ? nodes[0].name : null);
    let fatFlow: [number, number][] = [];
    if (o.virtual_machine_interface !== undefined) {
      const src = inlineOrFile(o.virtual_machine_interface, baseDir, file, `${f}.virtual_machine_interface`);
      fatFlow = parseVmi(src.value, src.where, src.field === '(top)' ? 'virtual-machine-interface' : src.field).fatFlow;
    }
    const floatingIps: VmSpec['floatingIps'] = [];
    if (o.floating_ips !== undefined) {
      check(Array.isArray(o.floating_ips), file, `${f}.floating_ips`, 'expected a list of addresses of router_external networks');
      o.floating_ips.forEach((a: unknown, k: number) => {
        const ff = `${f}.floating_ips[${k}]`;
        const ip = ipParse(a);
        check(ip >= 0, file, ff, `${show(a)} is not an IPv4 address`);
        const pub = networks.find((n) => n.routerExternal && hostIn(n, ip));
        check(pub !== undefined, file, ff, `${a as string} is not a host address of a router_external network`);
        check(!used.has(ip), file, ff, `${a as string} is also ${used.get(ip)}`);
        used.set(ip, ff);
        floatingIps.push({ ip, ipStr: a as string, network: pub.name });
      });
    }
    vms.push({ ...h, fatFlow, floatingIps });
  });
  const outside: HostSpec[] = outsideRaw.map(({ o, nw, f }) => {
    onlyKeys(o, ['namespace', 'ip', 'mac', 'mtu', 'node'], file, f);
    check(typeof o.namespace === 'string' && NAME_RE.test(o.namespace), file, `${f}.namespace`, 'expected a namespace name for the outside host');
    return host({ ...o, namespace: undefined }, f, nw, `${nw.name}-outside`, o.namespace as string, nodes[0]?.name ?? '');
  });

  const bareMetal: BareMetalSpec[] = [];
  if (top.bare_metal !== undefined) {
    check(nodes.length > 0, file, 'bare_metal', 'a bare-metal host is reached over the fabric by VXLAN, and the topology has no nodes list; add a nodes list or remove bare_metal');
    check(Array.isArray(top.bare_metal), file, 'bare_metal', 'expected a list of {name, vtep_ip, ip, network}');
    check(top.bare_metal.length <= MAX_BARE_METAL, file, 'bare_metal', `${top.bare_metal.length} bare-metal hosts: the emulator holds at most ${MAX_BARE_METAL}`);
    const n0 = nodes[0];
    const fabricNet = (n0.fabricIp & ((0xffffffff << (32 - n0.prefixLen)) >>> 0)) >>> 0;
    const fabric = `${ipString(fabricNet)}/${n0.prefixLen}`;
    const namespaces = new Map<string, string>();
    for (const h of hosts) if (h.namespace !== '') namespaces.set(h.namespace, h.name);
    top.bare_metal.forEach((b: unknown, k: number) => {
      const f = `bare_metal[${k}]`;
      check(typeof b === 'object' && b !== null && !Array.isArray(b), file, f, 'expected {name, vtep_ip, ip, network}');
      const o = b as Record<string, unknown>;
      onlyKeys(o, ['name', 'vtep_ip', 'ip', 'network', 'mac', 'namespace', 'vtep_namespace', 'mtu'], file, f);
      check(typeof o.name === 'string' && NAME_RE.test(o.name), file, `${f}.name`, 'expected a name of letters, digits, _ . - (at most 32)');
      const vm = vms.findIndex((x) => x.name === o.name);
      check(vm < 0, file, `${f}.name`, `${o.name} is also vms[${vm}]; give each host its own name`);
      check(!hosts.some((x) => x.name === o.name), file, `${f}.name`, `${o.name} is also the name of an outside host; give each host its own name`);
      const twin = bareMetal.findIndex((x) => x.name === o.name);
      check(twin < 0, file, `${f}.name`, `${o.name} is also bare_metal[${twin}]; give each host its own name`);
      const nw = networks.find((n) => n.name === o.network);
      check(nw !== undefined, file, `${f}.network`, `${show(o.network)} is not one of the networks (${nameList(networks.map((n) => n.name))})`);
      const ip = ipParse(o.ip);
      check(ip >= 0, file, `${f}.ip`, `${show(o.ip)} is not an IPv4 address`);
      check(hostIn(nw, ip), file, `${f}.ip`, ip === nw.gateway ? `${o.ip} is the gateway of ${nw.name}` : `${o.ip} is not a host address of ${nw.name} (${nw.subnet})`);
      check(!used.has(ip), file, `${f}.ip`, `${o.ip} is also ${used.get(ip)}; give the bare-metal host its own address`);
      used.set(ip, f);
      const mac = macFrom(o.mac, file, `${f}.mac`, ip);
      const macStr = Array.from(mac, (x) => x.toString(16).padStart(2, '0')).join(':');
      check(macStr !== '00:00:5e:00:01:00', file, `${f}.mac`, 'that is the vRouter MAC');
      const macTwin = hosts.find((x) => x.macStr === macStr) ?? bareMetal.find((x) => x.macStr === macStr);
      check(macTwin === undefined, file, `${f}.mac`, `${macStr} is also ${macTwin?.name}'s; give each host its own MAC`);
      const mtu = o.mtu === undefined ? 1500 : o.mtu;
      check(Number.isInteger(mtu) && (mtu as number) >= 576 && (mtu as number) <= 9000, file, `${f}.mtu`, `${show(o.mtu)}: expected an MTU from 576 to 9000`);
      const nsOf = (key: 'namespace' | 'vtep_namespace', dflt: string): string => {
        const v = o[key];
        check(v === undefined || (typeof v === 'string' && NAME_RE.test(v)), file, `${f}.${key}`, `${show(v)}: expected a namespace name of letters, digits, _ . - (at most 32)`);
        const ns = (v as string | undefined) ?? dflt;
        const other = namespaces.get(ns);
        check(other === undefined, file, `${f}.${key}`, `namespace ${ns} is also ${other}'s; give each namespace its own name`);
        namespaces.set(ns, key === 'namespace' ? `${o.name}` : `${o.name}'s VTEP`);
        return ns;
      };
      const namespace = nsOf('namespace', `bms-${o.name}`);
      const vtepNamespace = nsOf('vtep_namespace', `vtep-${o.name}`);
      const vtepIp = ipParse(o.vtep_ip);
      check(vtepIp >= 0, file, `${f}.vtep_ip`, `${show(o.vtep_ip)} is not an IPv4 address (the VTEP's address on the fabric, ${fabric})`);
      check(hostOf(fabricNet, n0.prefixLen, vtepIp), file, `${f}.vtep_ip`, `${o.vtep_ip} is not a host address of the fabric subnet ${fabric} (the nodes' subnet)`);
      const node = nodes.findIndex((x) => x.fabricIp === vtepIp);
      check(node < 0, file, `${f}.vtep_ip`, `${o.vtep_ip} is the fabric address of nodes[${node}] (${nodes[node]?.name}); give the VTEP its own address`);
      const vtep = bareMetal.findIndex((x) => x.vtepIp === vtepIp);
      check(vtep < 0, file, `${f}.vtep_ip`, `${o.vtep_ip} is also the VTEP of bare_metal[${vtep}] (${bareMetal[vtep]?.name}); give each VTEP its own address`);
      bareMetal.push({
        name: o.name, ip, ipStr: o.ip as string, mac, macStr, network: nw.name, mtu: mtu as number, namespace, vtepNamespace, vtepIp, vtepIpStr: o.vtep_ip as string,
      });
    });
  }
  const { routeSource, bgp } = parseRouteSource(top, nodes, bareMetal, file);
  const topo: Topology = { networks, vms, outside, policies, global, nodes, bareMetal, notes, routeSource, bgp };
  checkVniMode(topo, file);
  return topo;
}

/**
 * One VM of network `nw` made at run time (vif --add, a vCenter port), validated as a topology file's VM
 * is (its address a host of the subnet, the MAC's syntax). @throws UserError naming `where`.
 */
export function runtimeVm(nw: Network, vm: { name: string; ip: string; mac: string; attach: string }, where: string): VmSpec {
  return topologyFrom({ networks: [{ name: nw.name, subnet: nw.subnet, gateway: nw.gatewayStr }], vms: [{ ...vm, network: nw.name }] }, where).vms[0];
}

/**
 * Read and validate a topology file; `from` validates the parsed JSON (the testbed adds its own checks
 * to topologyFrom's).
 */
export function readTopology(file: string, from: (raw: unknown, file: string, baseDir: string) => Topology = topologyFrom): Topology {
  // Bounded: a topology is kilobytes; a wrong path (a capture, /dev/zero) must not be read whole.
  const text = readInputFile(file, (problem, enoent) => (enoent ? `${file}: no such topology file` : `${file}: ${problem.replace(/^cannot read it/, 'cannot read the topology')}`));
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    // One line: V8 quotes the input in its message, newlines and all.
    throw new UserError(`${file}: not valid JSON (${jsonErrorLine(e)})`);
  }
  return from(raw, file, path.dirname(file));
}

/** The BGP defaults: Contrail's AS, BGP's graceful-restart and hold times as gobgpd's, gobgpd's API port. */
export const BGP_DEFAULTS = { as: 64512, restartTime: 120, holdTime: 90, apiPort: 50051 };

/**
 * `route_source` ("static", the default, or "bgp") and `bgp`: {as, reflectors, graceful_restart_time,
 * hold_time, api_port}. The reflector defaults to the last host address of the fabric subnet (where the
 * testbed puts it); every reflector must be on the fabric and no node's or VTEP's address.
 */
function parseRouteSource(top: Record<string, unknown>, nodes: NodeSpec[], bareMetal: BareMetalSpec[], file: string): { routeSource: 'static' | 'bgp'; bgp?: BgpSpec } {
  const rs = top.route_source ?? 'static';
  check(rs === 'static' || rs === 'bgp', file, 'route_source', `${show(top.route_source)}: expected "static" (routes derived from this file) or "bgp" (learned over BGP)`);
  if (rs === 'static') {
    check(top.bgp === undefined, file, 'bgp', 'route_source is "static": remove the bgp section, or set "route_source": "bgp"');
    return { routeSource: 'static' };
  }
  check(nodes.length > 0, file, 'route_source', '"bgp" needs a cluster: add a nodes list');
  const b = top.bgp ?? {};
  check(typeof b === 'object' && b !== null && !Array.isArray(b), file, 'bgp', 'expected {"as": 64512, "reflectors": ["192.168.50.254"]}');
  const o = b as Record<string, unknown>;
  onlyKeys(o, ['as', 'reflectors', 'graceful_restart_time', 'hold_time', 'api_port'], file, 'bgp');
  const int = (k: string, dflt: number, min: number, max: number, what: string): number => {
    const v = o[k] ?? dflt;
    check(Number.isInteger(v) && (v as number) >= min && (v as number) <= max, file, `bgp.${k}`, `${show(o[k])}: expected ${what}, an integer ${min} to ${max}`);
    return v as number;
  };
  const as = int('as', BGP_DEFAULTS.as, 1, 4294967295, 'an AS number (Contrail\'s default is 64512)');
  check(as !== 23456, file, 'bgp.as', '23456 is AS_TRANS, not an AS; give the cluster\'s AS (Contrail\'s default is 64512)');
  const restartTime = int('graceful_restart_time', BGP_DEFAULTS.restartTime, 0, 4095, 'seconds (the 12-bit restart time of BGP graceful restart; 0: none, routes go with the session)');
  const holdTime = int('hold_time', BGP_DEFAULTS.holdTime, 3, 65535, 'seconds');
  const apiPort = int('api_port', BGP_DEFAULTS.apiPort, 1, 65535, 'a TCP port');
  const n0 = nodes[0];
  const mask = (0xffffffff << (32 - n0.prefixLen)) >>> 0;
  const net = (n0.fabricIp & mask) >>> 0;
  const fabric = `${ipString(net)}/${n0.prefixLen}`;
  let reflectorsStr: string[];
  if (o.reflectors === undefined) {
    reflectorsStr = [ipString(((net | ~mask) - 1) >>> 0)];
  } else {
    check(Array.isArray(o.reflectors) && o.reflectors.length >= 1 && o.reflectors.length <= 2, file, 'bgp.reflectors', 'expected a list of one or two route reflector addresses on the fabric, e.g. ["192.168.50.254"]');
    reflectorsStr = o.reflectors as string[];
  }
  const reflectors = reflectorsStr.map((r, k) => {
    const ip = ipParse(r);
    const f = `bgp.reflectors[${k}]`;
    check(ip >= 0, file, f, `${show(r)} is not an IPv4 address`);
    check(hostOf(net, n0.prefixLen, ip), file, f, `${r} is not a host address of the fabric subnet ${fabric}: the nodes reach the reflector over the fabric`);
    const node = nodes.find((x) => x.fabricIp === ip);
    check(!node, file, f, `${r} is node ${node?.name}'s fabric address; the reflector needs its own`);
    const bm = bareMetal.find((x) => x.vtepIp === ip);
    check(!bm, file, f, `${r} is the VTEP of bare-metal host ${bm?.name}; the reflector needs its own address`);
    return ip;
  });
  return { routeSource: 'bgp', bgp: { as, reflectors, reflectorsStr, restartTime, holdTime, apiPort } };
}
