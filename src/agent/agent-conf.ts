/**
 * contrail-vrouter-agent.conf (INI, read with the `ini` package): the keys of the 2.22 agent that shape
 * flows (reference vrouter-agent.md §3.4, §1.2). A value of the wrong type is a UserError naming the
 * section, key and value; keys the emulator does not know are reported once (the other keys of a real
 * file — [CONTROL-NODE], [VIRTUAL-HOST-INTERFACE], … — are accepted without use).
 * @module
 */
import * as ini from 'ini';
import { UserError } from '../errors';
import { ipParse } from '../lib/ipv4';
import { oneLine, readInputFile } from '../lib/input';
import { ENCAPS, type Encap } from '../lib/topology-types';

export interface AgentConf {
  /** [DEFAULT] flow_cache_timeout, seconds (0 = the built-in 180 s). */
  flowCacheTimeout: number;
  /** [DEFAULT] disable_flow_collection: drop every export but LOG-action flows (legacy knob). */
  disableFlowCollection: boolean;
  /**
   * [DEFAULT] collectors: "host:port" endpoints (the collector's port 8086 when left out), and
   * "ipfix://host:port" ones (the IPFIX port 4739 when left out): always with their port here.
   */
  collectors: string[];
  /** [DEFAULT] http_server_port (introspect), 8085. */
  httpServerPort: number;
  /** [DEFAULT] log_flow: log exported flow records locally. */
  logFlow: boolean;
  /** [FLOWS] max_vm_flows: per-VM flow limit as a % of the flow table, 0..100 (100). */
  maxVmFlows: number;
  /** [FLOWS] max_system_linklocal_flows (2048). */
  maxSystemLinklocalFlows: number;
  /** [FLOWS] max_vm_linklocal_flows (2048, at most the system value). */
  maxVmLinklocalFlows: number;
  /** [FLOWS] tcp_flow_scan_interval, seconds (15): a full sweep of the TCP aging table. */
  tcpFlowScanInterval: number;
  /** [VIRTUAL-HOST-INTERFACE] ip (vhost0's address, the router-id), without its prefix; '' when unset. */
  vhostIp: string;
  /** [DEFAULT] tunnel_type: the encapsulation when none of encapsulation_priorities suits a peer (MPLSoGRE). */
  tunnelType: Encap;
  /** The file it came from ('' for the defaults). */
  file: string;
}

export const AGENT_CONF_DEFAULTS: Readonly<AgentConf> = Object.freeze({
  flowCacheTimeout: 0,
  disableFlowCollection: false,
  collectors: [],
  httpServerPort: 8085,
  logFlow: false,
  maxVmFlows: 100,
  maxSystemLinklocalFlows: 2048,
  maxVmLinklocalFlows: 2048,
  tcpFlowScanInterval: 15,
  vhostIp: '',
  tunnelType: 'MPLSoGRE',
  file: '',
});

/** Keys of the R2.2x agent configuration the emulator accepts but does not use. */
const KNOWN_UNUSED: Record<string, string[]> = {
  DEFAULT: [
    'log_file', 'log_level', 'log_local', 'log_category', 'log_files_count', 'log_file_size', 'use_syslog',
    'syslog_facility', 'platform', 'physical_interface_address', 'physical_interface_mac',
    'agent_mode', 'headless_mode', 'hostname', 'gateway_mode', 'xmpp_auth_enable', 'xmpp_server_cert',
    'xmpp_server_key', 'xmpp_ca_cert', 'sandesh_send_rate_limit', 'dhcp_relay_mode', 'agent_base_directory',
  ],
  FLOWS: ['thread_count', 'index_sm_log_count', 'trace_enable', 'add_tokens', 'ksync_tokens', 'del_tokens', 'update_tokens', 'latency_limit'],
};
const KNOWN_UNUSED_SECTIONS = [
  'CONTROL-NODE', 'DISCOVERY', 'DNS', 'HYPERVISOR', 'TASK', 'METADATA', 'NETWORKS', 'VIRTUAL-HOST-INTERFACE',
  'SERVICE-INSTANCE', 'SANDESH', 'RESTART', 'LLGR', 'SERVICES', 'QOS', 'QUEUE', 'GATEWAY-0', 'GATEWAY-1',
];

/** The port of a `collectors` entry without one: the collector's (CollectorPort), and IPFIX's (RFC 7011). */
export const COLLECTOR_DEFAULT_PORT = 8086;
export const IPFIX_DEFAULT_PORT = 4739;

/** A `collectors` entry as parseAgentConf keeps it, taken apart. */
export interface CollectorEndpoint {
  ipfix: boolean;
  host: string;
  port: number;
}

/**
 * Take apart a `collectors` entry of a parsed configuration ("host:port" or "ipfix://host:port", the
 * port defaulted by parseAgentConf). @throws UserError for an entry without its port.
 */
export function collectorEndpoint(entry: string): CollectorEndpoint {
  const m = /^(ipfix:\/\/)?([^\s:]+):(\d+)$/.exec(entry);
  if (!m) throw new UserError(`collectors: ${entry}: expected host:port or ipfix://host:port`);
  return { ipfix: m[1] !== undefined, host: m[2], port: Number(m[3]) };
}

type Parsed = Record<string, Record<string, unknown>>;

/**
 * A value as ini gives it (string, boolean, list for `key[]`, or a section object without a prototype,
 * for which String() would throw), as text.
 */
function str(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean' || typeof v === 'number') return String(v);
  if (Array.isArray(v)) return v.map(str).join(',');
  return v === undefined || v === null ? '' : '(a section)';
}

/**
 * Parse the text of a contrail-vrouter-agent.conf.
 * @param warn gets one line listing the keys the emulator does not know.
 * @throws UserError for a value of the wrong type.
 */
export function parseAgentConf(text: string, file: string, warn: (msg: string) => void = () => undefined): AgentConf {
  const raw = ini.parse(text) as Parsed;
  const c: AgentConf = { ...AGENT_CONF_DEFAULTS, collectors: [], file };
  const bad = (section: string, key: string, v: unknown, want: string): UserError =>
    new UserError(`${file}: [${section}] ${oneLine(key)} = ${oneLine(str(v))}: expected ${want}`);
  const uint = (section: string, key: string, max: number, want: string): number | undefined => {
    const v = raw[section]?.[key];
    if (v === undefined) return undefined;
    const s = str(v).trim();
    if (!/^\d+$/.test(s) || Number(s) > max) throw bad(section, key, v, want);
    return Number(s);
  };
  const bool = (section: string, key: string): boolean | undefined => {
    const v = raw[section]?.[key];
    if (v === undefined) return undefined;
    const s = str(v).trim().toLowerCase();
    if (s === 'true' || s === '1' || s === 'yes') return true;
    if (s === 'false' || s === '0' || s === 'no') return false;
    throw bad(section, key, v, 'true or false (or 1 / 0)');
  };
  const D = 'DEFAULT';
  const F = 'FLOWS';
  c.flowCacheTimeout = uint(D, 'flow_cache_timeout', 65535, 'seconds, an integer 0..65535 (0 = 180 s)') ?? c.flowCacheTimeout;
  c.disableFlowCollection = bool(D, 'disable_flow_collection') ?? c.disableFlowCollection;
  c.logFlow = bool(D, 'log_flow') ?? c.logFlow;
  c.httpServerPort = uint(D, 'http_server_port', 65535, 'a TCP port 0..65535') ?? c.httpServerPort;
  const col = raw[D]?.collectors;
  if (col !== undefined) {
    for (const ep of str(col).trim().split(/\s+/).filter((x) => x.length > 0)) {
      const m = /^(?:ipfix:\/\/)?([^\s:]+)(?::(\d+))?$/.exec(ep);
      if (!m || (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535))) {
        throw bad(D, 'collectors', col, 'a space-separated list of host:port (e.g. 127.0.0.1:8086)');
      }
      if (m[2] !== undefined) c.collectors.push(ep);
      else c.collectors.push(`${ep}:${ep.startsWith('ipfix://') ? IPFIX_DEFAULT_PORT : COLLECTOR_DEFAULT_PORT}`);
    }
  }
  const mvf = raw[F]?.max_vm_flows;
  if (mvf !== undefined) {
    const s = str(mvf).trim();
    if (!/^\d+(\.\d+)?$/.test(s)) throw bad(F, 'max_vm_flows', mvf, 'a percentage of the flow table, 0..100');
    // The agent clamps it to 0..100 (ComputeFlowLimits).
    c.maxVmFlows = Math.min(100, Number(s));
  }
  c.maxSystemLinklocalFlows = uint(F, 'max_system_linklocal_flows', 65535, 'an integer 0..65535') ?? c.maxSystemLinklocalFlows;
  c.maxVmLinklocalFlows = Math.min(uint(F, 'max_vm_linklocal_flows', 65535, 'an integer 0..65535') ?? c.maxVmLinklocalFlows, c.maxSystemLinklocalFlows);
  const scan = uint(F, 'tcp_flow_scan_interval', 3600, 'seconds, an integer 1..3600');
  if (scan !== undefined) {
    if (scan === 0) throw bad(F, 'tcp_flow_scan_interval', 0, 'seconds, an integer 1..3600');
    c.tcpFlowScanInterval = scan;
  }

  const tt = raw[D]?.tunnel_type;
  if (tt !== undefined) {
    // The 2.22 agent compares the name exactly: no other spelling or case.
    const s = str(tt).trim();
    const name = ENCAPS.find((e) => e === s);
    if (name === undefined) throw bad(D, 'tunnel_type', tt, `one of ${ENCAPS.join(', ')} (written exactly so)`);
    c.tunnelType = name;
  }

  const vh = raw['VIRTUAL-HOST-INTERFACE']?.ip;
  if (vh !== undefined) {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/\d{1,2})?$/.exec(str(vh).trim());
    if (!m || ipParse(m[1]) < 0) throw bad('VIRTUAL-HOST-INTERFACE', 'ip', vh, 'vhost0\'s IPv4 address, e.g. 10.1.1.3/24');
    c.vhostIp = m[1];
  }

  const used: Record<string, string[]> = {
    DEFAULT: ['flow_cache_timeout', 'disable_flow_collection', 'collectors', 'http_server_port', 'log_flow', 'tunnel_type'],
    FLOWS: ['max_vm_flows', 'max_system_linklocal_flows', 'max_vm_linklocal_flows', 'tcp_flow_scan_interval'],
  };
  const unknown: string[] = [];
  for (const [section, keys] of Object.entries(raw)) {
    if (typeof keys !== 'object' || keys === null) {
      unknown.push(oneLine(section));
      continue;
    }
    if (KNOWN_UNUSED_SECTIONS.includes(section)) continue;
    for (const k of Object.keys(keys)) {
      if (used[section]?.includes(k) || KNOWN_UNUSED[section]?.includes(k)) continue;
      unknown.push(`[${oneLine(section)}] ${oneLine(k)}`);
    }
  }
  // A short line also for a file of thousands of unknown keys.
  const more = unknown.length > 10 ? ` and ${unknown.length - 10} more` : '';
  if (unknown.length > 0) warn(`${file}: unknown keys, ignored: ${unknown.slice(0, 10).join(', ')}${more}`);
  return c;
}

/** Read an agent configuration file. */
export function readAgentConf(file: string, warn?: (msg: string) => void): AgentConf {
  // Bounded: an agent.conf is a few kilobytes.
  const text = readInputFile(file, (problem, enoent) => `${file}: ${enoent ? 'no such agent configuration file' : problem}`, MAX_AGENT_CONF);
  return parseAgentConf(text, file, warn);
}

/** The largest agent configuration file read. */
export const MAX_AGENT_CONF = 1 << 20;
