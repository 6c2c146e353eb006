/**
 * The Contrail configuration objects the agent uses, in the Contrail API's JSON shape (the body of
 * `GET /<type>/<uuid>`, with or without its `{"<type>": …}` wrapper): global-vrouter-config,
 * network-policy, virtual-machine-interface (fat-flow protocols), floating-ip (reference
 * vrouter-agent.md §4–§7). Each parser validates and names the field of a bad value.
 * @module
 */
import * as path from 'path';
import { UserError } from '../errors';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../dp/defs';
import { ipParse } from '../lib/ipv4';
import { jsonErrorLine, oneLine, readInputFile, show } from '../lib/input';
import { ENCAPS, type Encap } from '../lib/topology-types';

/** An aging entry of flow_aging_timeout_list. */
export interface AgingTimeout {
  proto: number;
  port: number;
  timeoutS: number;
}

export interface GlobalVrouterConfig {
  /** flow_export_rate; unset → 1000 (the 2.22 default, GlobalVrouter::kDefaultFlowExportRate). */
  flowExportRate: number;
  /** flow_aging_timeout_list, protocol strings encoded as the 2.22 agent does. */
  agingTimeouts: AgingTimeout[];
  /** Entries the 2.22 agent ignores (a protocol it does not know), for the log. */
  ignored: string[];
  /** encapsulation_priorities; unset → the provisioning default MPLSoUDP, MPLSoGRE, VXLAN (provision_encap.py). */
  encapsulationPriorities: Encap[];
  /** vxlan_network_identifier_mode: anything but "configured" is automatic (VNI = the network id). */
  vxlanMode: 'automatic' | 'configured';
}

export const GLOBAL_VROUTER_CONFIG_DEFAULTS: GlobalVrouterConfig = {
  flowExportRate: 1000, agingTimeouts: [], ignored: [], encapsulationPriorities: ['MPLSoUDP', 'MPLSoGRE', 'VXLAN'], vxlanMode: 'automatic',
};

/** A rule of a network policy (PolicyRuleType), compiled for matching. */
export interface PolicyRule {
  uuid: string;
  /** '>' one way, '<>' both ways. */
  bidir: boolean;
  /** IP protocol, or −1 for any. */
  proto: number;
  src: Address[];
  dst: Address[];
  srcPorts: [number, number][];
  dstPorts: [number, number][];
  pass: boolean;
  log: boolean;
}

export type Address =
  | { kind: 'any' }
  | { kind: 'local' }
  | { kind: 'vn'; vn: string }
  | { kind: 'subnet'; net: number; len: number };

export interface NetworkPolicy {
  /** fq-name joined with ':' (default-domain:admin:NAME when only a name is given). */
  name: string;
  rules: PolicyRule[];
}

export interface Vmi {
  /** virtual_machine_interface_fat_flow_protocols: (protocol, port) pairs. */
  fatFlow: [number, number][];
}

type Obj = Record<string, unknown>;

function fail(where: string, field: string, msg: string): never {
  throw new UserError(`${where}: ${field}: ${msg}`);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The object itself, unwrapped from {"<type>": {...}} when wrapped. */
function unwrap(v: unknown, type: string, where: string, field: string): Obj {
  if (!isObj(v)) fail(where, field, `expected a ${type} object`);
  const inner = v[type];
  return isObj(inner) && Object.keys(v).length === 1 ? inner : v;
}

/**
 * A value that may be given inline or as a path (relative to `baseDir`) to a JSON file.
 * @returns the parsed value and where it came from (for error lines).
 */
export function inlineOrFile(v: unknown, baseDir: string, where: string, field: string): { value: unknown; where: string; field: string } {
  if (typeof v !== 'string') return { value: v, where, field };
  const file = path.resolve(baseDir, v);
  // Bounded read; the path is the user's, so it is shown on one short line.
  const text = readInputFile(file, (problem) => `${where}: ${field}: ${oneLine(v, 200)}: ${problem}`);
  try {
    return { value: JSON.parse(text), where: file, field: '(top)' };
  } catch (e) {
    fail(file, '(top)', `not valid JSON (${jsonErrorLine(e)})`);
  }
}

/** Protocol names of flow_aging_timeout_list as the 2.22 agent encodes them (§4.2); −1 = not accepted. */
export function agingProtocol(s: unknown): number {
  if (s === 'tcp' || s === 'TCP') return IPPROTO_TCP;
  if (s === 'udp' || s === 'UDP') return IPPROTO_UDP;
  if (s === 'icmp' || s === 'ICMP') return IPPROTO_ICMP;
  if (s === 'all') return 0;
  return -1;
}

/** Protocol names of fat-flow entries (ProtocolStringToInt): tcp/udp/sctp/icmp, else a number. */
export function fatFlowProtocol(s: unknown): number {
  if (s === 'tcp' || s === 'TCP') return IPPROTO_TCP;
  if (s === 'udp' || s === 'UDP') return IPPROTO_UDP;
  if (s === 'sctp' || s === 'SCTP') return 132;
  if (s === 'icmp' || s === 'ICMP') return IPPROTO_ICMP;
  if (typeof s === 'number' && Number.isInteger(s) && s >= 0 && s <= 255) return s;
  if (typeof s === 'string' && /^\d+$/.test(s) && Number(s) <= 255) return Number(s);
  return -1;
}

function integer(v: unknown, where: string, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(where, field, `${show(v)}: expected an integer ${min}..${max}`);
  }
  return v;
}

/** global-vrouter-config. */
export function parseGlobalVrouterConfig(v: unknown, where: string, field = 'global_vrouter_config'): GlobalVrouterConfig {
  const o = unwrap(v, 'global-vrouter-config', where, field);
  const c: GlobalVrouterConfig = { ...GLOBAL_VROUTER_CONFIG_DEFAULTS, agingTimeouts: [], ignored: [] };
  if (o.flow_export_rate !== undefined) {
    c.flowExportRate = integer(o.flow_export_rate, where, `${field}.flow_export_rate`, -2147483648, 2147483647);
  }
  const list = o.flow_aging_timeout_list;
  if (list !== undefined) {
    const entries = isObj(list) ? list.flow_aging_timeout : undefined;
    if (!Array.isArray(entries)) fail(where, `${field}.flow_aging_timeout_list`, 'expected {"flow_aging_timeout": [{protocol, port, timeout_in_seconds}]}');
    if (entries.length > MAX_AGING_ENTRIES) fail(where, `${field}.flow_aging_timeout_list`, `${entries.length} entries: the emulator holds at most ${MAX_AGING_ENTRIES}`);
    entries.forEach((e: unknown, k: number) => {
      const f = `${field}.flow_aging_timeout_list.flow_aging_timeout[${k}]`;
      if (!isObj(e)) fail(where, f, 'expected {protocol, port, timeout_in_seconds}');
      const port = integer(e.port ?? 0, where, `${f}.port`, 0, 65535);
      const timeoutS = integer(e.timeout_in_seconds, where, `${f}.timeout_in_seconds`, 0, 2147483647);
      const proto = agingProtocol(e.protocol);
      if (proto < 0) {
        // The 2.22 agent accepts tcp, udp, icmp (either case) and "all"; anything else is ignored.
        c.ignored.push(`${f}.protocol ${show(e.protocol)} (the 2.22 agent knows tcp, udp, icmp, all)`);
        return;
      }
      c.agingTimeouts.push({ proto, port, timeoutS });
    });
  }
  // null is how the API shows an unset property.
  const ep = o.encapsulation_priorities;
  if (ep !== undefined && ep !== null) {
    const list = isObj(ep) ? ep.encapsulation : undefined;
    if (!Array.isArray(list)) fail(where, `${field}.encapsulation_priorities`, `expected {"encapsulation": [${ENCAPS.map((e) => JSON.stringify(e)).join(', ')}]} (in the order of preference)`);
    c.encapsulationPriorities = parseEncapList(list, where, `${field}.encapsulation_priorities.encapsulation`, true);
  }
  const mode = o.vxlan_network_identifier_mode;
  if (mode !== undefined && mode !== null) {
    const f = `${field}.vxlan_network_identifier_mode`;
    if (typeof mode !== 'string') fail(where, f, `${show(mode)}: expected "automatic" or "configured"`);
    // The 2.22 agent compares with "configured"; anything else is automatic (VNI = the network id).
    c.vxlanMode = mode === 'configured' ? 'configured' : 'automatic';
    if (mode !== 'configured' && mode !== 'automatic') c.ignored.push(`${f} ${show(mode)} (the 2.22 agent knows "configured"; anything else is automatic)`);
  }
  return c;
}

/**
 * A list of encapsulation names (encapsulation_priorities.encapsulation, a node's encapsulations): each
 * one of ENCAPS, written exactly so, and each once. `allowEmpty`: an empty list is valid.
 */
export function parseEncapList(v: unknown, where: string, field: string, allowEmpty: boolean): Encap[] {
  const valid = ENCAPS.join(', ');
  if (!Array.isArray(v) || (!allowEmpty && v.length === 0)) fail(where, field, `${show(v)}: expected a${allowEmpty ? '' : ' non-empty'} list of ${valid}`);
  const out: Encap[] = [];
  v.forEach((e: unknown, k: number) => {
    const name = ENCAPS.find((x) => x === e);
    if (name === undefined) fail(where, `${field}[${k}]`, `${show(e)} is not an encapsulation; the encapsulations are ${valid}`);
    if (out.includes(name)) fail(where, `${field}[${k}]`, `${name} is given twice; list each encapsulation once`);
    out.push(name);
  });
  return out;
}

/** A VN name as an fq-name string: "demo" → "default-domain:admin:demo". */
export function vnFqName(name: string): string {
  return name.includes(':') ? name : `default-domain:admin:${name}`;
}

function fqName(v: unknown): string | undefined {
  if (typeof v === 'string' && v.length > 0) return vnFqName(v);
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) return vnFqName((v as string[]).join(':'));
  return undefined;
}

function parseAddresses(v: unknown, where: string, f: string): Address[] {
  if (v === undefined) return [{ kind: 'any' }];
  if (!Array.isArray(v) || v.length === 0) fail(where, f, 'expected a list of addresses ({virtual_network} or {subnet: {ip_prefix, ip_prefix_len}})');
  return v.map((a: unknown, k: number): Address => {
    const af = `${f}[${k}]`;
    if (!isObj(a)) fail(where, af, 'expected an address object');
    if (a.subnet !== undefined && a.subnet !== null) {
      const s = a.subnet;
      if (!isObj(s)) fail(where, `${af}.subnet`, 'expected {ip_prefix, ip_prefix_len}');
      const net = ipParse(s.ip_prefix);
      const len = integer(s.ip_prefix_len, where, `${af}.subnet.ip_prefix_len`, 0, 32);
      if (net < 0) fail(where, `${af}.subnet.ip_prefix`, `${show(s.ip_prefix)} is not an IPv4 address`);
      const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
      return { kind: 'subnet', net: (net & mask) >>> 0, len };
    }
    if (a.security_group !== undefined && a.security_group !== null) fail(where, `${af}.security_group`, 'security groups are not supported by the emulator; use virtual_network or subnet');
    if (a.network_policy !== undefined && a.network_policy !== null) fail(where, `${af}.network_policy`, 'addresses by network policy are not supported by the emulator; use virtual_network or subnet');
    const vn = a.virtual_network;
    if (vn === 'any' || vn === undefined || vn === null) return { kind: 'any' };
    if (vn === 'local') return { kind: 'local' };
    const name = fqName(vn);
    if (!name) fail(where, `${af}.virtual_network`, `${show(vn)}: expected a virtual network fq-name, "any" or "local"`);
    return { kind: 'vn', vn: name };
  });
}

function parsePorts(v: unknown, where: string, f: string): [number, number][] {
  if (v === undefined) return [[0, 65535]];
  if (!Array.isArray(v) || v.length === 0) fail(where, f, 'expected a list of {start_port, end_port}');
  return v.map((p: unknown, k: number): [number, number] => {
    const pf = `${f}[${k}]`;
    if (!isObj(p)) fail(where, pf, 'expected {start_port, end_port}');
    const s = integer(p.start_port ?? 0, where, `${pf}.start_port`, -1, 65535);
    const e = integer(p.end_port ?? 65535, where, `${pf}.end_port`, -1, 65535);
    // −1/−1 means any port.
    if (s === -1 && e === -1) return [0, 65535];
    if (s < 0 || e < 0 || s > e) fail(where, pf, `${s}..${e} is not a port range`);
    return [s, e];
  });
}

function policyProtocol(v: unknown, where: string, f: string): number {
  if (v === undefined || v === 'any') return -1;
  if (v === 'tcp') return IPPROTO_TCP;
  if (v === 'udp') return IPPROTO_UDP;
  if (v === 'icmp') return IPPROTO_ICMP;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 255) fail(where, f, `${show(v)}: expected any, tcp, udp, icmp or a protocol number`);
  return n;
}

/** network-policy with network_policy_entries.policy_rule[]. */
export function parseNetworkPolicy(v: unknown, where: string, field: string): NetworkPolicy {
  const o = unwrap(v, 'network-policy', where, field);
  const name = fqName(o.fq_name) ?? fqName(o.name) ?? fail(where, `${field}.fq_name`, 'a network policy needs fq_name (or name)');
  const entries = o.network_policy_entries;
  const list = isObj(entries) ? entries.policy_rule : undefined;
  if (!Array.isArray(list)) fail(where, `${field}.network_policy_entries`, 'expected {"policy_rule": [...]}');
  const rules = list.map((r: unknown, k: number): PolicyRule => {
    const f = `${field}.network_policy_entries.policy_rule[${k}]`;
    if (!isObj(r)) fail(where, f, 'expected a policy rule object');
    const dir = r.direction ?? '<>';
    if (dir !== '>' && dir !== '<>') fail(where, `${f}.direction`, `${show(dir)}: expected ">" or "<>"`);
    const al = r.action_list;
    if (!isObj(al)) fail(where, `${f}.action_list`, 'expected {"simple_action": "pass"|"deny", "log": true|false}');
    if (al.simple_action !== 'pass' && al.simple_action !== 'deny') {
      fail(where, `${f}.action_list.simple_action`, `${show(al.simple_action)}: expected "pass" or "deny"`);
    }
    const uuid = typeof r.rule_uuid === 'string' ? r.rule_uuid : `${name}:${k}`;
    return {
      uuid,
      bidir: dir === '<>',
      proto: policyProtocol(r.protocol, where, `${f}.protocol`),
      src: parseAddresses(r.src_addresses, where, `${f}.src_addresses`),
      dst: parseAddresses(r.dst_addresses, where, `${f}.dst_addresses`),
      srcPorts: parsePorts(r.src_ports, where, `${f}.src_ports`),
      dstPorts: parsePorts(r.dst_ports, where, `${f}.dst_ports`),
      pass: al.simple_action === 'pass',
      log: al.log === true,
    };
  });
  return { name, rules };
}

/** Fat-flow entries per interface: what one datapath configuration record carries. */
export const MAX_FAT_FLOW_ENTRIES = 28;
/** flow_aging_timeout_list entries. */
export const MAX_AGING_ENTRIES = 1024;

/** virtual-machine-interface: the fat-flow protocols. */
export function parseVmi(v: unknown, where: string, field: string): Vmi {
  const o = unwrap(v, 'virtual-machine-interface', where, field);
  const ff = o.virtual_machine_interface_fat_flow_protocols;
  const out: Vmi = { fatFlow: [] };
  if (ff === undefined || ff === null) return out;
  const list = isObj(ff) ? ff.fat_flow_protocol : undefined;
  if (!Array.isArray(list)) fail(where, `${field}.virtual_machine_interface_fat_flow_protocols`, 'expected {"fat_flow_protocol": [{protocol, port}]}');
  if (list.length > MAX_FAT_FLOW_ENTRIES) {
    fail(where, `${field}.virtual_machine_interface_fat_flow_protocols.fat_flow_protocol`, `${list.length} entries: the emulator holds at most ${MAX_FAT_FLOW_ENTRIES} per interface`);
  }
  list.forEach((e: unknown, k: number) => {
    const f = `${field}.virtual_machine_interface_fat_flow_protocols.fat_flow_protocol[${k}]`;
    if (!isObj(e)) fail(where, f, 'expected {protocol, port}');
    const proto = fatFlowProtocol(e.protocol);
    if (proto < 0) fail(where, `${f}.protocol`, `${show(e.protocol)}: expected tcp, udp, sctp, icmp or a number`);
    const port = integer(e.port ?? 0, where, `${f}.port`, 0, 65535);
    if (!out.fatFlow.some(([p, q]) => p === proto && q === port)) out.fatFlow.push([proto, port]);
  });
  return out;
}

/** A VN's network_policy_refs ({to: fq-name, attr: {sequence: {major, minor}}}), in the order applied. */
export function parsePolicyRefs(v: unknown, where: string, field: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(where, field, 'expected a list of {"to": [fq-name], "attr": {"sequence": {"major", "minor"}}}');
  const refs = v.map((r: unknown, k: number) => {
    const f = `${field}[${k}]`;
    if (typeof r === 'string') return { name: vnFqName(r), major: k, minor: 0 };
    if (!isObj(r)) fail(where, f, 'expected {"to": [...]} or a policy name');
    const name = fqName(r.to) ?? fail(where, `${f}.to`, 'expected the policy fq-name');
    const seq = isObj(r.attr) && isObj(r.attr.sequence) ? r.attr.sequence : {};
    return { name, major: typeof seq.major === 'number' ? seq.major : k, minor: typeof seq.minor === 'number' ? seq.minor : 0 };
  });
  refs.sort((a, b) => a.major - b.major || a.minor - b.minor);
  return refs.map((r) => r.name);
}
