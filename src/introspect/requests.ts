/**
 * The Sandesh requests of the agent's introspect (`/Snh_*`) and its module pages (`/pkt.xml`,
 * `/kstate.xml`, `/agent.xml`), over a running instance (reference vrouter-agent.md §8).
 *
 * Field names and identifiers follow Juniper/contrail-controller `src/vnsw/agent/kstate/kstate.sandesh`
 * (KFlowInfo, KFlowReq/KFlowResp) and `src/vnsw/agent/pkt/pkt.sandesh` (SandeshFlowData, FetchFlowRecord,
 * FlowRecordsResp with its `flow_key` link to NextFlowRecordsSet, FlowErrorResp, FlowStatsResp); the
 * page size is PktSandeshFlow::kMaxFlowResponse (100, `pkt/pkt_sandesh_flow.h`). The XML is the shape
 * Sandesh's HTTP server writes: the response element with `type="sandesh"`, one element per field with
 * its `type` and `identifier`, lists as `<list type="struct" size="n">`, links as a `link` attribute,
 * and `<more type="bool">`. Fields the reference adds past those files (sg_rule_uuid, drop_reason,
 * aging_protocol, …) and the emulator's own requests carry identifiers of their own (see the README).
 *
 * Never blocks: a flow page reads only the entries it returns plus the scan to the next key, each entry
 * read check-copy-check from the shared table (as flow-snapshot.ts does for the whole table).
 * @module
 */
import type * as http from 'http';
import type { Instance } from '../cli/tools';
import type { Handler } from './server';
import type { IntrospectOptions } from './index';
import { flowInfoNew } from '../agent/flow-state';
import {
  FE_SIZE, FE_USED_END, FlowTable, feAction, feBytes, feDropReason, feDvrf, feEcmp, feFlags, feKeyWord, fePackets, feProto,
  feRflow, feVrf, flowFind,
} from '../dp/flow-table';
import {
  VR_FLOW_ACTION_DROP, VR_FLOW_ACTION_NAT, VR_FLOW_DR_NAMES, VR_FLOW_FLAG_ACTIVE, VR_FLOW_FLAG_DNAT, VR_FLOW_FLAG_DPAT,
  VR_FLOW_FLAG_EVICTED, VR_FLOW_FLAG_EVICT_CANDIDATE, VR_FLOW_FLAG_LINK_LOCAL, VR_FLOW_FLAG_MIRROR, VR_FLOW_FLAG_NEW_FLOW,
  VR_FLOW_FLAG_RFLOW_VALID, VR_FLOW_FLAG_SNAT, VR_FLOW_FLAG_SPAT, VR_FLOW_FLAG_VRFT,
} from '../dp/defs';
import { keyDport, keyIpString, keyPorts, keySport } from '../dp/proto-ip';
import { UserError } from '../errors';

/** PktSandeshFlow::kMaxFlowResponse: flows per page. */
export const MAX_FLOW_RESPONSE = 100;

// ---------------------------------------------------------------------------------------------------
// The Sandesh value tree, written as XML or JSON

type Scalar = { k: 's'; name: string; type: string; id: number; v: string | number | boolean; link?: string };
type Struct = { k: 'struct'; name: string; id: number; sname: string; fields: Field[] };
type List = { k: 'list'; name: string; id: number; sname: string; items: Field[][] };
type Field = Scalar | Struct | List;
interface Resp { name: string; fields: Field[] }

const f = (name: string, type: string, id: number, v: string | number | boolean, link?: string): Scalar => ({ k: 's', name, type, id, v, link });
const list = (name: string, id: number, sname: string, items: Field[][]): List => ({ k: 'list', name, id, sname, items });

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string);

function xmlFields(fs: Field[], out: string[]): void {
  for (const x of fs) {
    if (x.k === 's') {
      out.push(`<${x.name} type="${x.type}" identifier="${x.id}"${x.link ? ` link="${x.link}"` : ''}>${esc(String(x.v))}</${x.name}>`);
    } else if (x.k === 'struct') {
      out.push(`<${x.name} type="struct" identifier="${x.id}"><${x.sname}>`);
      xmlFields(x.fields, out);
      out.push(`</${x.sname}></${x.name}>`);
    } else {
      out.push(`<${x.name} type="list" identifier="${x.id}"><list type="struct" size="${x.items.length}">`);
      for (const it of x.items) {
        out.push(`<${x.sname}>`);
        xmlFields(it, out);
        out.push(`</${x.sname}>`);
      }
      out.push(`</list></${x.name}>`);
    }
  }
}

export function toXml(r: Resp): string {
  const out = ['<?xml-stylesheet type="text/xsl" href="/universal_parse.xsl"?>', `<${r.name} type="sandesh">`];
  xmlFields(r.fields, out);
  out.push(`<more type="bool" identifier="0">false</more></${r.name}>`);
  return out.join('');
}

function jsonFields(fs: Field[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const x of fs) o[x.name] = x.k === 's' ? x.v : x.k === 'struct' ? jsonFields(x.fields) : x.items.map(jsonFields);
  return o;
}

export function toJson(r: Resp): string {
  return JSON.stringify({ [r.name]: { ...jsonFields(r.fields), more: false } });
}

// ---------------------------------------------------------------------------------------------------
// Flow entries

const FLAG_NAMES: [number, string][] = [
  [VR_FLOW_FLAG_ACTIVE, 'ACTIVE'], [VR_FLOW_FLAG_RFLOW_VALID, 'RFLOW_VALID'], [VR_FLOW_FLAG_MIRROR, 'MIRROR'], [VR_FLOW_FLAG_VRFT, 'VRFT'],
  [VR_FLOW_FLAG_SNAT, 'SNAT'], [VR_FLOW_FLAG_SPAT, 'SPAT'], [VR_FLOW_FLAG_DNAT, 'DNAT'], [VR_FLOW_FLAG_DPAT, 'DPAT'],
  [VR_FLOW_FLAG_LINK_LOCAL, 'LINK_LOCAL'], [VR_FLOW_FLAG_NEW_FLOW, 'NEW_FLOW'], [VR_FLOW_FLAG_EVICT_CANDIDATE, 'EVICT_CANDIDATE'],
  [VR_FLOW_FLAG_EVICTED, 'EVICTED'],
];
const ACTION_NAMES = ['DROP', 'HOLD', 'FORWARD', 'NAT'];

const flagStr = (fl: number): string => FLAG_NAMES.filter(([b]) => fl & b).map(([, n]) => n).join('|');

/** Whether entry `i` holds a flow to list (active, not evicted). */
const listed = (t: FlowTable, i: number): boolean => (feFlags(t, i) & (VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_EVICTED)) === VR_FLOW_FLAG_ACTIVE;

/** Read entry `i` with `read`, again until the entry's used words did not change under it (≤ 4 tries). */
function consistent<T>(t: FlowTable, i: number, read: () => T): T {
  const W = FE_USED_END >> 2;
  const b = (i * FE_SIZE) >> 2;
  const before = new Int32Array(W);
  let r = read();
  for (let tries = 0; tries < 4; tries++) {
    for (let k = 0; k < W; k++) before[k] = t.i32[b + k];
    r = read();
    let same = true;
    for (let k = 0; k < W && same; k++) same = before[k] === t.i32[b + k];
    if (same) break;
  }
  return r;
}

function kflowInfo(t: FlowTable, i: number): Field[] {
  return consistent(t, i, () => {
    const k0 = feKeyWord(t, i, 0);
    const fl = feFlags(t, i);
    const a = feAction(t, i);
    const fields: Field[] = [
      f('index', 'i32', 1, i), f('rflow', 'i32', 2, feRflow(t, i)),
      f('sip', 'string', 3, keyIpString(feKeyWord(t, i, 1))), f('sport', 'i32', 4, keySport(k0)),
      f('dip', 'string', 5, keyIpString(feKeyWord(t, i, 2))), f('dport', 'i32', 6, keyDport(k0)),
      f('proto', 'byte', 7, feProto(t, i)), f('vrf_id', 'i16', 8, feVrf(t, i)),
      f('action', 'string', 9, ACTION_NAMES[a] ?? String(a)), f('flags', 'string', 10, flagStr(fl)),
      f('d_vrf_id', 'i16', 11, feDvrf(t, i)), f('bytes', 'i32', 12, feBytes(t, i)), f('pkts', 'i32', 13, fePackets(t, i)),
    ];
    const e = feEcmp(t, i);
    if (e >= 0) fields.push(f('ecmp_index', 'i16', 17, e));
    return fields;
  });
}

/**
 * One page of indices from `from`: up to MAX_FLOW_RESPONSE of those `want` accepts, and the index of
 * the next one (the next key), −1 when none is left.
 */
function page(total: number, from: number, want: (i: number) => boolean): { idx: number[]; next: number } {
  const idx: number[] = [];
  let i = from;
  for (; i < total && idx.length < MAX_FLOW_RESPONSE; i++) if (want(i)) idx.push(i);
  for (; i < total; i++) if (want(i)) return { idx, next: i };
  return { idx, next: -1 };
}

// ---------------------------------------------------------------------------------------------------
// Arguments

class BadArg extends Error {}

function intArg(url: URL, name: string, dflt: number | undefined, min: number, max: number): number {
  const s = url.searchParams.get(name);
  if (s === null || s === '') {
    if (dflt === undefined) throw new BadArg(`missing argument ${name} (an integer ${min}..${max})`);
    return dflt;
  }
  if (!/^-?\d+$/.test(s) || Number(s) < min || Number(s) > max) throw new BadArg(`bad argument ${name}=${s}: expected an integer ${min}..${max}`);
  return Number(s);
}

function ipArg(url: URL, name: string): number {
  const s = url.searchParams.get(name) ?? '';
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) throw new BadArg(`bad argument ${name}=${s}: expected a dotted IPv4 address`);
  // Key IP words hold the address bytes in network order, read little-endian.
  return (Number(m[1]) | (Number(m[2]) << 8) | (Number(m[3]) << 16) | (Number(m[4]) << 24)) >>> 0;
}

// ---------------------------------------------------------------------------------------------------
// The requests

interface Req {
  module: 'pkt' | 'kstate' | 'agent';
  /** Changes state: refused (403) unless --introspect-allow-writes. */
  write?: boolean | ((url: URL) => boolean);
  run(url: URL): Resp;
}

function requests(inst: Instance): Map<string, Req> {
  const t = inst.table;
  const vn = (k: number): string => (k >= 0 && k < inst.node.vnNames.length ? inst.node.vnNames[k] : '__UNKNOWN__');
  const agentOr = (): NonNullable<ReturnType<Instance['agent']>> => {
    const a = inst.agent();
    if (!a) throw new BadArg('the agent is not running yet');
    return a;
  };

  const kflowPage = (from: number): Resp => {
    const p = page(t.total, from, (i) => listed(t, i));
    return {
      name: 'KFlowResp',
      fields: [list('flow_list', 1, 'KFlowInfo', p.idx.map((i) => kflowInfo(t, i))), f('flow_handle', 'string', 2, p.next < 0 ? '' : String(p.next), 'NextKFlowReq')],
    };
  };

  const fi = flowInfoNew();
  const flowData = (i: number): Field[] => {
    const a = agentOr();
    a.flows.read(i, fi);
    const c = a.collectorOf(i);
    return consistent(t, i, () => {
      const k0 = feKeyWord(t, i, 0);
      const act = feAction(t, i);
      const fl = feFlags(t, i);
      const nat = act === VR_FLOW_ACTION_NAT ? flagStr(fl & (VR_FLOW_FLAG_SNAT | VR_FLOW_FLAG_SPAT | VR_FLOW_FLAG_DNAT | VR_FLOW_FLAG_DPAT)) : 'disabled';
      const local = fi.srcVn >= 0 && fi.dstVn >= 0 && inst.node.vif(fi.inVif)?.vm !== undefined;
      return [
        f('vrf', 'i32', 1, feVrf(t, i)), f('sip', 'string', 2, keyIpString(feKeyWord(t, i, 1))), f('dip', 'string', 3, keyIpString(feKeyWord(t, i, 2))),
        f('src_port', 'i32', 4, keySport(k0)), f('dst_port', 'i32', 5, keyDport(k0)), f('protocol', 'byte', 6, feProto(t, i)),
        f('dest_vrf', 'i16', 7, feDvrf(t, i)), f('action', 'i32', 8, act),
        f('direction', 'string', 11, inst.node.vif(fi.inVif)?.vm ? 'ingress' : 'egress'),
        f('stats_bytes', 'i64', 12, feBytes(t, i)), f('stats_packets', 'i64', 13, fePackets(t, i)), f('uuid', 'string', 14, a.uuidOf(i)),
        f('nat', 'string', 15, nat), f('flow_handle', 'i32', 16, i), f('interface_idx', 'i32', 17, fi.inVif),
        f('setup_time', 'string', 18, new Date(fi.setupMs).toISOString()), f('short_flow', 'string', 21, fi.short ? 'yes' : 'no'),
        f('setup_time_utc', 'u64', 22, Math.round(fi.setupMs * 1000)), f('local_flow', 'string', 24, local ? 'yes' : 'no'),
        f('src_vn', 'string', 26, vn(fi.srcVn)), f('dst_vn', 'string', 27, vn(fi.dstVn)), f('reverse_flow', 'string', 28, fi.rindex >= 0 ? String(fi.rindex) : ''),
        // Reference §8 fields past the 2.20 pkt.sandesh; identifiers of the emulator's.
        f('sg_rule_uuid', 'string', 41, fi.rule), f('nw_ace_uuid', 'string', 42, fi.rule),
        f('drop_reason', 'string', 43, act === VR_FLOW_ACTION_DROP ? (VR_FLOW_DR_NAMES[feDropReason(t, i)] ?? String(feDropReason(t, i))) : ''),
        f('aging_protocol', 'u16', 44, c.proto), f('aging_port', 'u16', 45, c.port),
      ];
    });
  };

  const recordsPage = (from: number): Resp => {
    const a = agentOr();
    const p = page(t.total, from, (i) => a.has(i));
    return {
      name: 'FlowRecordsResp',
      fields: [list('flow_list', 1, 'SandeshFlowData', p.idx.map(flowData)), f('flow_key', 'string', 2, p.next < 0 ? '' : String(p.next), 'NextFlowRecordsSet')],
    };
  };

  const agingList = (): Resp => {
    const a = agentOr();
    return {
      name: 'AgingConfigResponse',
      fields: [list('aging_config_list', 1, 'AgingConfig', a.collectors.filter((c) => !c.deleted).map((c) => [
        f('protocol', 'u16', 1, c.proto), f('port', 'u16', 2, c.port), f('cache_timeout', 'u32', 3, c.ageMs / 1000),
        f('stats_interval', 'u32', 4, c.intervalMs), f('flow_count', 'u32', 5, c.flows),
      ]))],
    };
  };

  const setAging = (proto: number, port: number, timeoutS: number): void => {
    const a = agentOr();
    const cfg = a.agingConfig;
    const rest = (cfg.agingTimeouts ?? []).filter((x) => x.proto !== proto || x.port !== port);
    try {
      a.configureAging({ ...cfg, agingTimeouts: timeoutS > 0 ? [...rest, { proto, port, timeoutS }] : rest });
    } catch (e) {
      if (e instanceof UserError) throw new BadArg(e.message);
      throw e;
    }
  };

  const m = new Map<string, Req>();
  m.set('KFlowReq', {
    module: 'kstate',
    run: (u) => {
      const idx = intArg(u, 'flow_idx', -1, -1, t.total - 1);
      if (idx < 0) return kflowPage(0);
      if (!listed(t, idx)) return { name: 'ErrResp', fields: [f('resp', 'string', 1, `   Invalid Input !!!   (no flow at index ${idx})`)] };
      return { name: 'KFlowResp', fields: [list('flow_list', 1, 'KFlowInfo', [kflowInfo(t, idx)]), f('flow_handle', 'string', 2, '', 'NextKFlowReq')] };
    },
  });
  m.set('NextKFlowReq', { module: 'kstate', run: (u) => kflowPage(intArg(u, 'flow_handle', undefined, 0, t.total - 1)) });
  m.set('FetchAllFlowRecords', { module: 'pkt', run: () => recordsPage(0) });
  m.set('NextFlowRecordsSet', { module: 'pkt', run: (u) => recordsPage(intArg(u, 'flow_key', undefined, 0, t.total - 1)) });
  m.set('FetchFlowRecord', {
    module: 'pkt',
    run: (u) => {
      const a = agentOr();
      const nh = intArg(u, 'nh', undefined, 0, 65535);
      const sip = ipArg(u, 'sip');
      const dip = ipArg(u, 'dip');
      const sport = intArg(u, 'src_port', undefined, 0, 65535);
      const dport = intArg(u, 'dst_port', undefined, 0, 65535);
      const proto = intArg(u, 'protocol', undefined, 0, 255);
      const i = flowFind(t, keyPorts(sport, dport), sip, dip, nh, proto);
      if (i < 0 || !a.has(i)) return { name: 'FlowErrorResp', fields: [f('resp', 'string', 1, 'No Flow Record for specified key ')] };
      return { name: 'FlowRecordResp', fields: [{ k: 'struct', name: 'record', id: 1, sname: 'SandeshFlowData', fields: flowData(i) }] };
    },
  });
  m.set('DeleteAllFlowRecords', {
    module: 'pkt', write: true,
    run: () => {
      const n = agentOr().deleteAll();
      return { name: 'FlowDeleteResp', fields: [f('resp', 'string', 1, `deleted ${n} flows`)] };
    },
  });
  m.set('AgentStatsReq', {
    module: 'pkt',
    run: () => {
      const a = inst.agent();
      const ex = inst.exporting();
      const lim = a?.maxVmFlowsLimit ?? Infinity;
      return {
        name: 'FlowStatsResp',
        fields: [
          f('flow_active', 'u64', 1, a?.flowCount ?? 0), f('flow_created', 'u64', 2, a?.stats.created ?? 0), f('flow_aged', 'u64', 3, a?.stats.aged ?? 0),
          f('flow_drop_due_to_max_limit', 'u64', 4, a?.stats.limited ?? 0), f('flow_drop_due_to_linklocal_limit', 'u64', 5, 0),
          f('flow_max_system_flows', 'u32', 6, t.total), f('flow_max_vm_flows', 'u32', 7, Number.isFinite(lim) ? lim : 0),
          f('flow_export_msg_drops', 'u64', 8, ex ? ex.sinks.reduce((s, k) => s + k.stats().dropped, 0) : 0),
        ],
      };
    },
  });
  m.set('FlowExportStatsReq', {
    module: 'pkt',
    run: () => {
      const ex = inst.exporting();
      const s = ex?.fx.sampler;
      return {
        name: 'FlowExportStatsResp',
        fields: [
          f('configured_rate', 'i32', 1, s?.configuredRate ?? 0), f('measured_rate', 'i32', 2, s?.measuredRate ?? 0),
          f('threshold', 'u64', 3, s?.threshold ?? 0), f('exported', 'u64', 4, s?.stats.exported ?? 0),
          f('sampled_away', 'u64', 5, s?.stats.sampledAway ?? 0), f('disabled', 'u64', 6, s?.stats.disabled ?? 0),
          list('collectors', 7, 'FlowExportCollector', (ex?.sinks ?? []).map((k) => {
            const st = k.stats();
            return [f('name', 'string', 1, k.name), f('sent', 'u64', 2, st.sent), f('queued', 'u64', 3, st.queued), f('dropped', 'u64', 4, st.dropped)];
          })),
        ],
      };
    },
  });
  m.set('ShowAgingConfig', { module: 'pkt', run: agingList });
  m.set('AddAgingConfig', {
    module: 'pkt', write: true,
    run: (u) => {
      const proto = intArg(u, 'protocol', undefined, 0, 255);
      const port = intArg(u, 'port', 0, 0, 65535);
      const timeout = intArg(u, 'cache_timeout', undefined, 1, 0x7fffffff);
      intArg(u, 'stats_interval', 0, 0, 0x7fffffff); // accepted; the scan paces itself (§3.2)
      setAging(proto, port, timeout);
      return agingList();
    },
  });
  m.set('DeleteAgingConfig', {
    module: 'pkt', write: true,
    run: (u) => {
      const proto = intArg(u, 'protocol', undefined, 0, 255);
      const port = intArg(u, 'port', 0, 0, 65535);
      if ((proto === 0 || proto === 6) && port === 0) throw new BadArg(`the aging table (${proto}, 0) cannot be removed`);
      setAging(proto, port, 0);
      return agingList();
    },
  });
  m.set('FlowAgeTimeReq', {
    module: 'pkt',
    write: (u) => (u.searchParams.get('new_age_time') ?? '') !== '',
    run: (u) => {
      const a = agentOr();
      const dflt = a.collectors.find((c) => c.proto === 0 && c.port === 0);
      const old = (dflt?.ageMs ?? a.agingConfig.ageMs) / 1000;
      const nw = intArg(u, 'new_age_time', 0, 0, 0x7fffffff);
      if (nw > 0) {
        try {
          a.configureAging({ ...a.agingConfig, ageMs: nw * 1000 });
        } catch (e) {
          if (e instanceof UserError) throw new BadArg(e.message);
          throw e;
        }
      }
      return { name: 'FlowAgeTimeResp', fields: [f('old_age_time', 'u32', 1, old), f('new_age_time', 'u32', 2, nw > 0 ? nw : old)] };
    },
  });
  m.set('ShowFlowStatsCollector', {
    module: 'pkt',
    run: (u) => {
      const a = agentOr();
      const proto = intArg(u, 'protocol', 0, 0, 255);
      const port = intArg(u, 'port', 0, 0, 65535);
      const c = a.collectors.find((x) => x.proto === proto && x.port === port);
      if (!c) throw new BadArg(`no aging table (protocol ${proto}, port ${port}); Snh_ShowAgingConfig lists them`);
      return {
        name: 'FlowStatsCollectorResp',
        fields: [
          f('protocol', 'u16', 1, c.proto), f('port', 'u16', 2, c.port), f('flow_age_time', 'u32', 3, c.ageMs / 1000),
          f('flow_count', 'u32', 4, c.flows), f('flow_timer_interval', 'u32', 5, c.intervalMs), f('flow_count_per_pass', 'u32', 6, c.countPerPass),
          f('flow_multiplier', 'u32', 7, c.multiplier), f('deleted', 'bool', 8, c.deleted),
        ],
      };
    },
  });
  m.set('ItfReq', {
    module: 'agent',
    run: () => ({
      name: 'ItfResp',
      fields: [list('itf_list', 1, 'ItfSandeshData', inst.node.vifs.map((v) => [
        f('index', 'u32', 2, v.idx), f('name', 'string', 1, v.os), f('type', 'string', 4, v.vm ? 'vport' : 'eth'),
        f('vrf_name', 'string', 5, v.vm ? vn(inst.node.topo.networks.findIndex((n) => n.name === v.vm?.network)) : ''),
        f('active', 'string', 6, v.up ? 'Active' : 'Inactive'),
        f('ip_addr', 'string', 8, v.vm?.ip ?? ''), f('mac_addr', 'string', 9, [...v.mac].map((b) => b.toString(16).padStart(2, '0')).join(':')),
        f('vm_name', 'string', 10, v.vm?.name ?? ''), f('mtu', 'i32', 11, v.mtu),
      ]))],
    }),
  });
  return m;
}

// ---------------------------------------------------------------------------------------------------
// Routes

const XML = 'text/xml; charset=utf-8';
const JSN = 'application/json';

function wantsJson(req: http.IncomingMessage, url: URL): boolean {
  return url.pathname.endsWith('.json') || /application\/json/i.test(req.headers.accept ?? '');
}

function send(req: http.IncomingMessage, res: http.ServerResponse, status: number, r: Resp, json: boolean): void {
  const body = json ? toJson(r) : toXml(r);
  res.writeHead(status, { 'content-type': json ? JSN : XML, 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

const errResp = (msg: string): Resp => ({ name: 'ErrResp', fields: [f('resp', 'string', 1, msg)] });

export function introspectRoutes(inst: Instance, o: IntrospectOptions): Handler[] {
  const reqs = requests(inst);
  const snh: Handler = (req, url, res) => {
    const m = /^\/Snh_([A-Za-z0-9_]+?)(\.json|\.xml)?$/.exec(url.pathname);
    if (!m) return false;
    const json = wantsJson(req, url);
    const r = reqs.get(m[1]);
    // Sandesh's HTTP server answers an unknown request with 404 and no Sandesh body of its own; the
    // emulator adds an ErrResp naming the module pages.
    if (!r) {
      send(req, res, 404, errResp(`no such request: ${m[1]} (the requests are listed on /pkt.xml, /kstate.xml, /agent.xml)`), json);
      return true;
    }
    const write = typeof r.write === 'function' ? r.write(url) : r.write === true;
    if (write && !o.allowWrites) {
      send(req, res, 403, errResp(`${m[1]} changes the agent's state: start with --introspect-allow-writes to allow it`), json);
      return true;
    }
    try {
      send(req, res, 200, r.run(url), json);
    } catch (e) {
      if (!(e instanceof BadArg)) throw e;
      send(req, res, 400, errResp(`${m[1]}: ${e.message}`), json);
    }
    return true;
  };
  const index: Handler = (req, url, res) => {
    const m = /^\/(pkt|kstate|agent)\.(xml|json)$/.exec(url.pathname);
    if (!m) return false;
    const names = [...reqs].filter(([, r]) => r.module === m[1]).map(([n]) => n);
    if (m[2] === 'json' || wantsJson(req, url)) {
      const body = JSON.stringify({ module: m[1], requests: names.map((n) => ({ name: n, href: `/Snh_${n}`, write: reqs.get(n)?.write !== undefined })) });
      res.writeHead(200, { 'content-type': JSN }).end(body);
      return true;
    }
    const body = '<?xml-stylesheet type="text/xsl" href="/universal_parse.xsl"?>' +
      `<${m[1]} type="rlist">${names.map((n) => `<${n} type="sandesh"><href type="string">/Snh_${n}</href></${n}>`).join('')}</${m[1]}>`;
    res.writeHead(200, { 'content-type': XML }).end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
  return [snh, index];
}
