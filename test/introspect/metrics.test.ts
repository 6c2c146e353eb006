/**
 * `/metrics` over an in-thread node: the Prometheus text format parses, every dropstats line is one
 * `vrouter_drops_total{reason=…}` series, and the values are the ones `dropstats`, `vif --list`,
 * `flow -l` and `agent stats` print for the same node. The dashboard names only metrics that exist.
 */
import test from 'ava';
import * as fs from 'fs';
import * as path from 'path';
import * as http from 'http';
import { toolHandler, type ExportState, type Instance } from '../../src/cli/tools';
import { routerShared } from '../../src/dp/router';
import { MODULE_PARAM_DEFAULTS } from '../../src/params/module-params';
import { IntrospectServer } from '../../src/introspect/server';
import { DROP_REASONS, metricsRoutes } from '../../src/introspect/metrics';
import { tcpFrame, udpFrame } from '../../src/io/frame-build';
import { rx } from '../helpers/test-host';
import { from, node } from '../helpers/compute-node';
import { dropstat, parseFlowList } from '../helpers/instance';

interface Sample { name: string; labels: Record<string, string>; value: number }
interface Parsed { samples: Sample[]; types: Map<string, string>; help: Map<string, string> }

/** A small parser of the Prometheus text format (0.0.4): HELP/TYPE lines and samples; throws on anything else. */
function parseProm(text: string): Parsed {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      (m[1] === 'HELP' ? help : types).set(m[2], m[3]);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
      let pos = 0;
      while (pos < m[2].length) {
        re.lastIndex = pos;
        const l = re.exec(m[2]);
        if (!l) throw new Error(`bad labels in ${line}`);
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
        pos = re.lastIndex;
      }
    }
    const value = Number(m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad value in ${line}`);
    samples.push({ name: m[1], labels, value });
  }
  for (const s of samples) if (!types.has(s.name)) throw new Error(`sample ${s.name} without a TYPE line`);
  return { samples, types, help };
}

const value = (p: Parsed, name: string, labels: Record<string, string> = {}): number | undefined =>
  p.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

function instanceOf(n: ReturnType<typeof node>, exporting?: ExportState): Instance {
  return {
    params: { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 1024, vr_oflow_entries: 64 },
    shared: routerShared(n.r), table: n.r.ft, node: n.cn, mirror: undefined as never,
    agent: () => n.agent, exporting: () => exporting, reload: () => '', clock: () => n.host.now,
    io: { attachments: undefined as never, guests: [], offload: [] },
  };
}

async function tool(inst: Instance, ...argv: string[]): Promise<string> {
  let s = '';
  await toolHandler(inst)(argv, async (c) => {
    s += c;
  });
  return s;
}

function get(port: number, p: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http.request({ host: '127.0.0.1', port, path: p, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject).end();
  });
}

async function serve(t: { teardown: (f: () => Promise<void>) => void }, inst: Instance): Promise<number> {
  const server = new IntrospectServer();
  server.use(...metricsRoutes(inst));
  const a = await server.listen('127.0.0.1', 0);
  t.teardown(() => server.close());
  return a.port;
}

/** Traffic on the node: a passed TCP flow, denied ones (Flow Action Drop), UDP flows. */
function traffic(n: ReturnType<typeof node>): void {
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40000, dport: 80, flags: 'S' }), n.vifOf('b1'));
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40001, dport: 22, flags: 'S' }), n.vifOf('b1'));
  for (let k = 0; k < 20; k++) rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.11'), { sport: 5000 + k, dport: 53, payload: 10 }), n.vifOf('b1'));
  n.run();
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40001, dport: 22, flags: 'S' }), n.vifOf('b1'));
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40000, dport: 80, flags: 'A', payload: 100 }), n.vifOf('b1'));
  n.run();
}

test('/metrics parses as the Prometheus text format and equals dropstats, vif --list, flow -l and agent stats', async (t) => {
  const n = node();
  traffic(n);
  const inst = instanceOf(n);
  const port = await serve(t, inst);
  const r = await get(port, '/metrics');
  t.is(r.status, 200);
  t.regex(r.type, /^text\/plain; version=0\.0\.4/);
  const p = parseProm(r.body);
  for (const s of p.samples) t.regex(s.name, /^vrouter_[a-z0-9_]+$/, 'prefix, snake case');
  for (const [name, type] of p.types) if (type === 'counter') t.regex(name, /_total$/, `${name}: counters end in _total`);

  // Every dropstats line, once, with the value dropstats prints.
  const ds = await tool(inst, 'dropstats');
  const drops = p.samples.filter((s) => s.name === 'vrouter_drops_total');
  t.is(drops.length, DROP_REASONS.length);
  t.is(new Set(drops.map((s) => s.labels.reason)).size, DROP_REASONS.length);
  for (const s of drops) t.is(s.value, dropstat(ds, s.labels.reason), s.labels.reason);
  t.true((value(p, 'vrouter_drops_total', { reason: 'Flow Action Drop' }) ?? 0) > 0, 'the denied SYNs are there');
  t.is(value(p, 'vrouter_drops_total', { reason: 'Flow Table Full' }), 0, 'present at 0');

  // Per vif, both directions, the numbers of vif --list.
  const vl = await tool(inst, 'vif', '--list');
  const blocks = vl.split(/\n(?=vif0\/)/).filter((b) => b.startsWith('vif0/'));
  t.is(blocks.length, n.cn.vifs.length);
  for (const b of blocks) {
    const m = /^vif0\/(\d+) +OS: (\S+)[\s\S]*RX packets:(\d+) +bytes:(\d+) errors:(\d+)\n +TX packets:(\d+) +bytes:(\d+) errors:(\d+)/.exec(b);
    if (!m) throw new Error(`vif block: ${b}`);
    const name = n.cn.vifs.find((v) => v.idx === Number(m[1]))?.os as string;
    const l = { vif: `0/${m[1]}`, name };
    t.is(value(p, 'vrouter_vif_packets_total', { ...l, direction: 'rx' }), Number(m[3]), `${l.vif} rx packets`);
    t.is(value(p, 'vrouter_vif_bytes_total', { ...l, direction: 'rx' }), Number(m[4]));
    t.is(value(p, 'vrouter_vif_errors_total', { ...l, direction: 'rx' }), Number(m[5]));
    t.is(value(p, 'vrouter_vif_packets_total', { ...l, direction: 'tx' }), Number(m[6]), `${l.vif} tx packets`);
    t.is(value(p, 'vrouter_vif_bytes_total', { ...l, direction: 'tx' }), Number(m[7]));
    t.is(value(p, 'vrouter_vif_errors_total', { ...l, direction: 'tx' }), Number(m[8]));
  }
  t.true((value(p, 'vrouter_vif_packets_total', { vif: `0/${n.vifOf('b1')}`, direction: 'rx' }) ?? 0) >= 24);

  // The flow table: the entries flow -l lists, its header's counters.
  const fl = await tool(inst, 'flow', '-l');
  const listed = parseFlowList(fl);
  t.true(listed.length >= 4);
  t.is(value(p, 'vrouter_flow_entries'), listed.length, 'the entries flow -l lists');
  const h = /Entries: Created (\d+) Added (\d+) Processed (\d+) Used Overflow entries (\d+)/.exec(fl);
  if (!h) throw new Error(fl.slice(0, 400));
  t.is(value(p, 'vrouter_flows_created_total'), Number(h[1]));
  t.is(value(p, 'vrouter_flows_added_total'), Number(h[2]));
  t.is(value(p, 'vrouter_flows_processed_total'), Number(h[3]));
  t.is(value(p, 'vrouter_flow_overflow_entries_used'), Number(h[4]));
  t.is(value(p, 'vrouter_flow_hold_entries'), Number(h[1]) - Number(h[3]));
  t.is(value(p, 'vrouter_flow_table_capacity_entries', { table: 'main' }), 1024);
  t.is(value(p, 'vrouter_flow_table_capacity_entries', { table: 'overflow' }), 64);

  // The agent's counts (agent stats --json).
  const as = JSON.parse(await tool(inst, 'agent', 'stats', '--json')) as Record<string, number>;
  t.is(value(p, 'vrouter_agent_flows'), as.flowsActive);
  t.is(value(p, 'vrouter_flows_setup_total'), as.flowsSetUp);
  t.is(value(p, 'vrouter_flows_aged_total'), as.flowsAged);
  t.is(value(p, 'vrouter_flows_evicted_total'), as.flowsEvictedByVrouter);
  t.is(value(p, 'vrouter_flows_short_total'), as.shortFlows);
  t.is(value(p, 'vrouter_flow_set_errors_total'), as.flowSetErrors);
  t.true(as.flowsSetUp > 0);

  // No exporting: the export counters are 0 and there is no collector series.
  t.is(value(p, 'vrouter_export_records_total'), 0);
  t.is(p.samples.filter((s) => s.name === 'vrouter_collector_up').length, 0);
});

test('/metrics reads at scrape time: new traffic and aged flows show in the next scrape; HEAD has no body', async (t) => {
  const n = node();
  const inst = instanceOf(n);
  const port = await serve(t, inst);
  const p0 = parseProm((await get(port, '/metrics')).body);
  t.is(value(p0, 'vrouter_flow_entries'), 0);
  t.is(value(p0, 'vrouter_flows_created_total'), 0);
  traffic(n);
  const p1 = parseProm((await get(port, '/metrics')).body);
  const e1 = value(p1, 'vrouter_flow_entries') ?? 0;
  t.true(e1 > 0);
  t.true((value(p1, 'vrouter_flows_created_total') ?? 0) > 0);
  // Short flows (the denied ones) go on the agent's next aging visits; the scrape follows the table.
  for (let k = 0; k < 4; k++) {
    n.host.advance(1500);
    n.run();
  }
  const p2 = parseProm((await get(port, '/metrics')).body);
  t.is(value(p2, 'vrouter_flow_entries'), parseFlowList(await tool(inst, 'flow', '-l')).length);
  t.is(value(p2, 'vrouter_flows_deleted_total'), n.agent.stats.deleted);
  t.is(value(p2, 'vrouter_flows_aged_total'), n.agent.stats.aged);
  const head = await get(port, '/metrics', 'HEAD');
  t.is(head.status, 200);
  t.is(head.body, '');
  t.is((await get(port, '/other')).status, 404, 'other paths are not metrics');
});

test('export counters and one series per collector with its connection state', async (t) => {
  const n = node();
  const stats = { exported: 7, sampledAway: 3, disabled: 0 };
  const ex = {
    fx: { sampler: { stats, threshold: 500, configuredRate: 100, measuredRate: 12 } },
    sinks: [
      { name: '127.0.0.1:9000', stats: () => ({ queued: 2, sent: 9, acked: 7, dropped: 1, connected: true, reconnects: 0 }) },
      { name: '10.0.0.9:9000', stats: () => ({ queued: 0, sent: 0, acked: 0, dropped: 5, connected: false, reconnects: 3 }) },
    ],
  } as unknown as ExportState;
  const port = await serve(t, instanceOf(n, ex));
  const p = parseProm((await get(port, '/metrics')).body);
  t.is(value(p, 'vrouter_export_records_total'), 7);
  t.is(value(p, 'vrouter_export_sampled_away_total'), 3);
  t.is(value(p, 'vrouter_export_threshold_bytes'), 500);
  t.is(value(p, 'vrouter_export_rate_configured'), 100);
  t.is(value(p, 'vrouter_export_rate_measured'), 12);
  t.is(value(p, 'vrouter_collector_up', { collector: '127.0.0.1:9000' }), 1);
  t.is(value(p, 'vrouter_collector_up', { collector: '10.0.0.9:9000' }), 0);
  t.is(value(p, 'vrouter_collector_records_dropped_total', { collector: '10.0.0.9:9000' }), 5);
  t.is(value(p, 'vrouter_collector_records_sent_total', { collector: '127.0.0.1:9000' }), 9);
  t.is(value(p, 'vrouter_collector_reconnects_total', { collector: '10.0.0.9:9000' }), 3);
  stats.exported = 11;
  const p2 = parseProm((await get(port, '/metrics')).body);
  t.is(value(p2, 'vrouter_export_records_total'), 11, 'read again at the next scrape');
});

test('dashboards/vrouter-emu.json: valid JSON, a Prometheus datasource variable, every expression names metrics /metrics has', async (t) => {
  const file = path.join(__dirname, '..', '..', 'dashboards', 'vrouter-emu.json');
  const d = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    schemaVersion: number; title: string; uid: string;
    templating: { list: { type: string; name: string; query: string }[] };
    panels: { title: string; type: string; datasource?: { uid: string }; targets?: { expr: string }[] }[];
  };
  t.true(d.schemaVersion >= 36);
  t.truthy(d.uid);
  const ds = d.templating.list.find((v) => v.type === 'datasource');
  t.is(ds?.query, 'prometheus');
  const n = node();
  traffic(n);
  const port = await serve(t, instanceOf(n));
  const p = parseProm((await get(port, '/metrics')).body);
  const known = new Set(p.types.keys());
  const exprs = d.panels.flatMap((x) => x.targets ?? []).map((x) => x.expr);
  t.true(exprs.length >= 5);
  for (const panel of d.panels) {
    if (panel.type === 'row') continue;
    t.is(panel.datasource?.uid, '${' + (ds?.name ?? '') + '}', `${panel.title}: uses the datasource variable`);
  }
  for (const e of exprs) {
    const names = e.match(/\bvrouter_[a-z0-9_]+/g) ?? [];
    t.true(names.length > 0, e);
    for (const m of names) t.true(known.has(m), `${m} (in ${e}) is a metric of /metrics`);
  }
  const titles = d.panels.map((x) => x.title.toLowerCase()).join(' | ');
  for (const w of ['flow entries', 'flow creation', 'drops', 'vif', 'export']) t.true(titles.includes(w), `a panel on ${w}`);
});
