/**
 * The testbed's topology: virtual networks, the VMs on this compute node and the outside hosts of
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
 * @module
 */
import * as path from 'path';
import { UserError } from '../errors';
import {
  GLOBAL_VROUTER_CONFIG_DEFAULTS,
  GlobalVrouterConfig,
  NetworkPolicy,
  inlineOrFile,
  parseGlobalVrouterConfig,
  parseNetworkPolicy,
  parsePolicyRefs,
  parseVmi,
  vnFqName,
} from './contrail-config';
import { ipParse, ipString } from '../lib/ipv4';
import type { BareMetalSpec, HostKind, HostSpec, Network, NodeSpec, VmSpec } from '../lib/topology-types';
import { jsonErrorLine, oneLine, readInputFile, show } from '../lib/input';

export { ipParse, ipString };
// The host and network shapes are shared with src/io (namespaces, TAPs, guests); re-exported for the agent's users.
export type { BareMetalSpec, HostKind, HostSpec, Network, NodeSpec, VmSpec };

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

function tapName(name: string): string {
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
  onlyKeys(top, ['networks', 'vms', 'network_policies', 'global_vrouter_config'], file, '(top)');
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

  const networks: Network[] = [];
  const outsideRaw: { o: Record<string, unknown>; nw: Network; f: string }[] = [];
  top.networks.forEach((n: unknown, i: number) => {
    const f = `networks[${i}]`;
    check(typeof n === 'object' && n !== null, file, f, 'expected {name, subnet, gateway}');
    const o = n as Record<string, unknown>;
    onlyKeys(o, ['name', 'subnet', 'gateway', 'router_external', 'outside', 'network_policy_refs'], file, f);
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
    const nw: Network = {
      name: o.name, fqName: vnFqName(o.name), net, prefixLen: len, gateway: gw, subnet: o.subnet as string, gatewayStr: o.gateway as string,
      routerExternal: o.router_external === true, policies: refs, vxlanId: 0,
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
  const host = (o: Record<string, unknown>, f: string, nw: Network, name: string, defaultNs: string): HostSpec => {
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
      node: '',
    };
    hosts.push(h);
    return h;
  };

  const vms: VmSpec[] = [];
  top.vms.forEach((v: unknown, i: number) => {
    const f = `vms[${i}]`;
    check(typeof v === 'object' && v !== null, file, f, 'expected {name, ip, network}');
    const o = v as Record<string, unknown>;
    onlyKeys(o, ['name', 'ip', 'mac', 'network', 'mtu', 'kind', 'namespace', 'attach', 'run', 'memory_mb', 'floating_ips', 'virtual_machine_interface'], file, f);
    check(typeof o.name === 'string' && NAME_RE.test(o.name), file, `${f}.name`, 'expected a name of letters, digits, _ . - (at most 32)');
    check(!vms.some((x) => x.name === o.name), file, `${f}.name`, `VM ${String(o.name)} is defined twice`);
    const nw = networks.find((n) => n.name === o.network);
    check(nw !== undefined, file, `${f}.network`, `${show(o.network)} is not one of the networks (${networks.map((n) => n.name).join(', ')})`);
    const h = host(o, f, nw, o.name, `vm-${o.name}`);
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
    onlyKeys(o, ['namespace', 'ip', 'mac', 'mtu'], file, f);
    check(typeof o.namespace === 'string' && NAME_RE.test(o.namespace), file, `${f}.namespace`, 'expected a namespace name for the outside host');
    return host({ ...o, namespace: undefined }, f, nw, `${nw.name}-outside`, o.namespace as string);
  });
  return { networks, vms, outside, policies, global, nodes: [], bareMetal: [], notes };
}

/** Read and validate a topology file. */
export function readTopology(file: string): Topology {
  // Bounded: a topology is kilobytes; a wrong path (a capture, /dev/zero) must not be read whole.
  const text = readInputFile(file, (problem, enoent) => (enoent ? `${file}: no such topology file` : `${file}: ${problem.replace(/^cannot read it/, 'cannot read the topology')}`));
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    // One line: V8 quotes the input in its message, newlines and all.
    throw new UserError(`${file}: not valid JSON (${jsonErrorLine(e)})`);
  }
  return topologyFrom(raw, file, path.dirname(file));
}
