/**
 * The introspect's Sandesh requests (src/introspect/requests.ts) over an in-thread compute node: XML
 * well-formed and in the Sandesh shape, the fields, paging that reaches every flow once, JSON, writes
 * refused without --introspect-allow-writes and done with it, errors, and many requests at once.
 */
import test from 'ava';
import * as http from 'http';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { Instance } from '../../src/cli/tools';
import { IntrospectServer } from '../../src/introspect/server';
import { MAX_FLOW_RESPONSE, introspectRoutes } from '../../src/introspect/requests';
import { tcpFrame } from '../../src/io/frame-build';
import { feFlags } from '../../src/dp/flow-table';
import { rx } from '../helpers/test-host';
import { from, node } from '../helpers/compute-node';

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', parseTagValue: false, isArray: (name) => name === 'KFlowInfo' || name === 'SandeshFlowData' || name === 'AgingConfig' || name === 'ItfSandeshData' });

function setup(pairs: number, allowWrites = false) {
  const n = node();
  for (let k = 0; k < pairs; k++) rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 20000 + k, dport: 80, flags: 'S' }), n.vifOf('b1'));
  n.run();
  const inst = {
    table: n.r.ft, node: n.cn, agent: () => n.agent, exporting: () => undefined, clock: () => n.host.now,
  } as unknown as Instance;
  return { n, inst, allowWrites };
}

async function serve(s: ReturnType<typeof setup>) {
  const server = new IntrospectServer();
  server.use(...introspectRoutes(s.inst, { host: '127.0.0.1', port: 0, allowWrites: s.allowWrites }));
  const addr = await server.listen('127.0.0.1', 0);
  return { server, port: addr.port };
}

function get(port: number, path: string, headers: http.OutgoingHttpHeaders = {}, agent?: http.Agent): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString() }));
    }).on('error', reject);
  });
}

/** Parse an XML answer, checking it is well-formed. */
function xml(body: string): Record<string, any> {
  const v = XMLValidator.validate(body);
  if (v !== true) throw new Error(`not well-formed: ${JSON.stringify(v)}\n${body.slice(0, 400)}`);
  return parser.parse(body);
}

const activeCount = (s: ReturnType<typeof setup>): number => {
  let c = 0;
  for (let i = 0; i < s.n.r.ft.total; i++) if ((feFlags(s.n.r.ft, i) & 0x801) === 1) c++;
  return c;
};

test('KFlowReq: Sandesh shape, KFlowInfo fields, pages of 100 with NextKFlowReq reaching every flow once', async (t) => {
  const s = setup(150);
  const total = activeCount(s);
  t.true(total > 250, `${total} flows`);
  const { server, port } = await serve(s);
  try {
    const first = await get(port, '/Snh_KFlowReq?flow_idx=-1');
    t.is(first.status, 200);
    t.regex(first.type, /xml/);
    t.true(first.body.startsWith('<?xml-stylesheet type="text/xsl" href="/universal_parse.xsl"?><KFlowResp type="sandesh">'));
    let doc = xml(first.body).KFlowResp;
    t.is(doc['@type'], 'sandesh');
    t.is(doc.flow_list['@type'], 'list');
    t.is(doc.flow_list['@identifier'], '1');
    t.is(doc.flow_list.list['@type'], 'struct');
    t.is(doc.flow_list.list['@size'], String(MAX_FLOW_RESPONSE));
    t.is(doc.flow_handle['@link'], 'NextKFlowReq');
    const e = doc.flow_list.list.KFlowInfo[0];
    for (const k of ['index', 'rflow', 'sip', 'sport', 'dip', 'dport', 'proto', 'vrf_id', 'action', 'flags', 'd_vrf_id', 'bytes', 'pkts']) t.truthy(e[k], k);
    t.is(e.index['@type'], 'i32');
    t.is(e.index['@identifier'], '1');
    t.is(e.sip['@type'], 'string');
    const seen = new Set<number>();
    let pages = 0;
    for (;;) {
      pages++;
      for (const x of doc.flow_list.list.KFlowInfo ?? []) {
        const i = Number(x.index['#text']);
        t.false(seen.has(i), `index ${i} once`);
        seen.add(i);
        t.is(x.action['#text'], 'FORWARD');
        t.regex(x.flags['#text'], /ACTIVE/);
      }
      const h = doc.flow_handle['#text'];
      if (h === undefined || h === '') break;
      doc = xml((await get(port, `/Snh_NextKFlowReq?flow_handle=${h}`)).body).KFlowResp;
    }
    t.is(seen.size, total);
    t.is(pages, Math.ceil(total / MAX_FLOW_RESPONSE));
    const one = xml((await get(port, `/Snh_KFlowReq?flow_idx=${[...seen][0]}`)).body).KFlowResp;
    t.is(one.flow_list.list['@size'], '1');
    const sips = new Set([...doc.flow_list.list.KFlowInfo].map((x: any) => x.sip['#text']));
    t.true(sips.has('10.2.0.10') || sips.has('10.3.0.10'));
  } finally {
    await server.close();
  }
});

test('FetchAllFlowRecords + NextFlowRecordsSet: every agent flow once, SandeshFlowData fields; the same as JSON', async (t) => {
  const s = setup(140);
  const { server, port } = await serve(s);
  try {
    const seen = new Set<number>();
    let doc = xml((await get(port, '/Snh_FetchAllFlowRecords')).body).FlowRecordsResp;
    const d = doc.flow_list.list.SandeshFlowData[0];
    for (const k of ['vrf', 'sip', 'dip', 'src_port', 'dst_port', 'protocol', 'action', 'stats_bytes', 'uuid', 'flow_handle', 'src_vn', 'dst_vn', 'reverse_flow', 'aging_protocol']) t.truthy(d[k], k);
    t.is(d.src_vn['#text'] === 'default-domain:admin:blue' || d.src_vn['#text'] === 'default-domain:admin:red', true);
    t.is(doc.flow_key['@link'], 'NextFlowRecordsSet');
    for (;;) {
      for (const x of doc.flow_list.list.SandeshFlowData ?? []) {
        const i = Number(x.flow_handle['#text']);
        t.false(seen.has(i));
        seen.add(i);
      }
      const k = doc.flow_key['#text'];
      if (k === undefined || k === '') break;
      doc = xml((await get(port, `/Snh_NextFlowRecordsSet?flow_key=${k}`)).body).FlowRecordsResp;
    }
    t.is(seen.size, s.n.agent.flowCount);
    // JSON, by suffix and by Accept.
    const j1 = await get(port, '/Snh_KFlowReq.json?flow_idx=-1');
    t.regex(j1.type, /application\/json/);
    const o1 = JSON.parse(j1.body);
    t.is(o1.KFlowResp.flow_list.length, MAX_FLOW_RESPONSE);
    t.is(typeof o1.KFlowResp.flow_list[0].index, 'number');
    const j2 = JSON.parse((await get(port, '/Snh_FetchAllFlowRecords', { accept: 'application/json' })).body);
    t.is(j2.FlowRecordsResp.flow_list.length, MAX_FLOW_RESPONSE);
    t.regex(j2.FlowRecordsResp.flow_list[0].uuid, /^[0-9a-f-]{36}$/);
    // One flow by key.
    const fwd = j2.FlowRecordsResp.flow_list.find((x: any) => x.dst_port === 80);
    const nh = s.n.r.ft.u32[(fwd.flow_handle << 5) + 6];
    const one = xml((await get(port, `/Snh_FetchFlowRecord?nh=${nh}&sip=${fwd.sip}&dip=${fwd.dip}&src_port=${fwd.src_port}&dst_port=80&protocol=6`)).body);
    t.is(one.FlowRecordResp.record.SandeshFlowData[0].flow_handle['#text'], String(fwd.flow_handle));
    const none = xml((await get(port, `/Snh_FetchFlowRecord?nh=${nh}&sip=1.2.3.4&dip=${fwd.dip}&src_port=1&dst_port=80&protocol=6`)).body);
    t.truthy(none.FlowErrorResp);
  } finally {
    await server.close();
  }
});

test('stats, aging, interfaces, module pages; unknown request 404, bad arguments 400', async (t) => {
  const s = setup(3);
  const { server, port } = await serve(s);
  try {
    const st = xml((await get(port, '/Snh_AgentStatsReq')).body).FlowStatsResp;
    t.is(st.flow_active['#text'], String(s.n.agent.flowCount));
    t.is(st.flow_max_system_flows['#text'], String(s.n.r.ft.total));
    t.is(st.flow_created['@type'], 'u64');
    const ag = xml((await get(port, '/Snh_ShowAgingConfig')).body).AgingConfigResponse;
    t.true(ag.aging_config_list.list.AgingConfig.some((c: any) => c.protocol['#text'] === '6' && c.cache_timeout['#text'] === '180'));
    const at = xml((await get(port, '/Snh_FlowAgeTimeReq')).body).FlowAgeTimeResp;
    t.is(at.old_age_time['#text'], '180');
    const fc = xml((await get(port, '/Snh_ShowFlowStatsCollector?protocol=6&port=0')).body).FlowStatsCollectorResp;
    t.is(fc.flow_count['#text'], String(s.n.agent.flowCount));
    const itf = xml((await get(port, '/Snh_ItfReq')).body).ItfResp;
    t.true(itf.itf_list.list.ItfSandeshData.some((v: any) => v.vm_name?.['#text'] === 'b1'));
    t.truthy(xml((await get(port, '/Snh_FlowExportStatsReq')).body).FlowExportStatsResp);
    const pkt = xml((await get(port, '/pkt.xml')).body);
    t.truthy(pkt.pkt.FetchAllFlowRecords);
    t.truthy(pkt.pkt.AgentStatsReq);
    t.truthy(xml((await get(port, '/kstate.xml')).body).kstate.KFlowReq);
    const unk = await get(port, '/Snh_NoSuchReq');
    t.is(unk.status, 404);
    t.truthy(xml(unk.body).ErrResp.resp);
    for (const p of ['/Snh_KFlowReq?flow_idx=abc', '/Snh_KFlowReq?flow_idx=99999999', '/Snh_NextKFlowReq', '/Snh_FetchFlowRecord?nh=1&sip=300.1.1.1', '/Snh_ShowFlowStatsCollector?protocol=17&port=9']) {
      const r = await get(port, p);
      t.is(r.status, 400, p);
      t.regex(xml(r.body).ErrResp.resp['#text'], /argument|aging table/, p);
    }
  } finally {
    await server.close();
  }
});

test('writes: 403 without --introspect-allow-writes; with it, DeleteAllFlowRecords deletes, AddAgingConfig adds a table', async (t) => {
  const ro = setup(5);
  const a = await serve(ro);
  try {
    for (const p of ['/Snh_DeleteAllFlowRecords', '/Snh_AddAgingConfig?protocol=17&port=53&cache_timeout=30', '/Snh_DeleteAgingConfig?protocol=17&port=53', '/Snh_FlowAgeTimeReq?new_age_time=60']) {
      const r = await get(a.port, p);
      t.is(r.status, 403, p);
      t.regex(xml(r.body).ErrResp.resp['#text'], /--introspect-allow-writes/);
    }
    t.is(ro.n.agent.flowCount, 10);
  } finally {
    await a.server.close();
  }
  const rw = setup(5, true);
  const b = await serve(rw);
  try {
    t.is(rw.n.agent.flowCount, 10);
    t.is((await get(b.port, '/Snh_DeleteAllFlowRecords')).status, 200);
    rw.n.run();
    t.is(rw.n.agent.flowCount, 0);
    t.is(activeCount(rw), 0, 'the entries went through FLOW_SET deletes');
    t.is(rw.n.agent.stats.deleted, 10);
    const add = await get(b.port, '/Snh_AddAgingConfig?protocol=17&port=53&cache_timeout=30');
    t.is(add.status, 200);
    t.true(rw.n.agent.collectors.some((c) => c.proto === 17 && c.port === 53 && c.ageMs === 30_000 && !c.deleted));
    t.is((await get(b.port, '/Snh_DeleteAgingConfig?protocol=17&port=53')).status, 200);
    t.false(rw.n.agent.collectors.some((c) => c.proto === 17 && c.port === 53 && !c.deleted));
    const at = xml((await get(b.port, '/Snh_FlowAgeTimeReq?new_age_time=60')).body).FlowAgeTimeResp;
    t.is(at.new_age_time['#text'], '60');
    t.is(rw.n.agent.collectors.find((c) => c.proto === 0 && c.port === 0)?.ageMs, 60_000);
    t.is((await get(b.port, '/Snh_AddAgingConfig?protocol=17')).status, 400);
  } finally {
    await b.server.close();
  }
});

test('1000 concurrent requests complete; the heap does not grow without bound', async (t) => {
  const s = setup(60);
  const { server, port } = await serve(s);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const gc = (globalThis as { gc?: () => void }).gc;
  try {
    const round = async (): Promise<number> => {
      const rs = await Promise.all(Array.from({ length: 1000 }, (_, k) => get(port, k % 2 ? '/Snh_KFlowReq?flow_idx=-1' : '/Snh_FetchAllFlowRecords.json', {}, agent)));
      return rs.filter((r) => r.status === 200).length;
    };
    t.is(await round(), 1000);
    gc?.();
    const before = process.memoryUsage().heapUsed;
    for (let k = 0; k < 3; k++) t.is(await round(), 1000);
    gc?.();
    const after = process.memoryUsage().heapUsed;
    t.true(after - before < 64 * 1024 * 1024, `heap grew ${((after - before) / 1e6).toFixed(1)} MB`);
  } finally {
    agent.destroy();
    await server.close();
  }
});
