/**
 * bench:export — flow export's cost and accuracy, in one process with an injected clock (no root):
 *  1. A datapath with vr_flow_entries=1048576 is filled through its packet path with 262 144 UDP flow
 *     pairs (524 288 active flows) that the agent sets up. Then 60 s of agent time run in 100 ms steps:
 *     each step 2 000 packets (20 kpps) on random flows through the datapath, and the agent's timers —
 *     the aging scan, whose visits produce the samples, and the export threshold. The same run is made
 *     without export (baseline) and with export at flow_export_rate 1000 to an encoder of the
 *     collector's wire format: the agent CPU time per second of agent time, both, and their difference
 *     (what export costs).
 *  2. Records encoded per second: the collector's JSON lines and IPFIX, each alone.
 *  3. The estimate error against the export rate: for each rate, the sum of the exported (normalized)
 *     diff_bytes against the true sum of the deltas the samples carried, and the rate measured.
 * Last line: one JSON object. Run: npm run bench:export
 */
import { performance } from 'perf_hooks';
import { FlowExport, FlowRecord } from '../src/agent/flow-export';
import { FlowMgr, FlowSampler, allowAllEnv } from '../src/agent/flow-mgr';
import { DirectChannel } from '../src/agent/dp-channel';
import { ipfixMessage, RECORDS_PER_MESSAGE } from '../src/collector/ipfix';
import { createDatapath, dpBurstEnd, dpRx } from '../src/dp/datapath';
import { VIF_FLAG_L2_ENABLED, VIF_FLAG_L3_ENABLED, VIF_FLAG_POLICY_ENABLED, VIF_TYPE_VIRTUAL, macParse, vifAdd } from '../src/dp/interface';
import type { HostOs, Router } from '../src/dp/router';
import { udpFrame } from '../src/io/frame-build';
import { xorshift32 } from '../src/lib/xorshift';
import { MODULE_PARAM_DEFAULTS } from '../src/params/module-params';

const PAIRS = 262_144;
const SIM_SECONDS = 60;
const PACKETS_PER_STEP = 2000;

class BenchHost implements HostOs {
  now = 1_000_000;
  traps: Uint8Array[] = [];
  random32 = xorshift32(0xbe7c4);
  monoMs(): number {
    return this.now;
  }
  tx(): void {
    /* forwarded frames are dropped here */
  }
  trap(buf: Uint8Array, off: number, len: number): void {
    this.traps.push(buf.slice(off, off + len));
  }
}

const ip = { src: '10.1.1.3', dst: '10.1.1.4', srcMac: '02:00:00:00:00:03', dstMac: '00:00:5e:00:01:00' };

/** The frame of flow k (its ports), with `payload` bytes. */
function frame(k: number, payload: number): Uint8Array {
  return udpFrame(ip, { sport: 1024 + (k % 60000), dport: 1 + Math.floor(k / 60000), payload });
}

interface Node {
  r: Router;
  host: BenchHost;
  agent: FlowMgr;
  ch: DirectChannel;
}

/** A datapath with one VM vif and an agent holding PAIRS flow pairs. */
function filled(): Node {
  const host = new BenchHost();
  const r = createDatapath(host, { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 1_048_576, vr_oflow_entries: 131_072 }, { routing: false });
  vifAdd(r.vifs, {
    idx: 3, type: VIF_TYPE_VIRTUAL, name: 'tap-bench', vrf: 1, nh: 16,
    flags: VIF_FLAG_POLICY_ENABLED | VIF_FLAG_L3_ENABLED | VIF_FLAG_L2_ENABLED, mtu: 1500, mac: macParse('00:00:5e:00:01:00') as Uint8Array, up: true, ip: 0,
  });
  const ch = new DirectChannel(r);
  const agent = new FlowMgr(r.ft, ch, allowAllEnv(), { ageMs: 180_000, tcpScanMs: 15_000 }, () => host.now);
  for (let k = 0; k < PAIRS; k++) {
    const f = frame(k, 18);
    dpRx(r, 3, f, 0, f.length);
    dpBurstEnd(r);
    if (k % 256 === 255 || k === PAIRS - 1) {
      for (const t of host.traps.splice(0)) agent.onTrap(t);
      ch.settle();
    }
  }
  return { r, host, agent, ch };
}

/** Counts what the sampler is offered (the true deltas) around the real one. */
class Offered implements FlowSampler {
  bytes = 0;
  samples = 0;
  constructor(private readonly inner: FlowSampler | undefined) {}
  sample(i: number, db: number, dp: number, teardown: boolean, now: number): boolean {
    this.bytes += db;
    this.samples++;
    return this.inner ? this.inner.sample(i, db, dp, teardown, now) : false;
  }
}

interface Run {
  cpuMsPerSec: number;
  offeredBytes: number;
  exportedBytes: number;
  records: number;
  samples: number;
  measuredRate: number;
  threshold: number;
}

/**
 * SIM_SECONDS of agent time on node `n` (traffic from the same seed each run); `rate` undefined = no
 * export. CPU time is the process's (user + system) spent in the agent's timers and the export.
 */
function simulate(n: Node, rate: number | undefined): Run {
  const { r, host, agent, ch } = n;
  let exportedBytes = 0;
  let records = 0;
  const encoder = new WireEncoder();
  let fx: FlowExport | undefined;
  if (rate !== undefined) {
    fx = new FlowExport(agent, r.ft, { vnName: () => 'default-domain:admin:bench', vmInterface: () => undefined, vrouterIp: '192.0.2.1' }, { rate, disable: false },
      () => host.now, xorshift32(0x5eed), (rec) => {
        exportedBytes += rec.diff_bytes;
        records++;
        encoder.push(rec);
      });
  }
  const offered = new Offered(fx);
  agent.sampler = offered;
  const rnd = xorshift32(0x7aff1c);
  let cpu = 0;
  for (let step = 0; step < SIM_SECONDS * 10; step++) {
    for (let p = 0; p < PACKETS_PER_STEP; p++) {
      const k = rnd() % PAIRS;
      const f = frame(k, 18 + (rnd() % 400));
      dpRx(r, 3, f, 0, f.length);
    }
    dpBurstEnd(r);
    host.now += 100;
    const c0 = process.cpuUsage();
    agent.tick(host.now);
    fx?.tick(host.now);
    ch.settle();
    const c1 = process.cpuUsage(c0);
    cpu += (c1.user + c1.system) / 1000;
  }
  encoder.flush();
  agent.sampler = undefined;
  return {
    cpuMsPerSec: cpu / SIM_SECONDS, offeredBytes: offered.bytes, exportedBytes, records, samples: offered.samples,
    measuredRate: fx?.sampler.measuredRate ?? 0, threshold: fx?.sampler.threshold ?? 0,
  };
}

/** The collector's wire format, batched as the exporter batches it (the encoding cost, no socket). */
class WireEncoder {
  private batch: FlowRecord[] = [];
  private seq = 0;
  bytes = 0;
  push(r: FlowRecord): void {
    this.batch.push(r);
    if (this.batch.length === 256) this.flush();
  }
  flush(): void {
    if (this.batch.length === 0) return;
    this.bytes += JSON.stringify({ seq: ++this.seq, records: this.batch }).length + 1;
    this.batch = [];
  }
}

function sampleRecord(k: number): FlowRecord {
  return {
    flowuuid: `6ca30cfc-6593-4184-a393-${k.toString(16).padStart(12, '0')}`, direction_ing: 1, sourcevn: 'default-domain:admin:blue', sourceip: 0x0a02000a + (k & 0xff),
    destvn: 'default-domain:admin:red', destip: 0x0a03000a, protocol: 17, sport: 1024 + (k % 60000), dport: 53, tcp_flags: 0, vm: 'vm1',
    reverse_uuid: '498fb9bd-e67b-4a9e-bbf6-b75e4b6aabe5', bytes: 12345 + k, packets: 17, diff_bytes: 980, diff_packets: 2, action: 'pass',
    sg_rule_uuid: '00000000-0000-0000-0000-000000000001', nw_ace_uuid: '00000000-0000-0000-0000-000000000001', underlay_source_port: 0,
    vmi_uuid: 'f2d7c9a4-1b2c-4d3e-8f90-0123456789ab', drop_reason: 'UNKNOWN',
  };
}

function encodeRates(): { wire: number; ipfix: number } {
  const recs = Array.from({ length: 4096 }, (_, k) => sampleRecord(k));
  const N = 400_000;
  let t0 = performance.now();
  const enc = new WireEncoder();
  for (let k = 0; k < N; k++) enc.push(recs[k & 4095]);
  enc.flush();
  const wire = N / ((performance.now() - t0) / 1000);
  const ip4 = recs.map((r) => ({ src: r.sourceip, dst: r.destip, sport: r.sport, dport: r.dport, proto: r.protocol, tcpFlags: 0, octets: r.diff_bytes, packets: r.diff_packets, startMs: 1.8e12, endMs: 1.8e12 + 5, egress: false }));
  t0 = performance.now();
  let seq = 0;
  for (let k = 0; k < N; k += RECORDS_PER_MESSAGE) {
    ipfixMessage(ip4.slice(k & 4095, (k & 4095) + RECORDS_PER_MESSAGE), seq, 1_800_000_000, (k & 8191) === 0);
    seq += RECORDS_PER_MESSAGE;
  }
  const ipfix = N / ((performance.now() - t0) / 1000);
  return { wire, ipfix };
}

function main(): void {
  // Every run starts from a freshly filled table (the same flows, the same traffic seed), so that runs
  // compare: in one table the flows of earlier runs would age out.
  let active = 0;
  const run = (rate: number | undefined): Run => {
    const n = filled();
    active = n.agent.flowCount;
    return simulate(n, rate);
  };
  // Baseline and export alternate.
  const base1 = run(undefined);
  const ex1 = run(1000);
  const base2 = run(undefined);
  const ex2 = run(1000);
  const base = (base1.cpuMsPerSec + base2.cpuMsPerSec) / 2;
  const exp = (ex1.cpuMsPerSec + ex2.cpuMsPerSec) / 2;
  const enc = encodeRates();
  const table: { rate: number; run: Run }[] = [];
  for (const rate of [100, 1000, 10_000, -1]) table.push({ rate, run: run(rate) });

  const pct = (r: Run): number => (100 * (r.exportedBytes - r.offeredBytes)) / r.offeredBytes;
  console.log(`flow export, ${active} active flows (each run on a table filled afresh through the datapath), ${SIM_SECONDS} s of agent time, ${PACKETS_PER_STEP * 10} pps on random flows`);
  console.log(`  agent CPU per second of agent time: without export ${base.toFixed(1)} ms, with export at 1000/s ${exp.toFixed(1)} ms; export costs ${(exp - base).toFixed(1)} ms/s (${((exp - base) / 10).toFixed(2)} % of a CPU)`);
  console.log(`    samples ${ex1.samples} per run (${(ex1.samples / SIM_SECONDS).toFixed(0)}/s), records ${ex1.records} (${(ex1.records / SIM_SECONDS).toFixed(0)}/s), threshold at the end ${ex1.threshold}, measured rate ${ex1.measuredRate}/s`);
  console.log(`  records encoded per second, one core: collector JSON lines ${(enc.wire / 1000).toFixed(0)} k/s, IPFIX ${(enc.ipfix / 1000).toFixed(0)} k/s`);
  console.log('  estimate error against the export rate (Σ exported normalized diff_bytes vs Σ true deltas):');
  console.log('    rate/s   samples/s  records/s  measured  threshold   error');
  for (const { rate, run } of table) {
    console.log(`    ${String(rate === -1 ? 'all' : rate).padStart(6)}   ${(run.samples / SIM_SECONDS).toFixed(0).padStart(9)}  ${(run.records / SIM_SECONDS).toFixed(0).padStart(9)}  ${String(run.measuredRate).padStart(8)}  ${String(run.threshold).padStart(9)}  ${pct(run).toFixed(2).padStart(6)} %`);
  }
  console.log(JSON.stringify({
    bench: 'export', activeFlows: active, agentCpuMsPerSecBaseline: +base.toFixed(2), agentCpuMsPerSecExport: +exp.toFixed(2),
    exportCpuMsPerSec: +(exp - base).toFixed(2), recordsPerSec: +(ex1.records / SIM_SECONDS).toFixed(1),
    encodePerSec: { wire: Math.round(enc.wire), ipfix: Math.round(enc.ipfix) },
    errorByRate: table.map(({ rate, run }) => ({ rate, recordsPerSec: +(run.records / SIM_SECONDS).toFixed(1), measuredRate: run.measuredRate, threshold: run.threshold, errorPct: +pct(run).toFixed(3) })),
  }));
}

main();
