/**
 * The synthetic capture generator: reproducible by seed, the counts asked for, whole TCP sessions, every
 * frame valid (a property over random options: it parses into a flow key, its checksums hold, it is the
 * frame io/frame-build.ts would build), and replays with the number of flows the test predicts.
 */
import test from 'ava';
import fc from 'fast-check';
import { SYNTH_EPOCH_MS, SYNTH_SCENARIOS, Synth, SynthOptions, SynthScenario } from '../../src/capacity/synth';
import { CaptureReader } from '../../src/io/pcap';
import { inetChecksum, tcpFrame, udpFrame } from '../../src/io/frame-build';
import { Pkt } from '../../src/dp/pkt';
import { FragTable, KEY_OK, flowKeyBuild, ipParse } from '../../src/dp/proto-ip';
import { replayCapture } from '../../src/cli/replay-run';
import { MODULE_PARAM_DEFAULTS } from '../../src/params/module-params';
import { FTI_ADDED, feFlags, flowCreatedCount } from '../../src/dp/flow-table';
import { VP_DROP_MAX, VR_FLOW_FLAG_ACTIVE, VR_FLOW_FLAG_EVICTED } from '../../src/dp/defs';
import { RES_FORWARDED } from '../../src/dp/router';
import { ipString } from '../../src/lib/ipv4';
import { userErrorOf } from '../helpers/user-error';
import { tmpFile } from '../helpers/capture';

function generate(o: Partial<SynthOptions>, chunk = 1 << 20): { data: Buffer; g: Synth } {
  const g = new Synth(o);
  const buf = Buffer.alloc(chunk);
  const parts: Buffer[] = [];
  for (let n = g.fill(buf); n > 0; n = g.fill(buf)) parts.push(Buffer.from(buf.subarray(0, n)));
  return { data: Buffer.concat(parts), g };
}

interface F {
  ts: number;
  frame: Buffer;
  src: string;
  dst: string;
  proto: number;
  sport: number;
  dport: number;
  flags: number;
  seq: number;
  ack: number;
}

function frames(data: Buffer, name = 'x.pcap'): F[] {
  const r = new CaptureReader(tmpFile(name, data));
  const out: F[] = [];
  while (r.next()) {
    const f = Buffer.from(r.buf.subarray(r.off, r.off + r.caplen));
    const proto = f[23];
    out.push({
      ts: r.tsMs, frame: f, src: ipString(f.readUInt32BE(26)), dst: ipString(f.readUInt32BE(30)), proto,
      sport: f.readUInt16BE(34), dport: f.readUInt16BE(36),
      flags: proto === 6 ? f[47] : 0, seq: proto === 6 ? f.readUInt32BE(38) : 0, ack: proto === 6 ? f.readUInt32BE(42) : 0,
    });
  }
  r.close();
  return out;
}

/** Flows by their unordered 5-tuple. */
function byFlow(fs: F[]): Map<string, F[]> {
  const m = new Map<string, F[]>();
  for (const f of fs) {
    const a = `${f.src}:${f.sport}`;
    const b = `${f.dst}:${f.dport}`;
    const k = `${f.proto} ${a < b ? a : b} ${a < b ? b : a}`;
    const l = m.get(k) ?? [];
    l.push(f);
    m.set(k, l);
  }
  return m;
}

const small = { flows: 60, frames: 3000, dnsQueries: 200, syns: 150, scanPorts: 120, durationS: 5 };

test('the same seed gives the same bytes, whatever the chunk size; another seed another capture', (t) => {
  for (const format of ['pcap', 'pcapng'] as const) {
    const o = { ...small, scenarios: [...SYNTH_SCENARIOS], format, seed: 7 };
    const a = generate(o).data;
    t.true(a.equals(generate(o).data), format);
    t.true(a.equals(generate(o, 65536).data), `${format}: 64 KiB chunks`);
    t.false(a.equals(generate({ ...o, seed: 8 }).data));
  }
});

test('counts as asked: frames in total, flows per scenario, every 5-tuple distinct', (t) => {
  const one = (scenarios: SynthScenario[]): { fs: F[]; g: Synth } => {
    const { data, g } = generate({ ...small, scenarios, frames: scenarios.includes('flows') ? small.frames : undefined });
    return { fs: frames(data), g };
  };
  const f = one(['flows']);
  t.is(f.fs.length, 3000);
  t.is(byFlow(f.fs).size, 60);
  t.deepEqual([f.g.stats.frames, f.g.stats.flows], [3000, 60]);
  t.is(f.g.stats.bytes, f.fs.reduce((s, x) => s + x.frame.length, 0));

  const dns = one(['dns-storm']);
  t.is(dns.fs.length, 400);
  const dnsFlows = byFlow(dns.fs);
  t.is(dnsFlows.size, 200);
  t.true([...dnsFlows.values()].every((l) => l.length === 2 && l[0].dport === 53 && l[1].sport === 53));
  t.is(new Set(dns.fs.map((x) => x.dst).filter((_, k) => dns.fs[k].dport === 53)).size, 1, 'one server');
  t.true(new Set(dns.fs.filter((x) => x.dport === 53).map((x) => x.src)).size <= 8, 'the default 8 clients');

  const syn = one(['syn-flood']);
  t.is(syn.fs.length, 150);
  t.true(syn.fs.every((x) => x.flags === 0x02 && x.dport === 80));
  t.is(byFlow(syn.fs).size, 150);

  const scan = one(['port-scan']);
  t.is(scan.fs.length, 240);
  const probes = scan.fs.filter((x) => x.flags === 0x02);
  t.deepEqual(probes.map((x) => x.dport).sort((a, b) => a - b), Array.from({ length: 120 }, (_, k) => k + 1));
  t.is(new Set(probes.map((x) => `${x.src}:${x.sport}>${x.dst}`)).size, 1, 'one source, one target');
  t.is(scan.fs.filter((x) => x.flags === 0x14).length, 120, 'an RST-ACK for each probe');

  const mix = generate({ ...small, scenarios: [...SYNTH_SCENARIOS] });
  const mf = frames(mix.data);
  t.is(mf.length, 3000, '--frames is the whole capture');
  t.is(mix.g.stats.flows, 60 + 200 + 150 + 120);
  for (let k = 1; k < mf.length; k++) if (mf[k].ts < mf[k - 1].ts) t.fail(`frame ${k + 1} goes back in time`);
  t.true(mf[0].ts >= SYNTH_EPOCH_MS && mf[mf.length - 1].ts <= SYNTH_EPOCH_MS + 5000 + 1);
});

test('flows: every TCP flow is a whole session with consistent sequence numbers; sizes are heavy-tailed', (t) => {
  const { data } = generate({ scenarios: ['flows'], flows: 300, frames: 30000, tcpShare: 1, alpha: 1.1, seed: 3 });
  const flows = byFlow(frames(data));
  t.is(flows.size, 300);
  const S = 0x02;
  const A = 0x10;
  const F_ = 0x01;
  for (const [k, l] of flows) {
    const c = l[0];
    const ok =
      l.length >= 7 && c.flags === S && l[1].flags === (S | A) && l[2].flags === A &&
      l[l.length - 3].flags === (F_ | A) && l[l.length - 2].flags === (F_ | A) && l[l.length - 1].flags === A &&
      l[1].ack === ((c.seq + 1) >>> 0) && l[l.length - 1].src === c.src &&
      // The server's FIN acknowledges the client's FIN; the last ACK acknowledges the server's.
      l[l.length - 2].ack === ((l[l.length - 3].seq + 1) >>> 0) && l[l.length - 1].ack === ((l[l.length - 2].seq + 1) >>> 0);
    if (!ok) return t.fail(`${k}: ${l.map((x) => x.flags.toString(16)).join(',')}`);
  }
  const sizes = [...flows.values()].map((l) => l.length).sort((a, b) => b - a);
  // Pareto(1.1): the largest tenth of the flows carries far more than a tenth of the frames.
  const top = sizes.slice(0, 30).reduce((s, x) => s + x, 0);
  t.true(top > 0.3 * 30000, `top 10% carry ${top}`);

  const run = replayCapture(tmpFile('tcp.pcap', data), { params: { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 8192, vr_oflow_entries: 1024 } });
  let open = 0;
  for (let i = 0; i < run.r.ft.total; i++) if ((feFlags(run.r.ft, i) & (VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_EVICTED)) === VR_FLOW_FLAG_ACTIVE) open++;
  t.is(open, 0, 'the datapath closed and evicted every session');
  t.is(run.agent.stats.created, 600);
});

test('a synth capture replays with the flow count the test predicts', (t) => {
  const params = { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 4096, vr_oflow_entries: 512 };
  for (const [scenarios, flows] of [[['flows'], 150], [['dns-storm'], 200], [['syn-flood'], 150], [['flows', 'dns-storm', 'syn-flood', 'port-scan'], 150 + 200 + 150 + 120]] as [SynthScenario[], number][]) {
    const { data, g } = generate({ ...small, scenarios, flows: 150, frames: scenarios.includes('flows') ? 6000 : undefined });
    const run = replayCapture(tmpFile('r.pcapng', data), { params });
    const t0 = run.r.ft;
    let drops = 0;
    for (let k = 0; k < VP_DROP_MAX; k++) drops += run.r.drops[k];
    // Every flow gets a forward entry on the miss and the agent's reverse; nothing ages in 5 s.
    t.is(flowCreatedCount(t0) + t0.info[FTI_ADDED], 2 * flows, scenarios.join(','));
    t.is(drops, 0);
    t.is(run.frames, g.stats.frames);
    t.is(run.r.results[RES_FORWARDED], g.stats.frames);
  }
});

const scenarioSets = fc.subarray([...SYNTH_SCENARIOS], { minLength: 1 });
const optionsArb = fc.record({
  seed: fc.integer({ min: 0, max: 0xffffffff }),
  scenarios: scenarioSets,
  format: fc.constantFrom('pcap' as const, 'pcapng' as const),
  subnet: fc.constantFrom('10.1.1.0/24', '192.168.0.0/16', '172.16.5.8/30', '10.9.0.0/31', '10.0.0.0/8'),
  flows: fc.integer({ min: 1, max: 40 }),
  extra: fc.integer({ min: 0, max: 800 }),
  alpha: fc.double({ min: 0.3, max: 3, noNaN: true }),
  tcpShare: fc.double({ min: 0, max: 1, noNaN: true }),
  frameSize: fc.constantFrom('imix', '60', '1514', '60-9018', '100-200'),
  arrivals: fc.constantFrom('poisson' as const, 'pareto' as const),
  durationS: fc.double({ min: 0.001, max: 100, noNaN: true }),
  dnsQueries: fc.integer({ min: 1, max: 50 }),
  dnsClients: fc.integer({ min: 1, max: 1 }),
  syns: fc.integer({ min: 1, max: 50 }),
  scanPorts: fc.integer({ min: 1, max: 50 }),
  scanReply: fc.constantFrom('rst' as const, 'none' as const),
});

test('property: every frame parses into a flow key, has valid checksums, and is the frame frame-build makes', (t) => {
  const pkt = new Pkt();
  const frags = new FragTable();
  fc.assert(
    fc.property(optionsArb, (a) => {
      const others = (a.scenarios.includes('dns-storm') ? 2 * a.dnsQueries : 0) + (a.scenarios.includes('syn-flood') ? a.syns : 0) +
        (a.scenarios.includes('port-scan') ? (a.scanReply === 'rst' ? 2 : 1) * a.scanPorts : 0);
      const o: Partial<SynthOptions> = { ...a, frames: a.scenarios.includes('flows') ? others + 7 * a.flows + a.extra : undefined };
      const { data, g } = generate(o);
      const fs = frames(data, a.format === 'pcap' ? 'p.pcap' : 'p.pcapng');
      if (fs.length !== g.stats.frames) throw new Error(`read ${fs.length} of ${g.stats.frames}`);
      for (const f of fs) {
        const b = f.frame;
        if (b.readUInt32BE(0) !== 0x00005e00 || b.readUInt16BE(4) !== 0x0100 || b.readUInt16BE(6) !== 0x0200) throw new Error('MACs');
        pkt.buf = b;
        pkt.off = 0;
        pkt.len = b.length;
        pkt.l3 = 14;
        if (ipParse(pkt) !== KEY_OK || flowKeyBuild(pkt, frags, 0) !== KEY_OK) throw new Error(`frame does not parse: ${b.toString('hex')}`);
        if (inetChecksum(b, 14, 20) !== 0) throw new Error('IP checksum');
        const l4 = b.length - 34;
        const ps = (b.readUInt16BE(26) + b.readUInt16BE(28) + b.readUInt16BE(30) + b.readUInt16BE(32) + f.proto + l4);
        if (inetChecksum(b, 34, l4, ps) !== 0) throw new Error(`transport checksum of ${b.toString('hex')}`);
        const ip = { src: f.src, dst: f.dst, srcMac: '02:00:00:00:00:01', dstMac: '00:00:5e:00:01:00', id: b.readUInt16BE(18) };
        const again = f.proto === 6
          ? tcpFrame(ip, { sport: f.sport, dport: f.dport, seq: f.seq, ack: f.ack, flags: [...'FSRPAU'].filter((_, k) => f.flags & (1 << k)).join(''), payload: b.subarray(54) })
          : udpFrame(ip, { sport: f.sport, dport: f.dport, payload: b.subarray(42) });
        if (!Buffer.from(again).equals(b)) throw new Error(`differs from frame-build's: ${b.toString('hex')}`);
      }
    }),
    { seed: 17, numRuns: 60 },
  );
  t.pass();
});

test('options out of range are one line naming the option', (t) => {
  const e = (o: Partial<SynthOptions>): string => userErrorOf(() => new Synth(o));
  t.regex(e({ flows: 100, frames: 50 }), /^--frames 50: leaves 50 frames for 100 flows/);
  t.regex(e({ flows: 100, frames: 300, tcpShare: 1 }), /^--frames 300: is fewer than the 100 flows need \(700: 7 per TCP session, 1 per UDP flow\)/);
  t.regex(e({ scenarios: ['syn-flood'], frames: 10 }), /^--frames 10: sets the flows scenario's share/);
  t.regex(e({ subnet: '10.1.1.5/24' }), /^--subnet 10\.1\.1\.5\/24: host bits are set; the prefix is 10\.1\.1\.0\/24$/);
  t.regex(e({ subnet: '10.1.1.1/32' }), /^--subnet 10\.1\.1\.1\/32: needs room for two addresses/);
  t.regex(e({ subnet: 'ten' }), /^--subnet ten: expected an IPv4 prefix/);
  t.regex(e({ frameSize: '40' }), /^--frame-size 40: expected an integer from 60 to 9018/);
  t.regex(e({ frameSize: '900-100' }), /^--frame-size 900-100: the range runs backwards/);
  t.regex(e({ alpha: 0 }), /^--alpha 0: expected a number > 0/);
  t.regex(e({ scenarios: ['dns-storm'], dnsClients: 300 }), /^--dns-clients 300: expected an integer from 1 to 253/);
  t.regex(e({ flows: 60000, subnet: '10.0.0.0/31', frames: 1e6 }), /^--flows 60000: expected an integer from 1 to 56464/);
  t.regex(e({ durationS: 0 }), /^--duration 0: expected a number > 0/);
});

test('memory stays bounded: a million frames through one 64 KiB buffer', (t) => {
  const g = new Synth({ flows: 5000, frames: 1_000_000, durationS: 30 });
  const buf = Buffer.alloc(65536);
  global.gc?.();
  const before = process.memoryUsage().heapUsed;
  let n = 0;
  while (g.fill(buf) > 0) n++;
  global.gc?.();
  const grown = (process.memoryUsage().heapUsed - before) / 1e6;
  t.is(g.stats.frames, 1_000_000);
  t.true(n > 1000);
  t.true(grown < 8, `${grown.toFixed(1)} MB more heap`);
});
