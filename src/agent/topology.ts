/**
 * The testbed's topology: virtual networks and the VMs on this compute node, read from a JSON file and
 * validated into typed objects (the agent's view of what the controller would have configured). Every
 * problem is a UserError naming the file, the field and the fix.
 *
 * ```json
 * { "networks": [{ "name": "demo", "subnet": "10.1.1.0/24", "gateway": "10.1.1.1" }],
 *   "vms": [{ "name": "vm1", "ip": "10.1.1.3", "network": "demo" },
 *           { "name": "vm2", "ip": "10.1.1.4", "network": "demo", "mac": "02:00:0a:01:01:04",
 *             "mtu": 1500, "namespace": "an-existing-netns" }] }
 * ```
 * @module
 */
import * as fs from 'fs';
import { UserError } from '../errors';

export interface Network {
  name: string;
  /** Network address as a number (a<<24|…), prefix length, gateway as a number. */
  net: number;
  prefixLen: number;
  gateway: number;
  subnet: string;
  gatewayStr: string;
}

export interface VmSpec {
  name: string;
  ip: number;
  ipStr: string;
  mac: Uint8Array;
  macStr: string;
  network: string;
  mtu: number;
  /** The namespace that is the VM. */
  namespace: string;
  /** Whether the namespace exists already (attached, never created or deleted by the emulator). */
  attach: boolean;
  /** The TAP device's name (Contrail style, tapXXXXXXXX-XX). */
  tap: string;
}

export interface Topology {
  networks: Network[];
  vms: VmSpec[];
}

/** The demo of `vrouter-emu start` without --topology. */
export const DEMO_TOPOLOGY = {
  networks: [{ name: 'demo', subnet: '10.1.1.0/24', gateway: '10.1.1.1' }],
  vms: [
    { name: 'vm1', ip: '10.1.1.3', network: 'demo' },
    { name: 'vm2', ip: '10.1.1.4', network: 'demo' },
  ],
};

export function ipParse(s: unknown): number {
  if (typeof s !== 'string') return -1;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return -1;
  const p = m.slice(1).map(Number);
  if (p.some((x) => x > 255)) return -1;
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export function ipString(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** The IP as the flow key and route tables hold it (its 4 bytes read little-endian, int32). */
export function ipKeyWord(v: number): number {
  return ((v >>> 24) | ((v >>> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24)) | 0;
}

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

function check(cond: boolean, file: string, field: string, msg: string): asserts cond {
  if (!cond) throw new UserError(`${file}: ${field}: ${msg}`);
}

function onlyKeys(o: Record<string, unknown>, allowed: string[], file: string, field: string): void {
  for (const k of Object.keys(o)) {
    check(allowed.includes(k), file, `${field}.${k}`, `unknown key; the keys are ${allowed.join(', ')}`);
  }
}

/** Validate a parsed topology; `file` names it in errors. */
export function topologyFrom(raw: unknown, file: string): Topology {
  check(typeof raw === 'object' && raw !== null && !Array.isArray(raw), file, '(top)', 'expected an object with "networks" and "vms"');
  const top = raw as Record<string, unknown>;
  onlyKeys(top, ['networks', 'vms'], file, '(top)');
  check(Array.isArray(top.networks) && top.networks.length > 0, file, 'networks', 'expected a non-empty list of {name, subnet, gateway}');
  check(Array.isArray(top.vms), file, 'vms', 'expected a list of {name, ip, network}');
  const networks: Network[] = [];
  top.networks.forEach((n: unknown, i: number) => {
    const f = `networks[${i}]`;
    check(typeof n === 'object' && n !== null, file, f, 'expected {name, subnet, gateway}');
    const o = n as Record<string, unknown>;
    onlyKeys(o, ['name', 'subnet', 'gateway'], file, f);
    check(typeof o.name === 'string' && NAME_RE.test(o.name), file, `${f}.name`, 'expected a name of letters, digits, _ . - (at most 32)');
    check(!networks.some((x) => x.name === o.name), file, `${f}.name`, `network ${String(o.name)} is defined twice`);
    const m = typeof o.subnet === 'string' ? /^(.+)\/(\d{1,2})$/.exec(o.subnet) : null;
    const net = m ? ipParse(m[1]) : -1;
    const len = m ? Number(m[2]) : -1;
    check(net >= 0 && len >= 8 && len <= 30, file, `${f}.subnet`, `${JSON.stringify(o.subnet)} is not an IPv4 subnet like 10.1.1.0/24 (prefix 8 to 30)`);
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    check(((net & mask) >>> 0) === net, file, `${f}.subnet`, `${o.subnet} has host bits set; write ${ipString((net & mask) >>> 0)}/${len}`);
    const gw = ipParse(o.gateway);
    check(gw >= 0, file, `${f}.gateway`, `${JSON.stringify(o.gateway)} is not an IPv4 address`);
    check(((gw & mask) >>> 0) === net && gw !== net && gw !== ((net | ~mask) >>> 0), file, `${f}.gateway`, `${o.gateway} is not a host address of ${o.subnet}`);
    networks.push({ name: o.name, net, prefixLen: len, gateway: gw, subnet: o.subnet as string, gatewayStr: o.gateway as string });
  });
  const vms: VmSpec[] = [];
  top.vms.forEach((v: unknown, i: number) => {
    const f = `vms[${i}]`;
    check(typeof v === 'object' && v !== null, file, f, 'expected {name, ip, network}');
    const o = v as Record<string, unknown>;
    onlyKeys(o, ['name', 'ip', 'mac', 'network', 'mtu', 'namespace'], file, f);
    check(typeof o.name === 'string' && NAME_RE.test(o.name), file, `${f}.name`, 'expected a name of letters, digits, _ . - (at most 32)');
    check(!vms.some((x) => x.name === o.name), file, `${f}.name`, `VM ${String(o.name)} is defined twice`);
    const nw = networks.find((n) => n.name === o.network);
    check(nw !== undefined, file, `${f}.network`, `${JSON.stringify(o.network)} is not one of the networks (${networks.map((n) => n.name).join(', ')})`);
    const ip = ipParse(o.ip);
    check(ip >= 0, file, `${f}.ip`, `${JSON.stringify(o.ip)} is not an IPv4 address`);
    const mask = (0xffffffff << (32 - nw.prefixLen)) >>> 0;
    check(((ip & mask) >>> 0) === nw.net && ip !== nw.net && ip !== ((nw.net | ~mask) >>> 0), file, `${f}.ip`, `${o.ip} is not a host address of ${nw.name} (${nw.subnet})`);
    check(ip !== nw.gateway, file, `${f}.ip`, `${o.ip} is the gateway of ${nw.name}`);
    check(!vms.some((x) => x.ip === ip), file, `${f}.ip`, `${o.ip} is given to two VMs`);
    let mac: Uint8Array;
    if (o.mac !== undefined) {
      const mm = typeof o.mac === 'string' ? /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(o.mac) : null;
      check(mm !== null, file, `${f}.mac`, `${JSON.stringify(o.mac)} is not a MAC address like 02:00:0a:01:01:03`);
      mac = Uint8Array.from(mm.slice(1).map((x) => parseInt(x, 16)));
      check((mac[0] & 1) === 0, file, `${f}.mac`, `${o.mac} is a multicast address; use a unicast one (even first byte)`);
      check(!mac.every((x) => x === 0), file, `${f}.mac`, 'the all-zero MAC is not usable');
    } else {
      // Locally administered, from the address: 02:00:a:b:c:d.
      mac = Uint8Array.from([0x02, 0x00, ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255]);
    }
    const macStr = Array.from(mac, (x) => x.toString(16).padStart(2, '0')).join(':');
    check(!vms.some((x) => x.macStr === macStr), file, `${f}.mac`, `${macStr} is given to two VMs`);
    check(macStr !== '00:00:5e:00:01:00', file, `${f}.mac`, 'that is the vRouter MAC');
    const mtu = o.mtu === undefined ? 1500 : o.mtu;
    check(Number.isInteger(mtu) && (mtu as number) >= 576 && (mtu as number) <= 9000, file, `${f}.mtu`, `${JSON.stringify(o.mtu)}: expected an MTU from 576 to 9000`);
    if (o.namespace !== undefined) check(typeof o.namespace === 'string' && NAME_RE.test(o.namespace), file, `${f}.namespace`, 'expected an existing namespace name');
    const h = fnv(o.name as string).toString(16).padStart(8, '0');
    const tap = `tap${h}-${(fnv(`${o.name as string}/${h}`) & 0xff).toString(16).padStart(2, '0')}`;
    vms.push({
      name: o.name as string, ip, ipStr: o.ip as string, mac, macStr, network: nw.name, mtu: mtu as number,
      namespace: (o.namespace as string | undefined) ?? `vm-${o.name as string}`, attach: o.namespace !== undefined, tap,
    });
  });
  const ns = new Set<string>();
  vms.forEach((v, i) => {
    check(!ns.has(v.namespace), file, `vms[${i}].namespace`, `namespace ${v.namespace} is used by two VMs`);
    ns.add(v.namespace);
  });
  return { networks, vms };
}

/** Read and validate a topology file. */
export function readTopology(file: string): Topology {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `${file}: no such topology file` : `${file}: cannot read the topology (${code ?? String(e)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return topologyFrom(raw, file);
}
