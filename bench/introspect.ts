/**
 * bench:introspect — does the introspect slow the datapath, and what does a scrape cost at 512K flows?
 * As root, on this 2-CPU machine, one running emulator (vr_flow_entries=1048576, vr_oflow_entries=131072,
 * datapath thread on CPU 1, introspect on 127.0.0.1 and a free port):
 *  1. filled with 512K active flows through the datapath (a UDP scan of new (source port, destination
 *     port) pairs from vm ia to vm ib, each set up by the agent as a pair — as bench:aging fills);
 *  2. 64-byte UDP frames ia → ib over one established flow, generator on CPU 0: packets per second
 *     received in ib, with a scraper fetching /metrics and / every second (what Prometheus and the open
 *     live page do) and with neither, alternating, median of ROUNDS each; the ratio with/without;
 *  3. the scrape time: every /metrics fetch of the scraper timed end to end over HTTP (request to last
 *     byte) on the 512K-flow node, median and max, and that its vrouter_flow_entries is the table's.
 * Last line: one JSON object.
 *
 * Run: sudo npm run bench:introspect   (needs gcc, iproute2, python3)
 */
import * as http from 'http';
import * as net from 'net';
import { ChildProcess, spawn } from 'child_process';
import { GEN, buildUdpgen, median, needRoot, sh, sink, sleep, startEmulator } from './lib/emulator';

const SECS = 3;
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const FILL_RATE = 50000;
const TARGET_FLOWS = Number(process.env.TARGET_FLOWS ?? 512 * 1024);
const FLOW_ENTRIES = 1048576;
const OFLOW_ENTRIES = 131072;
const MEASURED = { UDPGEN_SPORT: '40009' };

function rxPackets(ns: string): number {
  return Number(sh('ip', ['netns', 'exec', ns, 'cat', '/sys/class/net/eth0/statistics/rx_packets']).trim());
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

const agent = new http.Agent({ keepAlive: false });

/** GET a path: status, body and milliseconds from the request to the last byte. */
function fetch(port: number, path: string): Promise<{ status: number; body: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    }).on('error', reject);
  });
}

const metric = (text: string, name: string): number => Number((new RegExp(`^${name} (\\S+)$`, 'm').exec(text) ?? ['', 'NaN'])[1]);

/** Fetch /metrics and / once a second until stopped; the /metrics times. */
function scraper(port: number): { stop: () => Promise<{ metricsMs: number[]; collectMs: number[]; pageStatus: number[] }> } {
  const metricsMs: number[] = [];
  const collectMs: number[] = [];
  const pageStatus: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t0 = Date.now();
      const [m, p] = await Promise.all([fetch(port, '/metrics'), fetch(port, '/')]);
      if (m.status !== 200) throw new Error(`/metrics answered ${m.status}`);
      metricsMs.push(m.ms);
      collectMs.push(metric(m.body, 'vrouter_scrape_duration_seconds') * 1000);
      pageStatus.push(p.status);
      const wait = 1000 - (Date.now() - t0);
      for (let k = 0; running && k < wait; k += 50) await sleep(Math.min(50, wait - k));
    }
  })();
  return { stop: async () => {
    running = false;
    await loop;
    return { metricsMs, collectMs, pageStatus };
  } };
}

/** The generator for SECS on CPU 0 over the measured flow: pps received in ib. */
async function blast(): Promise<number> {
  const a = rxPackets('vm-ib');
  const t0 = process.hrtime.bigint();
  // Spawned, not execFileSync: the scraper in this process must keep running meanwhile.
  await new Promise<void>((resolve, reject) => {
    const g = spawn('taskset', ['-c', '0', 'ip', 'netns', 'exec', 'vm-ia', GEN, '10.69.1.4', '9', '18', String(SECS)], { stdio: 'ignore', env: { ...process.env, ...MEASURED } });
    g.once('error', reject);
    g.once('exit', () => resolve());
  });
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  return (rxPackets('vm-ib') - a) / dt;
}

async function main(): Promise<void> {
  needRoot('bench:introspect');
  buildUdpgen();
  const port = await freePort();
  const emu = await startEmulator({
    networks: [{ name: 'ibench', subnet: '10.69.1.0/24', gateway: '10.69.1.1' }],
    vms: [{ name: 'ia', ip: '10.69.1.3', network: 'ibench' }, { name: 'ib', ip: '10.69.1.4', network: 'ibench' }],
  }, ['--cpu', '1', '--param', `vr_flow_entries=${FLOW_ENTRIES}`, '--param', `vr_oflow_entries=${OFLOW_ENTRIES}`, '--introspect-listen', `127.0.0.1:${port}`]);
  const stats = (): { flowsActive: number; table: { active: number } } => JSON.parse(emu.tool('agent', 'stats', '--json'));
  let sinkProc: ChildProcess | undefined;
  try {
    sinkProc = sink('vm-ib');
    await sleep(500);
    sh('ip', ['netns', 'exec', 'vm-ia', 'ping', '-c', '1', '-W', '2', '10.69.1.4']);
    // A scrape of the empty node, for comparison.
    const empty: number[] = [];
    for (let k = 0; k < 10; k++) empty.push((await fetch(port, '/metrics')).ms);

    // 1. Fill.
    const f0 = Date.now();
    for (let round = 0, want = TARGET_FLOWS / 2; round < 5 && want > 0; round++) {
      const n = round === 0 ? want : Math.ceil(want * 1.02);
      sh('taskset', ['-c', '0', 'ip', 'netns', 'exec', 'vm-ia', GEN, '10.69.1.4', '9', '18', '0', 'scan', String(n), String(FILL_RATE)],
        { UDPGEN_SPORT: String(1024 + round * 8) });
      let last = -1;
      for (let idle = 0; idle < 5; ) {
        await sleep(200);
        const a = stats().flowsActive;
        if (a === last) idle++;
        else idle = 0;
        last = a;
      }
      want = Math.ceil((TARGET_FLOWS - last) / 2);
    }
    const fillSecs = (Date.now() - f0) / 1000;
    sh('ip', ['netns', 'exec', 'vm-ia', GEN, '10.69.1.4', '9', '18', '0.2'], MEASURED);
    await sleep(300);
    const filled = stats();
    const m = await fetch(port, '/metrics');
    const scrapedEntries = metric(m.body, 'vrouter_flow_entries');
    const tableActive = stats().table.active;

    // 2. Alternating rounds: scraper on, scraper off.
    const withS: number[] = [];
    const without: number[] = [];
    const scrapeMs: number[] = [];
    const collectMs: number[] = [];
    const pageStatus = new Set<number>();
    for (let r = 0; r < ROUNDS; r++) {
      const s = scraper(port);
      withS.push(await blast());
      const got = await s.stop();
      scrapeMs.push(...got.metricsMs);
      collectMs.push(...got.collectMs.slice(1));
      for (const x of got.pageStatus) pageStatus.add(x);
      without.push(await blast());
    }
    // 3. Scrapes at 512K with the node idle.
    const idle: number[] = [];
    const idleCollect: number[] = [];
    for (let k = 0; k < 20; k++) {
      const x = await fetch(port, '/metrics');
      idle.push(x.ms);
      if (k > 0) idleCollect.push(metric(x.body, 'vrouter_scrape_duration_seconds') * 1000);
    }

    const w = median(withS);
    const wo = median(without);
    const K = (x: number): string => `${(x / 1000).toFixed(0)} kpps`;
    const ms = (x: number): string => `${x.toFixed(2)} ms`;
    console.log(`table ${FLOW_ENTRIES} + ${OFLOW_ENTRIES} entries, filled through the datapath to ${filled.flowsActive} flows in ${fillSecs.toFixed(1)} s; /metrics says vrouter_flow_entries ${scrapedEntries} (table active ${tableActive}), ${m.body.length} bytes`);
    console.log(`forwarding 64 B ia → ib, generator on CPU 0, datapath thread on CPU 1, ${SECS} s per run, ${ROUNDS} rounds alternating, medians:`);
    console.log(`  scraping /metrics + / every second ${K(w)}   neither ${K(wo)}   ratio ${(w / wo).toFixed(3)}   (runs ${withS.map(K).join(', ')} / ${without.map(K).join(', ')}; / answered ${[...pageStatus].join(', ')})`);
    console.log(`  /metrics over HTTP at ${filled.flowsActive} flows: during forwarding median ${ms(median(scrapeMs))} max ${ms(Math.max(...scrapeMs))} (${scrapeMs.length} scrapes); idle median ${ms(median(idle))} max ${ms(Math.max(...idle))}; empty node median ${ms(median(empty))}`);
    console.log(`  collect + format in the agent (vrouter_scrape_duration_seconds of the previous scrape): during forwarding median ${ms(median(collectMs))} max ${ms(Math.max(...collectMs))}; idle median ${ms(median(idleCollect))} max ${ms(Math.max(...idleCollect))}`);
    console.log(JSON.stringify({
      bench: 'introspect', flows: filled.flowsActive, scrapedFlowEntries: scrapedEntries, tableActive,
      pps64Scraping: Math.round(w), baselinePps64: Math.round(wo), ratio: +(w / wo).toFixed(3),
      scrapeMsMedian: +median(scrapeMs).toFixed(2), scrapeMsMax: +Math.max(...scrapeMs).toFixed(2),
      scrapeMsIdleMedian: +median(idle).toFixed(2), scrapeMsEmptyMedian: +median(empty).toFixed(2),
      collectMsMedian: +median(collectMs).toFixed(2), collectMsMax: +Math.max(...collectMs).toFixed(2), collectMsIdleMedian: +median(idleCollect).toFixed(2), pageStatus: [...pageStatus],
      goals: { ratio: 0.97, scrapeMsMax: 50 },
    }));
  } finally {
    sinkProc?.kill();
    await emu.stop();
  }
}

main().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
