/**
 * `/`: the live page and the JSON it polls.
 *
 *   GET /               the page (HTML + inline CSS; no build step for the user)
 *   GET /app.js         the client (src/introspect/web/app.ts, bundled by scripts/build.cjs into
 *                       dist/web/app.js; read once and kept in memory)
 *   GET /api/summary    occupancy (active, overflow in use, table size), drops by R2.22 label and their
 *                       total, Created / Added / Processed, the time — polled every second for the charts
 *   GET /api/flows      ?filter=TEXT&page=N: one page (100) of the flows that match, filtered here so a
 *                       big table never travels to the browser
 *   GET /api/vifs       the vif table with its counters
 *   GET /api/dropstats  every R2.22 label with its count, in the tool's order
 *
 * Everything runs on the agent's thread and only reads: the summary is a few counters; the flow scan walks
 * the live table in slices of FLOW_SLICE indices with a turn of the event loop between them (the agent
 * keeps answering traps), is bounded in time (FLOW_SCAN_MS, then answered as partial) and in number
 * (FLOW_SCANS_AT_ONCE, then 503), and reads each entry by check-copy-check like `flow -l`'s snapshot.
 * @module
 */
import * as fs from 'fs';
import * as os from 'os';
import type * as http from 'http';
import type { Instance } from '../cli/tools';
import type { Handler } from './server';
import { DROPSTATS_LINES } from '../cli/dropstats';
import { tcpLetters } from '../cli/flow-list';
import { vifFlagString } from '../cli/vif-list';
import { flowInfoNew } from '../agent/flow-state';
import { IPPROTO_TCP, VR_FLOW_ACTION_DROP, VR_FLOW_DR_NAMES, VR_FLOW_FLAG_ACTIVE, VR_FLOW_FLAG_EVICTED, flowActionLetter } from '../dp/defs';
import {
  FE_BYTES, FE_PACKETS, FE_USED_END, FTI_ACTION_COUNT, FTI_ACTIVE, FTI_ACTIVE_PEAK, FTI_ADDED, FTI_OFLOW_PEAK, FTI_OFLOW_USED,
  FlowTable, feAction, feDropReason, feFlags, feKeyWord, feProto, feRflow, feTcpFlags, feVrf, flowCreatedCount, flowTableCreate,
} from '../dp/flow-table';
import { VIFS_LEN, VIFS_RX_BYTES, VIFS_RX_ERRORS, VIFS_RX_PACKETS, VIFS_TX_BYTES, VIFS_TX_ERRORS, VIFS_TX_PACKETS, VIF_TYPE_NAMES, macString } from '../dp/interface';
import { keyDport, keyIpString, keySport } from '../dp/proto-ip';
import { distFile } from '../lib/package-root';

/** Flows per page of /api/flows. */
export const FLOW_PAGE = 100;
/** Table indices read per turn of the event loop. */
export const FLOW_SLICE = 8192;
/** A scan stops after this (ms) and answers with what it saw (`partial`). */
export const FLOW_SCAN_MS = 2000;
/** Flow scans at once; more are answered 503. */
export const FLOW_SCANS_AT_ONCE = 2;
/** Longest filter text accepted. */
const FILTER_MAX = 200;

const PROTO_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' };
const PROTO_NUMBERS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58 };

/** A parsed filter: every part given must match (AND). */
export interface FlowFilter {
  /** Substrings of the source or destination address. */
  ips: string[];
  /** Source or destination port. */
  ports: number[];
  proto?: number;
  /** Case-insensitive substrings of the source or destination VN name. */
  vns: string[];
}

/**
 * Parse the filter box: words separated by blanks, each `ip:…`, `port:…`, `proto:…`, `vn:…` (or `=`), or bare:
 * a protocol name (tcp, udp, icmp) → proto, digits → port, digits and dots → address substring, anything
 * else → VN substring. @returns the filter, or an error line.
 */
export function parseFlowFilter(text: string): FlowFilter | string {
  const f: FlowFilter = { ips: [], ports: [], vns: [] };
  if (text.length > FILTER_MAX) return `filter longer than ${FILTER_MAX} characters`;
  for (const w of text.trim().split(/\s+/)) {
    if (w === '') continue;
    const m = /^(ip|port|proto|vn)[:=](.*)$/i.exec(w);
    const kind = m ? m[1].toLowerCase() : /^\d+$/.test(w) ? 'port' : /^[\d.]+$/.test(w) ? 'ip' : PROTO_NUMBERS[w.toLowerCase()] !== undefined ? 'proto' : 'vn';
    const v = m ? m[2] : w;
    if (kind === 'ip') {
      if (!/^[\d.]+$/.test(v)) return `ip:${v}: expected digits and dots (a part of an IPv4 address)`;
      f.ips.push(v);
    } else if (kind === 'port') {
      const p = Number(v);
      if (!/^\d+$/.test(v) || p > 65535) return `port:${v}: expected 0 to 65535`;
      f.ports.push(p);
    } else if (kind === 'proto') {
      const p = /^\d+$/.test(v) ? Number(v) : PROTO_NUMBERS[v.toLowerCase()];
      if (p === undefined || p > 255) return `proto:${v}: expected tcp, udp, icmp, icmpv6 or a number 0 to 255`;
      if (f.proto !== undefined && f.proto !== p) return 'two different protocols: no flow can match';
      f.proto = p;
    } else {
      if (v === '') return 'vn: expected a part of a virtual network name';
      f.vns.push(v.toLowerCase());
    }
  }
  return f;
}

/** One flow as the page shows it. */
export interface PageFlow {
  index: number;
  rindex: number;
  sip: string;
  sport: number;
  dip: string;
  dport: number;
  proto: number;
  protoName: string;
  vrf: number;
  /** F, D(reason), N, H… as `flow -l`. */
  action: string;
  /** TCP state letters (SSrEEr), '' for other protocols. */
  tcp: string;
  packets: number;
  bytes: number;
  /** Source / destination VN (the agent's), '' when the agent does not hold the flow. */
  srcVn: string;
  dstVn: string;
}

export interface FlowPage {
  filter: string;
  page: number;
  pageSize: number;
  /** Flows that match (of those scanned). */
  matched: number;
  /** Active flows seen. */
  active: number;
  flows: PageFlow[];
  /** True when the scan stopped at FLOW_SCAN_MS before the end of the table. */
  partial: boolean;
  scanned: number;
  total: number;
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Scan the live table for one page of matching flows. Each active entry is copied (its first
 * FE_USED_END bytes) into a one-entry scratch table and copied again until two reads agree, so a row
 * never mixes two flows the datapath wrote in between.
 */
export async function flowPage(inst: Instance, filterText: string, f: FlowFilter, page: number, o: { sliceSize?: number; budgetMs?: number } = {}): Promise<FlowPage> {
  const live = inst.table;
  const slice = o.sliceSize ?? FLOW_SLICE;
  const budget = o.budgetMs ?? FLOW_SCAN_MS;
  const scratch = flowTableCreate(4, 0);
  const s = scratch.i32;
  const l = live.i32;
  const U = FE_USED_END >> 2;
  const vnNames = inst.node.vnNames;
  const fi = flowInfoNew();
  const first = page * FLOW_PAGE;
  const out: PageFlow[] = [];
  let matched = 0;
  let active = 0;
  let scanned = 0;
  let partial = false;
  const start = Date.now();
  for (let from = 0; from < live.total; from += slice) {
    if (from > 0) {
      await turn();
      if (Date.now() - start > budget) {
        partial = true;
        break;
      }
    }
    const to = Math.min(live.total, from + slice);
    const agent = inst.agent();
    for (let i = from; i < to; i++) {
      const fl = feFlags(live, i);
      if ((fl & VR_FLOW_FLAG_ACTIVE) === 0 || (fl & VR_FLOW_FLAG_EVICTED) !== 0) continue;
      const b = i * 32;
      for (let k = 0; k < U; k++) s[k] = l[b + k];
      for (let tries = 0; tries < 4; tries++) {
        let same = true;
        for (let k = 0; k < U; k++) {
          if (s[k] !== l[b + k]) {
            same = false;
            s[k] = l[b + k];
          }
        }
        if (same) break;
      }
      if ((feFlags(scratch, 0) & VR_FLOW_FLAG_ACTIVE) === 0) continue;
      active++;
      let srcVn = '';
      let dstVn = '';
      if (agent) {
        agent.flows.read(i, fi);
        if (fi.held) {
          srcVn = fi.srcVn >= 0 && fi.srcVn < vnNames.length ? vnNames[fi.srcVn] : '';
          dstVn = fi.dstVn >= 0 && fi.dstVn < vnNames.length ? vnNames[fi.dstVn] : '';
        }
      }
      if (!matches(scratch, f, srcVn, dstVn)) continue;
      if (matched >= first && out.length < FLOW_PAGE) out.push(pageFlow(scratch, i, srcVn, dstVn));
      matched++;
    }
    scanned = to;
  }
  return { filter: filterText, page, pageSize: FLOW_PAGE, matched, active, flows: out, partial, scanned, total: live.total };
}

function matches(t: FlowTable, f: FlowFilter, srcVn: string, dstVn: string): boolean {
  if (f.proto !== undefined && feProto(t, 0) !== f.proto) return false;
  const k0 = feKeyWord(t, 0, 0);
  for (const p of f.ports) if (keySport(k0) !== p && keyDport(k0) !== p) return false;
  if (f.ips.length > 0) {
    const sip = keyIpString(feKeyWord(t, 0, 1));
    const dip = keyIpString(feKeyWord(t, 0, 2));
    for (const ip of f.ips) if (!sip.includes(ip) && !dip.includes(ip)) return false;
  }
  if (f.vns.length > 0) {
    const a = srcVn.toLowerCase();
    const b = dstVn.toLowerCase();
    for (const v of f.vns) if (!a.includes(v) && !b.includes(v)) return false;
  }
  return true;
}

/** Entry 0 of the scratch table, shown as index `i`. */
function pageFlow(t: FlowTable, i: number, srcVn: string, dstVn: string): PageFlow {
  const k0 = feKeyWord(t, 0, 0);
  const proto = feProto(t, 0);
  const a = feAction(t, 0);
  const dr = feDropReason(t, 0);
  return {
    index: i,
    rindex: feRflow(t, 0),
    sip: keyIpString(feKeyWord(t, 0, 1)),
    sport: keySport(k0),
    dip: keyIpString(feKeyWord(t, 0, 2)),
    dport: keyDport(k0),
    proto,
    protoName: PROTO_NAMES[proto] ?? String(proto),
    vrf: feVrf(t, 0),
    action: flowActionLetter(a) + (a === VR_FLOW_ACTION_DROP ? `(${VR_FLOW_DR_NAMES[dr] ?? dr})` : ''),
    tcp: proto === IPPROTO_TCP ? tcpLetters(feTcpFlags(t, 0)) : '',
    // The 32-bit counters, as flow -l prints them.
    packets: t.u32[FE_PACKETS >> 2],
    bytes: t.u32[FE_BYTES >> 2],
    srcVn,
    dstVn,
  };
}

/** /api/summary. */
export function summary(inst: Instance): object {
  const t = inst.table;
  const info = t.info;
  const drops = new Float64Array(inst.shared.dropsSab);
  const byLabel: Record<string, number> = {};
  let total = 0;
  for (const l of DROPSTATS_LINES) if (l) byLabel[l[0]] = drops[l[1]];
  for (let k = 0; k < drops.length; k++) total += drops[k];
  const agent = inst.agent();
  return {
    time: Date.now(),
    clockMs: inst.clock(),
    node: { host: os.hostname(), networks: inst.node.vnNames, vifs: inst.node.vifs.length, aging: agent?.agingOn ?? false },
    table: { entries: t.entries, oentries: t.oentries, total: t.total },
    active: info[FTI_ACTIVE],
    activePeak: info[FTI_ACTIVE_PEAK],
    overflowUsed: info[FTI_OFLOW_USED],
    overflowPeak: info[FTI_OFLOW_PEAK],
    occupancyPct: t.total > 0 ? (100 * info[FTI_ACTIVE]) / t.total : 0,
    created: flowCreatedCount(t),
    added: info[FTI_ADDED],
    processed: info[FTI_ACTION_COUNT],
    agentFlows: agent?.flowCount ?? 0,
    dropsTotal: total,
    drops: byLabel,
  };
}

/** /api/vifs. */
export function vifs(inst: Instance): object[] {
  const st = new Float64Array(inst.shared.vifStatsSab);
  return [...inst.node.vifs].sort((a, b) => a.idx - b.idx).map((v) => {
    const s = v.idx * VIFS_LEN;
    return {
      idx: v.idx, name: `vif0/${v.idx}`, os: v.up ? v.os : 'NULL', type: VIF_TYPE_NAMES[v.type] ?? 'Invalid', vrf: v.vrf,
      mac: macString(v.mac), flags: vifFlagString(v.flags), mtu: v.mtu, vm: v.vm?.name ?? v.host?.name ?? '', up: v.up,
      rxPackets: st[s + VIFS_RX_PACKETS], rxBytes: st[s + VIFS_RX_BYTES], rxErrors: st[s + VIFS_RX_ERRORS],
      txPackets: st[s + VIFS_TX_PACKETS], txBytes: st[s + VIFS_TX_BYTES], txErrors: st[s + VIFS_TX_ERRORS],
    };
  });
}

/** /api/dropstats: [{label, code, value}] in `dropstats` order. */
export function dropstatsList(inst: Instance): { label: string; code: number; value: number }[] {
  const drops = new Float64Array(inst.shared.dropsSab);
  return DROPSTATS_LINES.filter((l): l is [string, number] => l !== null).map(([label, code]) => ({ label, code, value: drops[code] }));
}

function json(res: http.ServerResponse, status: number, body: unknown): true {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  return true;
}

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>vrouter-emu — live</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 13px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #f6f7f9; }
header { background: #1f3a5f; color: #fff; padding: 8px 16px; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 16px; margin: 0; }
main { padding: 12px 16px; display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
section { background: #fff; border: 1px solid #d8dce2; border-radius: 4px; padding: 8px 10px; min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 14px; margin: 0 0 6px; }
canvas { width: 100%; height: 180px; display: block; }
table { border-collapse: collapse; width: 100%; font: 12px/1.3 ui-monospace, monospace; }
th, td { text-align: left; padding: 2px 6px; border-bottom: 1px solid #eef0f3; white-space: nowrap; }
th { background: #f0f2f5; }
td.n { text-align: right; }
.bar { display: flex; gap: 8px; align-items: center; margin-bottom: 6px; }
#flow-filter { flex: 1; font: inherit; padding: 3px 6px; }
.err { color: #b00020; }
ul#drops { columns: 4 220px; list-style: none; padding: 0; margin: 0; font: 12px/1.5 ui-monospace, monospace; }
ul#drops li { break-inside: avoid; white-space: nowrap; }
.scroll { overflow-x: auto; }
.scroll.rows { max-height: 440px; overflow-y: auto; }
.scroll.rows th { position: sticky; top: 0; }
ul#drops li.z { color: #999; }
ul#drops li b { font-weight: 600; }
</style>
</head>
<body>
<header><h1>vrouter-emu</h1><span id="node-info">connecting…</span><span id="table-info"></span><span id="updated"></span></header>
<main>
<section><h2>Flow table occupancy (%), last 5 minutes</h2><canvas id="chart-occupancy" width="600" height="180"></canvas></section>
<section><h2>Drops per second, last 5 minutes</h2><canvas id="chart-drops" width="600" height="180"></canvas></section>
<section class="wide"><h2>Flows</h2>
<div class="bar"><input id="flow-filter" type="search" placeholder="filter: 10.1.1.3  port:80  udp  vn:blue" autocomplete="off">
<button id="flow-prev">&larr; prev</button><button id="flow-next">next &rarr;</button><span id="flow-status"></span></div>
<div class="scroll rows"><table id="flows"><thead><tr><th>Index</th><th>Rev</th><th>Source:Port</th><th>Destination:Port</th><th>Proto</th><th>VRF</th><th>Action</th><th>TCP</th><th>Packets</th><th>Bytes</th><th>Source VN</th><th>Dest VN</th></tr></thead><tbody></tbody></table></div>
</section>
<section class="wide"><h2>Interfaces</h2>
<div class="scroll"><table id="vifs"><thead><tr><th>vif</th><th>OS</th><th>Type</th><th>VRF</th><th>Flags</th><th>VM</th><th>RX pkts</th><th>RX bytes</th><th>TX pkts</th><th>TX bytes</th><th>Err</th></tr></thead><tbody></tbody></table></div>
</section>
<section class="wide"><h2>Drop stats (non-zero first)</h2><ul id="drops"></ul></section>
</main>
<script src="app.js"></script>
</body>
</html>
`;

/** The routes of the live page. */
export function pageRoutes(inst: Instance): Handler[] {
  let appJs: Buffer | undefined;
  let scans = 0;
  const page: Handler = (_req, url, res) => {
    if (url.pathname !== '/' && url.pathname !== '/index.html') return false;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(PAGE_HTML);
    return true;
  };
  const asset: Handler = (_req, url, res) => {
    if (url.pathname !== '/app.js') return false;
    if (!appJs) {
      const file = distFile('web/app.js');
      try {
        appJs = fs.readFileSync(file);
      } catch {
        res.writeHead(503, { 'content-type': 'text/plain' }).end(`the page's client is not built (${file} missing): run npm run build\n`);
        return true;
      }
    }
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'max-age=300' }).end(appJs);
    return true;
  };
  const api: Handler = async (_req, url, res) => {
    switch (url.pathname) {
      case '/api/summary':
        return json(res, 200, summary(inst));
      case '/api/vifs':
        return json(res, 200, vifs(inst));
      case '/api/dropstats':
        return json(res, 200, dropstatsList(inst));
      case '/api/flows': {
        const text = url.searchParams.get('filter') ?? '';
        const pg = url.searchParams.get('page') ?? '0';
        if (!/^\d{1,7}$/.test(pg)) return json(res, 400, { error: `page=${pg}: expected a page number from 0` });
        const f = parseFlowFilter(text);
        if (typeof f === 'string') return json(res, 400, { error: f });
        if (scans >= FLOW_SCANS_AT_ONCE) {
          res.setHeader('retry-after', '1');
          return json(res, 503, { error: 'flow scans busy; try again' });
        }
        scans++;
        try {
          return json(res, 200, await flowPage(inst, text, f, Number(pg)));
        } finally {
          scans--;
        }
      }
      default:
        return false;
    }
  };
  return [page, asset, api];
}
