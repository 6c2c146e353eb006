/**
 * The live page's server side on an in-thread node: the JSON it polls (summary, flows with filter and
 * paging, vifs, dropstats), the page and its client bundle, and the bounds of the flow scan.
 */
import test from 'ava';
import * as fs from 'fs';
import * as http from 'http';
import type { Instance } from '../../src/cli/tools';
import { DROPSTATS_LINES } from '../../src/cli/dropstats';
import { FTI_ACTION_COUNT, FTI_ADDED } from '../../src/dp/flow-table';
import { routerShared } from '../../src/dp/router';
import { tcpFrame, udpFrame } from '../../src/io/frame-build';
import { IntrospectServer } from '../../src/introspect/server';
import { FLOW_PAGE, flowPage, pageRoutes, parseFlowFilter } from '../../src/introspect/page';
import { distFile } from '../../src/lib/package-root';
import { MODULE_PARAM_DEFAULTS } from '../../src/params/module-params';
import { rx } from '../helpers/test-host';
import { from, node } from '../helpers/compute-node';

function instanceOf(n: ReturnType<typeof node>): Instance {
  return {
    params: { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 1024, vr_oflow_entries: 64 } as Instance['params'],
    shared: routerShared(n.r) as unknown as Instance['shared'],
    table: n.r.ft,
    node: n.cn,
    mirror: {} as Instance['mirror'],
    agent: () => n.agent,
    exporting: () => undefined,
    reload: () => '',
    clock: () => n.host.now,
    io: { attachments: {} as Instance['io']['attachments'], guests: [], offload: [] },
  };
}

/** A node with 120 UDP flows b1 → b2 (ports 5000…5119), one TCP flow b1 → r1:80 and one denied (ICMP). */
function busyNode() {
  const n = node();
  for (let k = 0; k < 120; k++) rx(n.r, udpFrame(from('b1', n, '10.2.0.10', '10.2.0.11'), { sport: 30000 + k, dport: 5000 + k, payload: 10 }), n.vifOf('b1'));
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40000, dport: 80, flags: 'S' }), n.vifOf('b1'));
  rx(n.r, tcpFrame(from('b1', n, '10.2.0.10', '10.3.0.10'), { sport: 40001, dport: 22, flags: 'S' }), n.vifOf('b1'));
  n.run();
  return n;
}

async function serve(inst: Instance) {
  const server = new IntrospectServer();
  server.use(...pageRoutes(inst));
  const { port } = await server.listen('127.0.0.1', 0);
  const get = (p: string) =>
    new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
      http.get(`http://127.0.0.1:${port}${p}`, (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => (text += d));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, type: String(r.headers['content-type'] ?? ''), text }));
      }).on('error', reject);
    });
  const getJson = async (p: string) => {
    const r = await get(p);
    return { status: r.status, body: JSON.parse(r.text) };
  };
  return { server, get, getJson };
}

test('the filter box: fields, bare words, errors', (t) => {
  t.deepEqual(parseFlowFilter(''), { ips: [], ports: [], vns: [] });
  t.deepEqual(parseFlowFilter(' 10.2.0 udp 53  vn:Blue '), { ips: ['10.2.0'], ports: [53], proto: 17, vns: ['blue'] });
  t.deepEqual(parseFlowFilter('ip:10.3 port=80 proto:6 red'), { ips: ['10.3'], ports: [80], proto: 6, vns: ['red'] });
  t.regex(parseFlowFilter('port:70000') as string, /port:70000: expected 0 to 65535/);
  t.regex(parseFlowFilter('proto:gre') as string, /proto:gre/);
  t.regex(parseFlowFilter('tcp udp') as string, /two different protocols/);
  t.regex(parseFlowFilter('x'.repeat(300)) as string, /longer than/);
});

test('/api/summary, /api/vifs, /api/dropstats: occupancy, counters by R2.22 label, vif counters', async (t) => {
  const n = busyNode();
  const inst = instanceOf(n);
  const { server, getJson } = await serve(inst);
  try {
    const s = (await getJson('/api/summary')).body;
    t.deepEqual(s.table, { entries: 1024, oentries: 64, total: 1088 });
    t.is(s.active, 244, '122 pairs');
    t.is(s.occupancyPct, (100 * 244) / 1088);
    t.is(typeof s.overflowUsed, 'number');
    t.true(s.created >= 122);
    t.is(s.added, n.r.ft.info[FTI_ADDED], 'Added of the table');
    t.is(s.processed, n.r.ft.info[FTI_ACTION_COUNT]);
    t.true(s.drops['Flow Action Drop'] >= 1, 'the denied SYN');
    t.is(s.drops['Flow Table Full'], 0);
    t.true(s.dropsTotal >= s.drops['Flow Action Drop']);
    t.true(Math.abs(s.time - Date.now()) < 5000);
    t.deepEqual(s.node.networks, n.cn.vnNames);

    const vifs = (await getJson('/api/vifs')).body as { idx: number; vm: string; rxPackets: number; os: string; name: string }[];
    const b1 = vifs.find((v) => v.vm === 'b1');
    t.truthy(b1);
    t.is(b1?.name, `vif0/${n.vifOf('b1')}`);
    t.is(b1?.rxPackets, 122);
    t.deepEqual(vifs.map((v) => v.idx), [...vifs.map((v) => v.idx)].sort((a, b) => a - b));

    const ds = (await getJson('/api/dropstats')).body as { label: string; code: number; value: number }[];
    t.is(ds[0].label, 'GARP');
    t.is(ds.length, DROPSTATS_LINES.filter((l) => l !== null).length);
    t.is(ds.find((d) => d.label === 'Flow Action Drop')?.value, s.drops['Flow Action Drop']);
  } finally {
    await server.close();
  }
});

test('/api/flows: server-side filter on IP, port, proto and VN; pages of 100', async (t) => {
  const n = busyNode();
  const { server, getJson } = await serve(instanceOf(n));
  try {
    const all = (await getJson('/api/flows')).body;
    t.is(all.active, 244);
    t.is(all.matched, 244);
    t.is(all.flows.length, FLOW_PAGE);
    t.false(all.partial);
    const p2 = (await getJson('/api/flows?page=2')).body;
    t.is(p2.flows.length, 44);
    const seen = new Set<number>();
    for (let p = 0; p < 3; p++) for (const f of (await getJson(`/api/flows?page=${p}`)).body.flows) seen.add(f.index);
    t.is(seen.size, 244, 'the pages cover every flow once');

    const udp = (await getJson('/api/flows?filter=udp')).body;
    t.is(udp.matched, 240);
    t.true(udp.flows.every((f: { proto: number; protoName: string }) => f.proto === 17 && f.protoName === 'udp'));

    const port = (await getJson(`/api/flows?filter=${encodeURIComponent('port:5003')}`)).body;
    t.is(port.matched, 2, 'the pair of 30003 → 5003');
    t.deepEqual(port.flows.map((f: { sport: number; dport: number }) => [f.sport, f.dport]).sort(), [[30003, 5003], [5003, 30003]]);
    t.is(port.flows[0].rindex, port.flows[1].index);

    const tcp = (await getJson(`/api/flows?filter=${encodeURIComponent('tcp 10.3.0.10')}`)).body;
    t.is(tcp.matched, 4);
    const ok = tcp.flows.find((f: { dport: number }) => f.dport === 80);
    t.is(ok.action, 'F');
    t.is(ok.srcVn, 'default-domain:admin:blue');
    t.is(ok.dstVn, 'default-domain:admin:red');
    t.regex(ok.tcp, /^S/);
    t.is(ok.packets, 1);
    t.regex(tcp.flows.find((f: { dport: number }) => f.dport === 22).action, /^D\(/);

    const red = (await getJson('/api/flows?filter=vn:red')).body;
    t.is(red.matched, 4, 'the VN of either side');
    t.is((await getJson('/api/flows?filter=vn:nosuch')).body.matched, 0);

    const bad = await getJson('/api/flows?filter=port:99999');
    t.is(bad.status, 400);
    t.regex(bad.body.error, /port:99999/);
    t.is((await getJson('/api/flows?page=-1')).status, 400);
  } finally {
    await server.close();
  }
});

test('the flow scan yields between slices and stops at its time budget', async (t) => {
  const n = busyNode();
  const inst = instanceOf(n);
  let turns = 0;
  let done = false;
  const spin = (): void => {
    if (done) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  const p = await flowPage(inst, '', parseFlowFilter('') as never, 0, { sliceSize: 64 });
  done = true;
  t.is(p.matched, 244);
  t.true(turns >= 10, `other work ran between the ${Math.ceil(1088 / 64)} slices (${turns} turns)`);
  const cut = await flowPage(inst, '', parseFlowFilter('') as never, 0, { sliceSize: 64, budgetMs: -1 });
  t.true(cut.partial);
  t.is(cut.scanned, 64);
});

test('/ is the page, /app.js the client bundle from dist/', async (t) => {
  const { server, get } = await serve(instanceOf(node()));
  try {
    const page = await get('/');
    t.is(page.status, 200);
    t.regex(page.type, /text\/html/);
    t.regex(page.text, /<script src="app.js">/);
    for (const id of ['chart-occupancy', 'chart-drops', 'flow-filter', 'flow-prev', 'flow-next', 'flows', 'vifs', 'drops']) t.regex(page.text, new RegExp(`id="${id}"`));
    const app = await get('/app.js');
    if (fs.existsSync(distFile('web/app.js'))) {
      t.is(app.status, 200);
      t.regex(app.type, /javascript/);
      t.regex(app.text, /data-flow-index/);
    } else {
      t.is(app.status, 503, 'not built: says so');
      t.regex(app.text, /npm run build/);
    }
    t.is((await get('/api/nosuch')).status, 404);
  } finally {
    await server.close();
  }
});
