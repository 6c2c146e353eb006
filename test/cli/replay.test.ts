/**
 * Offline replay: the table fills where jhash says it must; TCP handshakes, closes and resets; ICMP echo
 * pairs; garbage frames; the CLI's report and its errors.
 */
import test from 'ava';
import { jhash } from '../../src/dp/jhash';
import { MODULE_PARAM_DEFAULTS } from '../../src/params/module-params';
import { replayCapture } from '../../src/cli/replay-run';
import { VP_DROP_FLOW_TABLE_FULL, VR_FLOW_FLAG_ACTIVE, VR_FLOW_FLAG_EVICTED, VP_DROP_MAX } from '../../src/dp/defs';
import { feFlags, fePackets, feRflow, feTcpFlags, flowFind } from '../../src/dp/flow-table';
import { keyPorts } from '../../src/dp/proto-ip';
import { tcpLetters } from '../../src/cli/flow-list';
import { RES_FORWARDED, RES_NO_FLOW } from '../../src/dp/router';
import { icmpEcho, tcpFrame, udpFrame } from '../../src/io/frame-build';
import { Frame, cli, pcapngBuild, tmpFile, writePcap } from '../helpers/capture';

const NH = 16;
const params = (n: number, o: number) => ({ ...MODULE_PARAM_DEFAULTS, vr_flow_entries: n, vr_oflow_entries: o });

/** The R2.22 key bytes, built independently of the datapath's code. */
function keyBytes(sip: number[], dip: number[], sport: number, dport: number, proto: number): Uint8Array {
  const k = new Uint8Array(17);
  k[0] = sport >> 8;
  k[1] = sport & 0xff;
  k[2] = dport >> 8;
  k[3] = dport & 0xff;
  k.set(sip, 4);
  k.set(dip, 8);
  new DataView(k.buffer).setUint32(12, NH, true); // nh_id in host (little-endian) order
  k[16] = proto;
  return k;
}

test('a 16 + 4 table fills at exactly the frame jhash predicts', (t) => {
  const N = 16;
  const O = 4;
  const vm = [10, 1, 1, 3];
  const peer = [10, 1, 1, 4];
  const frames: Frame[] = [];
  for (let k = 0; k < 40; k++) frames.push({ tsMs: 1000 + k, data: udpFrame({ src: '10.1.1.3', dst: '10.1.1.4' }, { sport: 20000 + k * 7, dport: 53 }) });
  // The model: 4 slots per bucket, then a shared pool of O overflow entries; the datapath creates the
  // forward flow on the miss, the agent adds the reverse right after.
  const used = new Map<number, number>();
  let ofree = O;
  const place = (key: Uint8Array): boolean => {
    const b = (jhash(key, 0, 17, 0) % N) & ~3;
    const u = used.get(b) ?? 0;
    if (u < 4) {
      used.set(b, u + 1);
      return true;
    }
    if (ofree > 0) {
      ofree--;
      return true;
    }
    return false;
  };
  let predicted = -1;
  for (let k = 0; k < frames.length; k++) {
    const sport = 20000 + k * 7;
    if (!place(keyBytes(vm, peer, sport, 53, 17))) {
      predicted = k + 1;
      break;
    }
    place(keyBytes(peer, vm, 53, sport, 17));
  }
  t.true(predicted > 0, 'the model fills the table within the capture');
  let firstFull = -1;
  const run = replayCapture(writePcap(frames), {
    params: params(N, O),
    onFrame: (n, r) => {
      if (firstFull < 0 && r.drops[VP_DROP_FLOW_TABLE_FULL] > 0) firstFull = n;
    },
  });
  t.is(firstFull, predicted);
  t.is(run.r.ft.info[6], O, 'every overflow entry was used');
});

function tcpSession(close: 'fin' | 'rst' | 'open', sport = 40000): Frame[] {
  const C = { src: '10.1.1.3', dst: '10.1.1.4' };
  const S = { src: '10.1.1.4', dst: '10.1.1.3' };
  let ts = 5000;
  const f: Frame[] = [];
  const add = (d: Uint8Array): void => {
    f.push({ tsMs: ts, data: d });
    ts += 1;
  };
  add(tcpFrame(C, { sport, dport: 80, seq: 10, flags: 'S' }));
  add(tcpFrame(S, { sport: 80, dport: sport, seq: 500, ack: 11, flags: 'SA' }));
  add(tcpFrame(C, { sport, dport: 80, seq: 11, ack: 501, flags: 'A' }));
  add(tcpFrame(C, { sport, dport: 80, seq: 11, ack: 501, flags: 'PA', payload: 100 }));
  add(tcpFrame(S, { sport: 80, dport: sport, seq: 501, ack: 111, flags: 'A' }));
  if (close === 'fin') {
    add(tcpFrame(C, { sport, dport: 80, seq: 111, ack: 501, flags: 'FA' }));
    add(tcpFrame(S, { sport: 80, dport: sport, seq: 501, ack: 112, flags: 'FA' }));
    add(tcpFrame(C, { sport, dport: 80, seq: 112, ack: 502, flags: 'A' }));
  } else if (close === 'rst') {
    add(tcpFrame(S, { sport: 80, dport: sport, seq: 501, ack: 111, flags: 'R' }));
  }
  return f;
}

const key = (sport: number, dport: number, sip = 0x0301010a, dip = 0x0401010a, proto = 6): [number, number, number, number, number] => [keyPorts(sport, dport), sip, dip, NH, proto];

test('a handshake shows SSrEEr on both directions', (t) => {
  const { r } = replayCapture(writePcap(tcpSession('open')), { params: params(1024, 64) });
  const f = flowFind(r.ft, ...key(40000, 80));
  const rv = feRflow(r.ft, f);
  t.is(flowFind(r.ft, ...key(80, 40000, 0x0401010a, 0x0301010a)), rv);
  t.is(tcpLetters(feTcpFlags(r.ft, f)), 'SSrEEr');
  t.is(tcpLetters(feTcpFlags(r.ft, rv)), 'SSrEEr');
  t.is(fePackets(r.ft, f) + fePackets(r.ft, rv), 5);
});

test('FIN and RST closes end DEAD and evicted (datapath eviction on)', (t) => {
  for (const close of ['fin', 'rst'] as const) {
    const { r } = replayCapture(writePcap(tcpSession(close)), { params: params(1024, 64) });
    t.is(flowFind(r.ft, ...key(40000, 80)), -1, `${close}: the pair is gone from lookups`);
    let evicted = 0;
    for (let i = 0; i < r.ft.total; i++) if ((feFlags(r.ft, i) & (VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_EVICTED)) === (VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_EVICTED)) evicted++;
    t.is(evicted, 2, `${close}: both entries EVICTED`);
  }
});

test('with eviction off, closed pairs stay DEAD until the agent\'s TCP scan deletes them', (t) => {
  const frames = tcpSession('rst');
  const dead = replayCapture(writePcap(frames), { params: params(1024, 64), eviction: false });
  const f = flowFind(dead.r.ft, ...key(40000, 80));
  t.true(f >= 0);
  t.is(tcpLetters(feTcpFlags(dead.r.ft, f)), 'SSrEErRD');
  // 20 s later (a frame of another flow moves the capture clock) the scan has deleted the pair.
  const later = [...frames, { tsMs: 25000, data: udpFrame({ src: '10.1.1.3', dst: '10.1.1.9' }, { sport: 1, dport: 2 }) }];
  const gone = replayCapture(writePcap(later), { params: params(1024, 64), eviction: false });
  t.is(flowFind(gone.r.ft, ...key(40000, 80)), -1);
  t.is(gone.agent.stats.aged, 2);
});

test('ICMP echo request and reply make one pair keyed (id, 0)', (t) => {
  const frames: Frame[] = [];
  for (let s = 0; s < 3; s++) {
    frames.push({ tsMs: 100 + s * 1000, data: icmpEcho({ src: '10.1.1.3', dst: '10.1.1.4' }, false, 0x77, s) });
    frames.push({ tsMs: 100.5 + s * 1000, data: icmpEcho({ src: '10.1.1.4', dst: '10.1.1.3' }, true, 0x77, s) });
  }
  const { r } = replayCapture(writePcap(frames), { params: params(1024, 64) });
  const f = flowFind(r.ft, ...key(0x77, 0, 0x0301010a, 0x0401010a, 1));
  const rv = flowFind(r.ft, ...key(0x77, 0, 0x0401010a, 0x0301010a, 1));
  t.true(f >= 0 && rv >= 0);
  t.is(feRflow(r.ft, f), rv);
  t.is(fePackets(r.ft, f), 3);
  t.is(fePackets(r.ft, rv), 3);
  t.is(r.results[RES_FORWARDED], 6);
});

test('garbage and truncated frames are counted, never crash', (t) => {
  let x = 99;
  const rnd = (): number => (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  const frames: Frame[] = [];
  for (let k = 0; k < 2000; k++) {
    const len = rnd() % 120;
    const d = new Uint8Array(len).map(rnd);
    if (k % 3 === 0 && len > 20) {
      d[12] = 8;
      d[13] = 0;
    }
    frames.push({ tsMs: k, data: d });
  }
  frames.push({ tsMs: 3000, data: udpFrame({ src: '10.1.1.3', dst: '10.1.1.4' }, { sport: 1, dport: 2 }).subarray(0, 40) });
  const { r, frames: n } = replayCapture(writePcap(frames), { params: params(1024, 64) });
  t.is(n, 2001);
  let drops = 0;
  for (let k = 0; k < VP_DROP_MAX; k++) drops += r.drops[k];
  t.is(r.results[RES_FORWARDED] + drops + r.results[RES_NO_FLOW], 2001);
  t.true(drops > 600);
});

test('frames cut by the snaplen are replayed at their wire length', (t) => {
  const frames = tcpSession('open');
  const { r } = replayCapture(writePcap(frames, 54), { params: params(1024, 64) });
  const f = flowFind(r.ft, ...key(40000, 80));
  t.is(tcpLetters(feTcpFlags(r.ft, f)), 'SSrEEr');
  t.is(r.results[RES_FORWARDED], 5);
});

test('the CLI report: figures, non-zero drop stats (Flow Table Full always), the flow -l listing', (t) => {
  const frames = [...tcpSession('open'), ...tcpSession('rst', 40001)];
  const file = writePcap(frames);
  const r = cli(['replay', file, '--param', 'vr_flow_entries=1024', '--param', 'vr_oflow_entries=64']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^Replay of .*: 11 frames over /m);
  t.regex(r.stdout, /flows created 4 \(Created 2 by the datapath on a miss, Added 2 by the agent\)/);
  t.regex(r.stdout, /active entries: peak 4, final 2/);
  t.regex(r.stdout, /overflow entries in use: peak 0, final 0/);
  t.regex(r.stdout, /^Flow Table Full {15}0$/m);
  t.regex(r.stdout, /^Flow table\(size 139264, entries 1088\)$/m);
  t.regex(r.stdout, /^Entries: Created 2 Added 2 Processed 2 Used Overflow entries 0$/m);
  t.regex(r.stdout, /^ +\d+<=>\d+ +10\.1\.1\.3:40000 +10\.1\.1\.4:80 +6 \(1\)$/m);
  t.regex(r.stdout, /^\t\(K\(nh\):16, Action:F, Flags:, TCP:SSrEEr, S\(nh\):16, Stats:3\/\d+, SPort:\d+\)$/m);
  t.notRegex(r.stdout, /40001/, 'the reset session was evicted and is not listed');
  const ev = cli(['replay', file, '--param', 'vr_flow_entries=1024', '--show-evicted']);
  t.regex(ev.stdout, /Flags:E, /);
});

test('the CLI --json report', (t) => {
  const r = cli(['replay', writePcap(tcpSession('open')), '--params', 'module-params/small.conf', '--json']);
  t.is(r.status, 0);
  const j = JSON.parse(r.stdout);
  t.is(j.frames, 5);
  t.is(j.table.entries, 1024);
  t.is(j.table.activeFinal, 2);
  t.is(j.dropstats['Flow Table Full'], 0);
  t.is(j.flows.length, 2);
  t.is(j.flows[0].tcp, 'SSrEEr');
});

test('pcapng replays like libpcap', (t) => {
  const frames = tcpSession('open');
  const a = cli(['replay', writePcap(frames), '--json']);
  const b = cli(['replay', tmpFile('s.pcapng', pcapngBuild(frames)), '--json']);
  const strip = (s: string) => ({ ...JSON.parse(s), capture: '' });
  t.deepEqual(strip(a.stdout), strip(b.stdout));
});

test('CLI errors: one line, exit 2, no report', (t) => {
  const good = writePcap(tcpSession('open'));
  const data = require('fs').readFileSync(good);
  for (const [args, re] of [
    [['replay', tmpFile('cut.pcap', data.subarray(0, data.length - 5))], /cut\.pcap: frame 5 at byte \d+: truncated/],
    [['replay', tmpFile('n.pcap', 'not a capture at all')], /is not a pcap or pcapng capture/],
    [['replay', '/no/such.pcap'], /no such capture file/],
    [['replay', good, '--param', 'vr_flow_entries=abc'], /vr_flow_entries=abc is not a non-negative integer/],
    [['replay', good, '--bogus'], /unknown option --bogus/],
    [['replay', good, '--datapath-eviction', 'maybe'], /expected on or off/],
  ] as [string[], RegExp][]) {
    const r = cli(args);
    t.is(r.status, 2, args.join(' '));
    t.is(r.stdout, '');
    t.regex(r.stderr, re);
    t.is(r.stderr.trimEnd().split('\n').length, 1);
  }
});

test('vrouter_dbg=1 prints one line per frame with its verdict', (t) => {
  const r = cli(['replay', writePcap(tcpSession('open')), '--param', 'vrouter_dbg=1', '--param', 'vr_flow_entries=64']);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('frame '));
  t.is(lines.length, 5);
  t.regex(lines[0], /^frame 1 10\.1\.1\.3:40000 > 10\.1\.1\.4:80 proto 6: held in flow \d+, trapped$/);
  t.regex(lines[1], /^frame 2 10\.1\.1\.4:80 > 10\.1\.1\.3:40000 proto 6: forwarded by flow \d+$/);
});

test('a capture whose clock jumps ~3000 years ahead replays at once (issue 16); the flows before the jump have aged', (t) => {
  const frames: Frame[] = [];
  for (let k = 0; k < 20; k++) frames.push({ tsMs: 1000 + k, data: udpFrame({ src: '10.1.1.3', dst: '10.1.1.4' }, { sport: 30000 + k, dport: 53 }) });
  frames.push({ tsMs: 1000 + 1e14, data: udpFrame({ src: '10.1.1.3', dst: '10.1.1.4' }, { sport: 40000, dport: 53 }) });
  const t0 = Date.now();
  const run = replayCapture(tmpFile('jump.pcapng', pcapngBuild(frames)), { params: params(1024, 64) });
  t.true(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
  t.is(run.frames, 21);
  t.is(run.agent.stats.aged, 40, 'the 20 pairs before the jump');
  t.is(run.agent.flowCount, 2, 'the pair after it');
});
