/**
 * bench:overlay — a VM on node 1 to a VM on node 2 through two `vrouter-emu start --node` processes, as root
 * on this 2-CPU machine, for each encapsulation (MPLSoUDP, MPLSoGRE, VXLAN; the nodes restarted for each):
 *  - 64-byte UDP frames vm1 → vm2 over an established flow: packets per second received in vm2 (its eth0
 *    rx counter); 1514-byte frames: Gbit/s;
 *  - flow setup across nodes: bench:forward's UDP scan of new (source port, destination port) pairs from
 *    vm1 to vm2; pairs set up per second on node 1 (the flow from the VM) and on node 2 (the flow from
 *    the fabric), the slower node being the figure.
 * Baselines, same run: for forwarding, two "VM" namespaces joined by kernel VXLAN devices and bridges in
 * two host namespaces on the same kind of underlay (a bridge in a fabric namespace), the same generator
 * pinned the same way, RPS putting the kernel's forwarding on the CPUs the datapath threads use; rounds
 * alternate emulator and kernel, medians of 3. For flow setup, the same scan against a single node with
 * two VMs (bench:forward's figure), measured right after each cluster scan.
 * Underlay MTU 1600 on both (the VMs keep 1500: a 1514-byte frame fits every encapsulation).
 * Last line: one JSON object.
 *
 * Run: sudo npm run bench:overlay   (needs gcc, iproute2, python3)
 * Environment: LAYOUT=gen,n1,n2 (CPUs of the generator and the two datapath threads, default 0,1,1);
 * ENCAPS=MPLSoUDP,VXLAN (a subset); ROUNDS=3; SECS=3; SCAN_FLOWS=120000; SCAN_RATE=100000;
 * Profiling (only the 64-byte rounds are run; the figures are then not the bench's): PROFILE=DIR runs node 1
 * with --cpu-prof into DIR/ENCAP (summarise with bench/tools/cpuprofile-top.cjs); PERF=DIR runs both
 * nodes with --perf-basic-prof and records `perf record -a -g` into DIR/ENCAP.perf.data during the first
 * emulator round and `perf stat --per-thread` (syscalls, context switches) into DIR/ENCAP.stat.txt during the second.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess, execFile, spawn } from 'child_process';
import { BIN, GEN, buildUdpgen, median, needRoot, sh, sink, sleep } from './lib/emulator';
import { KernelOverlay, Node, Fabric, fabricUp, kernelOverlayUp, pidFile, removeLeftovers, startNode } from './lib/overlay';

type Encap = 'MPLSoUDP' | 'MPLSoGRE' | 'VXLAN';

const P = 'bov-';
const SECS = Number(process.env.SECS ?? 3);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SCAN_FLOWS = Number(process.env.SCAN_FLOWS ?? 120000);
const SCAN_RATE = Number(process.env.SCAN_RATE ?? 100000);
const ENCAPS = (process.env.ENCAPS ?? 'MPLSoUDP,MPLSoGRE,VXLAN').split(',') as Encap[];
const [GEN_CPU, N1_CPU, N2_CPU] = (process.env.LAYOUT ?? '0,1,1').split(',').map(Number);
const PROFILE = process.env.PROFILE;
const PERF = process.env.PERF;
const PERF_EVENTS = 'context-switches,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_poll,syscalls:sys_enter_ppoll';
const PROFILING = PROFILE !== undefined || PERF !== undefined;
const MTU = 1600;
const FABRIC_IPS = ['192.168.50.11', '192.168.50.12'];
const VM_IPS = ['10.1.1.3', '10.1.1.4'];
const KERNEL_MACS = ['02:00:0a:01:01:03', '02:00:0a:01:01:04'];
const LEFTOVER = /^(bov-|vm-bov-)/;

function cluster(encap: Encap): object {
  return {
    nodes: [{ name: 'node1', fabric_ip: `${FABRIC_IPS[0]}/24` }, { name: 'node2', fabric_ip: `${FABRIC_IPS[1]}/24` }],
    networks: [{ name: 'bench', subnet: '10.1.1.0/24', gateway: '10.1.1.1' }],
    vms: [{ name: `${P}e1`, ip: VM_IPS[0], network: 'bench', node: 'node1' }, { name: `${P}e2`, ip: VM_IPS[1], network: 'bench', node: 'node2' }],
    global_vrouter_config: { encapsulation_priorities: { encapsulation: [encap] } },
  };
}

const SINGLE = {
  networks: [{ name: 'bench', subnet: '10.1.1.0/24', gateway: '10.1.1.1' }],
  vms: [{ name: `${P}s1`, ip: VM_IPS[0], network: 'bench' }, { name: `${P}s2`, ip: VM_IPS[1], network: 'bench' }],
};

function rx(ns: string): { packets: number; bytes: number } {
  const out = sh('ip', ['netns', 'exec', ns, 'cat', '/sys/class/net/eth0/statistics/rx_packets', '/sys/class/net/eth0/statistics/rx_bytes']).trim().split('\n');
  return { packets: Number(out[0]), bytes: Number(out[1]) };
}

/** The generator in `ns` on the generator's CPU for SECS; what the receiver in `rxNs` got per second. */
async function blast(ns: string, rxNs: string, dst: string, payload: number): Promise<{ pps: number; bps: number }> {
  const a = rx(rxNs);
  const t0 = process.hrtime.bigint();
  await generator(['taskset', '-c', String(GEN_CPU), 'ip', 'netns', 'exec', ns, GEN, dst, '9', String(payload), String(SECS)]);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const b = rx(rxNs);
  return { pps: (b.packets - a.packets) / dt, bps: ((b.bytes - a.bytes) * 8) / dt };
}

/** Run the generator as a child (the event loop stays free for a signal, which kills it); resolves when it ends. */
function generator(argv: string[]): Promise<void> {
  const gen = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
  live.gens.add(gen);
  return new Promise((resolve, reject) => {
    gen.once('exit', (code, sig) => {
      live.gens.delete(gen);
      if (code === 0) resolve();
      else reject(new Error(`${argv.join(' ')}: ${sig ?? `exit ${code}`}`));
    });
  });
}

function added(socket: string): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'agent', 'stats', '--json', '--socket', socket], { encoding: 'utf8' }, (err, out) => {
      if (err) reject(err);
      else resolve((JSON.parse(out) as { table: { added: number } }).table.added);
    });
  });
}

/**
 * The scan of new flows from `fromNs` to `rxNs`'s VM; for each node, the pairs it added and the time from
 * the scan's start to the answer of the last poll that saw its count grow. The nodes are not polled while
 * the scan is being offered (each poll is a process start that would take CPU from the datapath and the agents), then
 * every 100 ms until no count has grown for 1 s.
 */
async function scan(fromNs: string, rxNs: string, nodes: Node[]): Promise<{ pairs: number[]; secs: number[]; delivered: number }> {
  const before = await Promise.all(nodes.map((n) => added(n.socket)));
  const rx0 = rx(rxNs).packets;
  const t0 = Date.now();
  await generator(['taskset', '-c', String(GEN_CPU), 'ip', 'netns', 'exec', fromNs, GEN, VM_IPS[1], '9', '18', '0', 'scan', String(SCAN_FLOWS), String(SCAN_RATE)]);
  const last = [...before];
  const lastT = nodes.map(() => Date.now());
  for (let idle = 0; idle < 10; ) {
    const tick = Date.now();
    let grew = false;
    // Each node's count with the time its answer came (as bench:forward times it: conservative).
    await Promise.all(nodes.map(async (n, k) => {
      const v = await added(n.socket);
      if (v > last[k]) {
        last[k] = v;
        lastT[k] = Date.now();
        grew = true;
      }
    }));
    idle = grew ? 0 : idle + 1;
    await sleep(Math.max(0, 100 - (Date.now() - tick)));
  }
  return { pairs: last.map((v, k) => v - before[k]), secs: lastT.map((t) => (t - t0) / 1000), delivered: rx(rxNs).packets - rx0 };
}

function waitPing(ns: string, dst: string, ms: number): Promise<void> {
  return (async () => {
    const end = Date.now() + ms;
    for (;;) {
      try {
        sh('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '1', dst]);
        return;
      } catch {
        if (Date.now() > end) throw new Error(`${ns} cannot reach ${dst}`);
        await sleep(200);
      }
    }
  })();
}

interface EncapResult {
  encap: Encap;
  e64: number[]; k64: number[]; e1514: number[]; k1514: number[];
  pps64: number; kernelPps64: number; ratio64: number;
  bps1514: number; kernelBps1514: number; ratio1514: number;
  node1PairsPerSec: number; node2PairsPerSec: number; pairsPerSec: number; singleNodePairsPerSec: number; ratioFlowSetup: number;
  scan: { node1Pairs: number; node2Pairs: number; node1Secs: number; node2Secs: number; delivered: number; singlePairs: number; singleSecs: number; singleDelivered: number };
}

// Everything this run made, for the cleanup on exit and on a signal.
const live = { nodes: [] as Node[], sinks: [] as ChildProcess[], gens: new Set<ChildProcess>(), fabric: null as Fabric | null, kernel: null as KernelOverlay | null, dir: '' };

async function cleanup(): Promise<void> {
  for (const g of live.gens) g.kill();
  for (const s of live.sinks) s.kill();
  live.sinks = [];
  for (const n of live.nodes) await n.stop();
  live.nodes = [];
  live.kernel?.down();
  live.fabric?.down();
  await removeLeftovers(P, LEFTOVER);
  if (live.dir !== '') fs.rmSync(live.dir, { recursive: true, force: true });
  fs.rmSync(pidFile(P), { force: true });
}

async function stopNodes(): Promise<void> {
  for (const n of live.nodes) await n.stop();
  live.nodes = [];
}

async function main(): Promise<void> {
  needRoot('bench:overlay');
  const gone = await removeLeftovers(P, LEFTOVER);
  if (gone.length) console.log(`removed a previous run's leftovers: ${gone.join(', ')}`);
  buildUdpgen();
  live.dir = fs.mkdtempSync(path.join(os.tmpdir(), `${P}bench-`));
  const pids = pidFile(P);
  fs.writeFileSync(pids, '');
  const mask = (cpu: number): string => (1 << cpu).toString(16);
  const layout = { generator: GEN_CPU, node1Datapath: N1_CPU, node2Datapath: N2_CPU, kernelRps: { senderHostVmVeth: N1_CPU, receiverHostEth1: N2_CPU }, agentsAndMainThreads: 'unpinned' };

  live.kernel = kernelOverlayUp(`${P}k`, MTU, FABRIC_IPS, 24, VM_IPS.map((ip, k) => ({ ip, mac: KERNEL_MACS[k] })), [mask(N1_CPU), mask(N2_CPU)]);
  const [kv1, kv2] = live.kernel.vms;
  live.sinks.push(sink(kv2.ns));
  await waitPing(kv1.ns, kv2.ip, 10000);

  live.fabric = fabricUp(P, 2, MTU);
  const results: EncapResult[] = [];
  for (const encap of ENCAPS) {
    const topo = path.join(live.dir, `cluster-${encap}.json`);
    fs.writeFileSync(topo, JSON.stringify(cluster(encap)));
    const perfArgs = PERF ? ['--perf-basic-prof'] : [];
    const prof = PROFILE ? [`--cpu-prof`, `--cpu-prof-dir=${path.join(PROFILE, encap)}`] : [];
    live.nodes.push(await startNode(live.dir, topo, 'node1', live.fabric.hosts[0], ['--cpu', String(N1_CPU)], [...prof, ...perfArgs], pids));
    live.nodes.push(await startNode(live.dir, topo, 'node2', live.fabric.hosts[1], ['--cpu', String(N2_CPU)], perfArgs, pids));
    const [v1, v2] = [`vm-${P}e1`, `vm-${P}e2`];
    const eSink = sink(v2);
    live.sinks.push(eSink);
    // The first packets may find the tunnel still resolving the other node's MAC.
    await waitPing(v1, VM_IPS[1], 20000);
    await sleep(300);
    // The flow (and the kernel's fdb/ARP) before measuring.
    sh('ip', ['netns', 'exec', v1, GEN, VM_IPS[1], '9', '18', '0.2']);
    sh('ip', ['netns', 'exec', kv1.ns, GEN, kv2.ip, '9', '18', '0.2']);
    await sleep(300);

    const r = { e64: [] as number[], k64: [] as number[], e1514: [] as number[], k1514: [] as number[] };
    for (let k = 0; k < ROUNDS; k++) {
      let perf: ChildProcess | null = null;
      if (PERF && k < 2) {
        fs.mkdirSync(PERF, { recursive: true });
        // Round 1: a sampled profile; round 2: syscall and context-switch counts per thread.
        const argv = k === 0
          ? ['record', '-a', '-g', '-F', '1999', '-o', path.join(PERF, `${encap}.perf.data`), '--', 'sleep', String(SECS)]
          : ['stat', '-a', '--per-thread', '-e', PERF_EVENTS, '-o', path.join(PERF, `${encap}.stat.txt`), '--', 'sleep', String(SECS)];
        perf = spawn('perf', argv, { stdio: 'ignore' });
        await sleep(200);
      }
      r.e64.push((await blast(v1, v2, VM_IPS[1], 18)).pps);
      if (perf) await new Promise((res) => perf?.once('exit', res));
      r.k64.push((await blast(kv1.ns, kv2.ns, kv2.ip, 18)).pps);
      if (PROFILING) continue;
      r.e1514.push((await blast(v1, v2, VM_IPS[1], 1472)).bps);
      r.k1514.push((await blast(kv1.ns, kv2.ns, kv2.ip, 1472)).bps);
    }
    if (PROFILING) {
      await stopNodes();
      console.log(`${encap} (profiling): 64-byte frames emulator ${r.e64.map((x) => (x / 1000).toFixed(0)).join(', ')} kpps, kernel VXLAN ${r.k64.map((x) => (x / 1000).toFixed(0)).join(', ')} kpps`);
      continue;
    }
    const s = await scan(v1, v2, live.nodes);
    eSink.kill();
    live.sinks = live.sinks.filter((x) => x !== eSink);
    await stopNodes();

    // The single-node baseline: bench:forward's scan, the datapath thread on node 1's CPU.
    const stopo = path.join(live.dir, 'single.json');
    fs.writeFileSync(stopo, JSON.stringify(SINGLE));
    live.nodes.push(await startNode(live.dir, stopo, null, live.fabric.hosts[0], ['--cpu', String(N1_CPU)], [], pids));
    const sSink = sink(`vm-${P}s2`);
    live.sinks.push(sSink);
    await waitPing(`vm-${P}s1`, VM_IPS[1], 10000);
    await sleep(300);
    const ss = await scan(`vm-${P}s1`, `vm-${P}s2`, live.nodes);
    sSink.kill();
    live.sinks = live.sinks.filter((x) => x !== sSink);
    await stopNodes();

    const rate = s.pairs.map((p, k) => p / s.secs[k]);
    const single = ss.pairs[0] / ss.secs[0];
    const [e64, k64, e1514, k1514] = [median(r.e64), median(r.k64), median(r.e1514), median(r.k1514)];
    results.push({
      encap, ...r,
      pps64: e64, kernelPps64: k64, ratio64: e64 / k64,
      bps1514: e1514, kernelBps1514: k1514, ratio1514: e1514 / k1514,
      node1PairsPerSec: rate[0], node2PairsPerSec: rate[1], pairsPerSec: Math.min(...rate), singleNodePairsPerSec: single, ratioFlowSetup: Math.min(...rate) / single,
      scan: { node1Pairs: s.pairs[0], node2Pairs: s.pairs[1], node1Secs: s.secs[0], node2Secs: s.secs[1], delivered: s.delivered, singlePairs: ss.pairs[0], singleSecs: ss.secs[0], singleDelivered: ss.delivered },
    });
  }

  if (PROFILING) return;
  const K = (x: number): string => `${(x / 1000).toFixed(0)} kpps`;
  const G = (x: number): string => `${(x / 1e9).toFixed(2)} Gbit/s`;
  const KP = (x: number): string => `${(x / 1000).toFixed(1)} k pairs/s`;
  console.log(`overlay vm1 (node 1) → vm2 (node 2), generator on CPU ${GEN_CPU}, node 1's datapath thread on CPU ${N1_CPU}, node 2's on CPU ${N2_CPU} (kernel: RPS on the same CPUs), ${SECS} s per run, median of ${ROUNDS}, underlay MTU ${MTU}`);
  for (const x of results) {
    console.log(`${x.encap}:`);
    console.log(`  64-byte frames:   emulator ${K(x.pps64)}   kernel VXLAN ${K(x.kernelPps64)}   ratio ${x.ratio64.toFixed(2)}   (runs ${x.e64.map(K).join(', ')} / ${x.k64.map(K).join(', ')})`);
    console.log(`  1514-byte frames: emulator ${G(x.bps1514)}   kernel VXLAN ${G(x.kernelBps1514)}   ratio ${x.ratio1514.toFixed(2)}   (runs ${x.e1514.map(G).join(', ')} / ${x.k1514.map(G).join(', ')})`);
    console.log(`  flow setup across nodes: ${KP(x.pairsPerSec)} (node 1 ${x.scan.node1Pairs} pairs in ${x.scan.node1Secs.toFixed(2)} s = ${KP(x.node1PairsPerSec)}, node 2 ${x.scan.node2Pairs} in ${x.scan.node2Secs.toFixed(2)} s = ${KP(x.node2PairsPerSec)}, ${x.scan.delivered} datagrams reached vm2)   single node ${KP(x.singleNodePairsPerSec)} (${x.scan.singlePairs} in ${x.scan.singleSecs.toFixed(2)} s)   ratio ${x.ratioFlowSetup.toFixed(2)}`);
  }
  console.log(`  (scans of ${SCAN_FLOWS} new flows offered at ${SCAN_RATE}/s; the kernel's forwarding was measured again for each encapsulation, alternating with the emulator's)`);
  const R = (x: number): number => +x.toFixed(2);
  console.log(JSON.stringify({
    bench: 'overlay',
    cpuLayout: layout,
    underlayMtu: MTU, secs: SECS, rounds: ROUNDS, scanFlows: SCAN_FLOWS, scanRate: SCAN_RATE, profiled: PROFILE !== undefined,
    results: results.map((x) => ({
      encap: x.encap,
      pps64: Math.round(x.pps64), baselineKernelVxlanPps64: Math.round(x.kernelPps64), ratio64: R(x.ratio64),
      bps1514: Math.round(x.bps1514), baselineKernelVxlanBps1514: Math.round(x.kernelBps1514), ratio1514: R(x.ratio1514),
      flowPairsPerSec: Math.round(x.pairsPerSec), node1PairsPerSec: Math.round(x.node1PairsPerSec), node2PairsPerSec: Math.round(x.node2PairsPerSec),
      baselineSingleNodePairsPerSec: Math.round(x.singleNodePairsPerSec), ratioFlowSetup: R(x.ratioFlowSetup), scan: x.scan,
    })),
    goals: { ratio64: 1.0, ratio64Floor: 0.7, flowPairsPerSec: 50000 },
  }));
}

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    console.error(`bench:overlay: ${sig}, cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}

main()
  .then(() => (stopping ? undefined : cleanup()))
  .catch(async (e: Error) => {
    if (stopping) return; // the signal's handler cleans up and exits
    console.error(e.stack ?? e.message);
    await cleanup();
    process.exit(1);
  });
