/**
 * bench:attach — vifs attached to existing interfaces by packet socket, as root, on this 2-CPU machine:
 *  1. forwarding between two namespace VMs whose host-side interfaces are veth pairs the emulator attaches
 *     by AF_PACKET socket (virtio-net header; received through a TPACKET_V2 ring, sent by sendmmsg), next
 *     to forwarding between two ordinary VMs with TAPs the emulator owns (read()/write() per frame), all
 *     four VMs in one emulator run; then the same with a TPACKET_V3 ring (`--packet-io ring-v3`) and
 *     with recvmmsg (`--packet-io recvmmsg`), each with its own TAP baseline:
 *     64-byte UDP frames over an established flow, packets per second received in the receiving VM (its
 *     eth0 rx counter), and 1514-byte frames in Gbit/s; generator (bench/tools/udpgen.c) pinned to CPU 0,
 *     datapath thread to CPU 1 (`--cpu 1`). Rounds alternate TAP / attached; medians of 3. Goal: the
 *     attached path at ≥ 0.8× the TAP path.
 *  2. the receive-path choice, without the emulator: bench/tools/pktrx.c, pinned to CPU 1, drains the
 *     host side of a veth flooded by udpgen (CPU 0) from a namespace, with recvmmsg batches of 16
 *     (PACKET_VNET_HDR, the addon's fallback: the baseline), with a TPACKET_V2 RX ring of the addon's
 *     geometry (what the emulator uses) and with a TPACKET_V3 RX ring (1 MiB blocks; what it does not
 *     use, for its latency); frames per second, its CPU time per frame (getrusage) and both CPUs' busy
 *     time per frame (/proc/stat: a ring moves the copy into the sender's softirq). Alternating, medians
 *     of 3.
 * Every figure is printed next to its baseline from the same run. Last line: one JSON object.
 * Everything it creates is named ab…: namespaces abA, abB, abC (attached "VMs", the flood source),
 * their veths abhA, abhB, abhC; the emulator's TAP VMs abta, abtb (namespaces vm-abta, vm-abtb).
 *
 * Run: sudo npm run bench:attach   (needs gcc, iproute2, python3)
 */
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import type { PacketIo } from '../src/io/native';
import { Emulator, GEN, ROOT, buildUdpgen, median, needRoot, sh, sink, sleep, startEmulator } from './lib/emulator';

const SECS = 3;
const ROUNDS = 3;
const RX_SECS = 3;
const PKTRX = path.join(ROOT, 'dist', 'bench', 'pktrx');
/** The measured flow's source port (udpgen binds it): every run uses the one established flow. */
const FLOW = { UDPGEN_SPORT: '40011' };

const NET = { name: 'abnet', subnet: '10.68.1.0/24', gateway: '10.68.1.1' };
const TAP_A = { name: 'abta', ip: '10.68.1.3', ns: 'vm-abta' };
const TAP_B = { name: 'abtb', ip: '10.68.1.4', ns: 'vm-abtb' };
const ATT_A = { name: 'abpa', ip: '10.68.1.5', ns: 'abA', host: 'abhA', mac: '02:ab:0a:44:01:05' };
const ATT_B = { name: 'abpb', ip: '10.68.1.6', ns: 'abB', host: 'abhB', mac: '02:ab:0a:44:01:06' };
/** The flood source of part 2: namespace abC, its veth's host side abhC. */
const FLOOD = { ns: 'abC', host: 'abhC', ip: '10.69.1.2', dst: '10.69.1.3', dstMac: '02:ab:00:00:00:01' };

function tryDo(cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore' });
}

function buildPktrx(): void {
  fs.mkdirSync(path.dirname(PKTRX), { recursive: true });
  sh('gcc', ['-std=c99', '-O2', '-Wall', '-o', PKTRX, path.join(ROOT, 'bench', 'tools', 'pktrx.c')]);
}

/** Remove what this bench creates (namespaces take their veth ends with them). */
function cleanup(): void {
  for (const ns of [ATT_A.ns, ATT_B.ns, FLOOD.ns]) tryDo('ip', ['netns', 'del', ns]);
  for (const l of [ATT_A.host, ATT_B.host, FLOOD.host]) if (fs.existsSync(`/sys/class/net/${l}`)) tryDo('ip', ['link', 'del', l]);
}

/** A namespace `ns` whose eth0 is the peer of host-side veth `host`. */
function vethNs(ns: string, host: string, ip: string, mac?: string): void {
  sh('ip', ['netns', 'add', ns]);
  sh('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  if (mac) sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'address', mac]);
  sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  sh('ip', ['link', 'set', host, 'up']);
}

function rx(ns: string): { packets: number; bytes: number } {
  const read = (f: string): number => Number(sh('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/eth0/statistics/${f}`]).trim());
  return { packets: read('rx_packets'), bytes: read('rx_bytes') };
}

/** The generator in `ns` on CPU 0 for SECS; what `rxNs` received per second, and what was offered. */
function blast(ns: string, rxNs: string, dst: string, payload: number): { pps: number; bps: number; offered: number } {
  const a = rx(rxNs);
  const t0 = process.hrtime.bigint();
  const sent = Number(sh('taskset', ['-c', '0', 'ip', 'netns', 'exec', ns, GEN, dst, '9', String(payload), String(SECS)], FLOW).trim());
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const b = rx(rxNs);
  return { pps: (b.packets - a.packets) / dt, bps: ((b.bytes - a.bytes) * 8) / dt, offered: sent / SECS };
}

interface RxRun {
  mode: string;
  secs: number;
  frames: number;
  kernelPackets: number;
  kernelDrops: number;
  userSecs: number;
  sysSecs: number;
  csumPartial: number;
  wakeups: number;
  cpuBusySecs: number[];
}

/** Flood abhC from abC (CPU 0) while pktrx drains it in `mode` (CPU 1) for RX_SECS. */
async function drain(mode: 'mmsg' | 'ring' | 'ring2'): Promise<RxRun> {
  const gen = spawn('taskset', ['-c', '0', 'ip', 'netns', 'exec', FLOOD.ns, GEN, FLOOD.dst, '9', '18', String(RX_SECS + 1)], { stdio: 'ignore' });
  const exited = new Promise((r) => gen.once('exit', r));
  await sleep(400);
  const r = spawnSync('taskset', ['-c', '1', PKTRX, FLOOD.host, mode, String(RX_SECS)], { encoding: 'utf8' });
  await exited;
  if (r.status !== 0) throw new Error(`pktrx ${mode} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as RxRun;
}

const K = (x: number): string => `${(x / 1000).toFixed(0)} kpps`;
const G = (x: number): string => `${(x / 1e9).toFixed(2)} Gbit/s`;
const R = (x: number): string => x.toFixed(2);
const US = (x: number): string => `${(x * 1e6).toFixed(3)} µs`;

/** One emulator run's forwarding figures (part 1). */
interface Fwd {
  res: Record<string, number[]>;
  m: Record<string, number>;
  offloadLine: string;
  dropLines: string[];
}

async function main(): Promise<void> {
  needRoot('bench:attach');
  buildUdpgen();
  buildPktrx();
  cleanup();
  let emu: Emulator | undefined;
  const sinks: ChildProcess[] = [];
  const onSignal = (): void => {
    for (const s of sinks) s.kill();
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // 1. Four VMs in one instance: two with TAPs it owns, two behind veths it attaches; once with the
    //    packet sockets read through their TPACKET_V2 rings (the default), once by recvmmsg.
    for (const v of [ATT_A, ATT_B]) {
      vethNs(v.ns, v.host, v.ip, v.mac);
      sh('ip', ['-n', v.ns, 'route', 'add', 'default', 'via', NET.gateway]);
    }
    const fwd: Partial<Record<PacketIo, Fwd>> = {};
    for (const io of ['ring', 'ring-v3', 'recvmmsg'] as const) {
      emu = await startEmulator({
        networks: [NET],
        vms: [
          { name: TAP_A.name, ip: TAP_A.ip, network: NET.name },
          { name: TAP_B.name, ip: TAP_B.ip, network: NET.name },
          { name: ATT_A.name, ip: ATT_A.ip, network: NET.name, mac: ATT_A.mac, attach: ATT_A.host },
          { name: ATT_B.name, ip: ATT_B.ip, network: NET.name, mac: ATT_B.mac, attach: ATT_B.host },
        ],
      }, ['--cpu', '1', '--packet-io', io]);
      sinks.push(sink(TAP_B.ns), sink(ATT_B.ns));
      await sleep(500);
      // ARP (the emulator answers for the other VM) and the flow, set up before measuring.
      sh('ip', ['netns', 'exec', TAP_A.ns, 'ping', '-c', '1', '-W', '2', TAP_B.ip]);
      sh('ip', ['netns', 'exec', ATT_A.ns, 'ping', '-c', '1', '-W', '2', ATT_B.ip]);
      sh('ip', ['netns', 'exec', TAP_A.ns, GEN, TAP_B.ip, '9', '18', '0.2'], FLOW);
      sh('ip', ['netns', 'exec', ATT_A.ns, GEN, ATT_B.ip, '9', '18', '0.2'], FLOW);
      await sleep(300);

      const res: Record<string, number[]> = { t64: [], a64: [], t1514: [], a1514: [], t64off: [], a64off: [], t1514pps: [], a1514pps: [] };
      for (let r = 0; r < ROUNDS; r++) {
        let x = blast(TAP_A.ns, TAP_B.ns, TAP_B.ip, 18);
        res.t64.push(x.pps);
        res.t64off.push(x.offered);
        x = blast(ATT_A.ns, ATT_B.ns, ATT_B.ip, 18);
        res.a64.push(x.pps);
        res.a64off.push(x.offered);
        x = blast(TAP_A.ns, TAP_B.ns, TAP_B.ip, 1472);
        res.t1514.push(x.bps);
        res.t1514pps.push(x.pps);
        x = blast(ATT_A.ns, ATT_B.ns, ATT_B.ip, 1472);
        res.a1514.push(x.bps);
        res.a1514pps.push(x.pps);
      }
      // Latency at a low rate: ping RTT through each path (a ring that hands frames over in blocks
      // would show here).
      const rtt = (ns: string, dst: string): number => {
        const out = spawnSync('ip', ['netns', 'exec', ns, 'ping', '-q', '-c', '40', '-i', '0.05', dst], { encoding: 'utf8' }).stdout ?? '';
        return Number(/= [\d.]+\/([\d.]+)\//.exec(out)?.[1] ?? NaN);
      };
      res.tRtt = [rtt(TAP_A.ns, TAP_B.ip)];
      res.aRtt = [rtt(ATT_A.ns, ATT_B.ip)];
      const m = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, median(v)]));
      const info = emu.tool('agent', 'stats');
      const offloadLine = info.split('\n').find((l) => l.startsWith('attached interfaces:')) ?? 'attached interfaces: no offload work counted';
      const dropLines = emu.tool('dropstats').split('\n').filter((l) => / [1-9]\d*$/.test(l)).map((l) => l.trim().replace(/\s+/g, ' '));
      fwd[io] = { res, m, offloadLine, dropLines };
      for (const s of sinks.splice(0)) s.kill();
      await emu.stop();
      emu = undefined;
    }

    // 2. The receive path alone: recvmmsg batches against a TPACKET_V3 ring, on a flooded veth.
    vethNs(FLOOD.ns, FLOOD.host, FLOOD.ip);
    sh('ip', ['-n', FLOOD.ns, 'neigh', 'add', FLOOD.dst, 'lladdr', FLOOD.dstMac, 'dev', 'eth0', 'nud', 'permanent']);
    fs.writeFileSync(`/proc/sys/net/ipv6/conf/${FLOOD.host}/disable_ipv6`, '1');
    const runs: Record<'mmsg' | 'ring' | 'ring2', RxRun[]> = { mmsg: [], ring: [], ring2: [] };
    for (let r = 0; r < ROUNDS; r++) {
      runs.mmsg.push(await drain('mmsg'));
      runs.ring.push(await drain('ring'));
      runs.ring2.push(await drain('ring2'));
    }
    const fps = (x: RxRun): number => x.frames / x.secs;
    const rxCpu = (x: RxRun): number => (x.userSecs + x.sysSecs) / x.frames;
    const cpuAll = (x: RxRun): number => x.cpuBusySecs.reduce((a, b) => a + b, 0) / x.frames;
    const agg = (xs: RxRun[]): { fps: number; rxCpu: number; cpuAll: number; drops: number; perWakeup: number } => ({
      fps: median(xs.map(fps)), rxCpu: median(xs.map(rxCpu)), cpuAll: median(xs.map(cpuAll)),
      drops: xs.reduce((a, x) => a + x.kernelDrops, 0), perWakeup: median(xs.map((x) => x.frames / Math.max(1, x.wakeups))),
    });
    const mm = agg(runs.mmsg);
    const rg = agg(runs.ring);
    const r2 = agg(runs.ring2);

    const fr = fwd.ring as Fwd;
    const f3 = fwd['ring-v3'] as Fwd;
    const fm = fwd.recvmmsg as Fwd;
    console.log(`1. forwarding VM → VM, generator on CPU 0, datapath thread on CPU 1, ${SECS} s per run, median of ${ROUNDS}; three emulator runs`);
    for (const [label, f] of [['a TPACKET_V2 ring (--packet-io ring, the default)', fr], ['a TPACKET_V3 ring (--packet-io ring-v3)', f3], ['recvmmsg (--packet-io recvmmsg)', fm]] as const) {
      const { m, res } = f;
      console.log(`  packet sockets read by ${label}:`);
      console.log(`    64-byte frames:   attached (veth, packet socket) ${K(m.a64)}   TAP ${K(m.t64)}   ratio ${R(m.a64 / m.t64)}   (runs ${res.a64.map(K).join(', ')} / ${res.t64.map(K).join(', ')})`);
      console.log(`                      offered by the generator: attached ${K(m.a64off)}   TAP ${K(m.t64off)}`);
      console.log(`    1514-byte frames: attached ${G(m.a1514)}   TAP ${G(m.t1514)}   ratio ${R(m.a1514 / m.t1514)}   (${K(m.a1514pps)} / ${K(m.t1514pps)}; runs ${res.a1514.map(G).join(', ')} / ${res.t1514.map(G).join(', ')})`);
      console.log(`    ping RTT (40 at 20/s, average): attached ${m.aRtt.toFixed(3)} ms   TAP ${m.tRtt.toFixed(3)} ms`);
      console.log(`    ${f.offloadLine}`);
      console.log(`    dropstats (non-zero): ${f.dropLines.length ? f.dropLines.join('; ') : 'none'}`);
    }
    console.log(`  against recvmmsg, attached 64-byte frames (each as a ratio to its run's TAP): V2 ring ${R((fr.m.a64 / fr.m.t64) / (fm.m.a64 / fm.m.t64))}×, V3 ring ${R((f3.m.a64 / f3.m.t64) / (fm.m.a64 / fm.m.t64))}×`);
    const m = fr.m;
    console.log(`2. receive path alone: pktrx on CPU 1 drains veth ${FLOOD.host}, udpgen floods 64-byte frames from CPU 0, ${RX_SECS} s per run, median of ${ROUNDS}`);
    console.log('  (V2 ring: the emulator\'s geometry and reading; V3 ring: 1 MiB blocks, 4 ms block timeout; baseline recvmmsg)');
    const row = (label: string, f: (x: ReturnType<typeof agg>) => string, ratio: (x: ReturnType<typeof agg>) => number, note = ''): void =>
      console.log(`  ${label.padEnd(26)} V2 ring ${f(r2)}   V3 ring ${f(rg)}   recvmmsg ${f(mm)}   ratios ${R(ratio(r2))} / ${R(ratio(rg))}${note}`);
    row('frames/s:', (x) => K(x.fps), (x) => x.fps / mm.fps,
      `   (runs ${runs.ring2.map((x) => K(fps(x))).join(', ')} / ${runs.ring.map((x) => K(fps(x))).join(', ')} / ${runs.mmsg.map((x) => K(fps(x))).join(', ')})`);
    row('receiver CPU per frame:', (x) => US(x.rxCpu), (x) => x.rxCpu / mm.rxCpu, '   (getrusage, user + sys)');
    row('both CPUs busy per frame:', (x) => US(x.cpuAll), (x) => x.cpuAll / mm.cpuAll, '   (sender and receiver, /proc/stat)');
    console.log(`  frames per wake-up:        V2 ring ${r2.perWakeup.toFixed(1)}   V3 ring ${rg.perWakeup.toFixed(0)}   recvmmsg ${mm.perWakeup.toFixed(1)};   kernel drops: ${r2.drops} / ${rg.drops} / ${mm.drops}`);
    console.log(JSON.stringify({
      bench: 'attach',
      pps64: Math.round(m.a64), baselineTapPps64: Math.round(m.t64), ratio64: +(m.a64 / m.t64).toFixed(2),
      bps1514: Math.round(m.a1514), baselineTapBps1514: Math.round(m.t1514), ratio1514: +(m.a1514 / m.t1514).toFixed(2),
      rttMs: m.aRtt, baselineTapRttMs: m.tRtt,
      ringV3: {
        pps64: Math.round(f3.m.a64), baselineTapPps64: Math.round(f3.m.t64), ratio64: +(f3.m.a64 / f3.m.t64).toFixed(2),
        bps1514: Math.round(f3.m.a1514), baselineTapBps1514: Math.round(f3.m.t1514), ratio1514: +(f3.m.a1514 / f3.m.t1514).toFixed(2),
        rttMs: f3.m.aRtt, baselineTapRttMs: f3.m.tRtt,
      },
      recvmmsg: {
        pps64: Math.round(fm.m.a64), baselineTapPps64: Math.round(fm.m.t64), ratio64: +(fm.m.a64 / fm.m.t64).toFixed(2),
        bps1514: Math.round(fm.m.a1514), baselineTapBps1514: Math.round(fm.m.t1514), ratio1514: +(fm.m.a1514 / fm.m.t1514).toFixed(2),
        rttMs: fm.m.aRtt, baselineTapRttMs: fm.m.tRtt,
      },
      rx: {
        v2RingFps: Math.round(r2.fps), v3RingFps: Math.round(rg.fps), mmsgFps: Math.round(mm.fps),
        v2FpsRatio: +(r2.fps / mm.fps).toFixed(2), v3FpsRatio: +(rg.fps / mm.fps).toFixed(2),
        v2CpuNsPerFrame: +(r2.rxCpu * 1e9).toFixed(1), v3CpuNsPerFrame: +(rg.rxCpu * 1e9).toFixed(1), mmsgCpuNsPerFrame: +(mm.rxCpu * 1e9).toFixed(1),
        v2BothCpusNsPerFrame: +(r2.cpuAll * 1e9).toFixed(1), v3BothCpusNsPerFrame: +(rg.cpuAll * 1e9).toFixed(1), mmsgBothCpusNsPerFrame: +(mm.cpuAll * 1e9).toFixed(1),
        drops: { v2: r2.drops, v3: rg.drops, mmsg: mm.drops },
      },
      goals: { ratio64: 0.8 },
    }));
  } finally {
    for (const s of sinks) s.kill();
    if (emu) await emu.stop();
    cleanup();
  }
}

main().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  cleanup();
  process.exit(1);
});
