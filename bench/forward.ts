/**
 * bench:forward — forwarding through the running emulator, as root, on this 2-CPU machine:
 *  - 64-byte UDP frames vm1 → vm2 over an established flow: packets per second received in vm2 (its
 *    eth0 rx counter), with the generator pinned to CPU 0 and the datapath thread to CPU 1;
 *  - 1514-byte frames: Gbit/s;
 *  - the flow setup rate: a UDP scan of new (source port, destination port) pairs, flow pairs the agent
 *    set up per second, end to end (trap → agent → two FLOW_SETs → held packet flushed).
 * Baseline, same run, same generator on CPU 0: two namespaces joined by veth pairs and a Linux bridge.
 * Rounds alternate emulator and bridge; medians of 3. Last line: one JSON object.
 *
 * Run: sudo npm run bench:forward   (needs gcc, iproute2, python3)
 */
import * as fs from 'fs';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import { BIN, GEN, buildUdpgen, median, needRoot, sh, sink, sleep, startEmulator } from './lib/emulator';

const SECS = 3;
const ROUNDS = 3;
const SCAN_FLOWS = 120000;
const SCAN_RATE = Number(process.env.SCAN_RATE ?? 100000);

function tryDo(cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore' });
}

function rx(ns: string): { packets: number; bytes: number } {
  const read = (f: string): number => Number(sh('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/eth0/statistics/${f}`]).trim());
  return { packets: read('rx_packets'), bytes: read('rx_bytes') };
}

/** Run the generator in `ns` on CPU 0; returns what the receiver in `rxNs` got per second. */
function blast(ns: string, rxNs: string, dst: string, payload: number): { pps: number; bps: number } {
  const a = rx(rxNs);
  const t0 = process.hrtime.bigint();
  sh('taskset', ['-c', '0', 'ip', 'netns', 'exec', ns, GEN, dst, '9', String(payload), String(SECS)]);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const b = rx(rxNs);
  return { pps: (b.packets - a.packets) / dt, bps: ((b.bytes - a.bytes) * 8) / dt };
}

function bridgeUp(): void {
  bridgeDown();
  sh('ip', ['link', 'add', 'brbench0', 'type', 'bridge']);
  sh('ip', ['link', 'set', 'brbench0', 'up']);
  for (const [n, ipa] of [['a', '10.67.1.3'], ['b', '10.67.1.4']]) {
    sh('ip', ['netns', 'add', `brbench-${n}`]);
    sh('ip', ['link', 'add', `brb-${n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', `brbench-${n}`]);
    sh('ip', ['link', 'set', `brb-${n}`, 'master', 'brbench0', 'up']);
    // The bridge forwards on CPU 1 (RPS on the host side of the veth), as the datapath thread does:
    // generator and forwarder on different CPUs for both.
    fs.writeFileSync(`/sys/class/net/brb-${n}/queues/rx-0/rps_cpus`, '2');
    sh('ip', ['-n', `brbench-${n}`, 'addr', 'add', `${ipa}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', `brbench-${n}`, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', `brbench-${n}`, 'link', 'set', 'lo', 'up']);
  }
}

function bridgeDown(): void {
  tryDo('ip', ['netns', 'del', 'brbench-a']);
  tryDo('ip', ['netns', 'del', 'brbench-b']);
  tryDo('ip', ['link', 'del', 'brbench0']);
}

function agentStats(socket: string): { flowsSetUp: number; table: { added: number; created: number } } {
  return JSON.parse(sh(process.execPath, [BIN, 'agent', 'stats', '--json', '--socket', socket]));
}

async function main(): Promise<void> {
  needRoot('bench:forward');
  buildUdpgen();
  const emu = await startEmulator({
    networks: [{ name: 'bench', subnet: '10.66.1.0/24', gateway: '10.66.1.1' }],
    vms: [{ name: 'fa', ip: '10.66.1.3', network: 'bench' }, { name: 'fb', ip: '10.66.1.4', network: 'bench' }],
  }, ['--cpu', '1']);
  const socket = emu.socket;
  const sinks: ChildProcess[] = [];
  try {
    bridgeUp();
    sinks.push(sink('vm-fb'), sink('brbench-b'));
    await sleep(500);
    // Resolve ARP and set the flow up before measuring.
    sh('ip', ['netns', 'exec', 'vm-fa', 'ping', '-c', '1', '-W', '2', '10.66.1.4']);
    sh('ip', ['netns', 'exec', 'brbench-a', 'ping', '-c', '1', '-W', '2', '10.67.1.4']);
    sh('ip', ['netns', 'exec', 'vm-fa', GEN, '10.66.1.4', '9', '18', '0.2']);
    sh('ip', ['netns', 'exec', 'brbench-a', GEN, '10.67.1.4', '9', '18', '0.2']);
    await sleep(300);

    const res: Record<string, number[]> = { e64: [], b64: [], e1500: [], b1500: [] };
    for (let r = 0; r < ROUNDS; r++) {
      res.e64.push(blast('vm-fa', 'vm-fb', '10.66.1.4', 18).pps);
      res.b64.push(blast('brbench-a', 'brbench-b', '10.67.1.4', 18).pps);
      res.e1500.push(blast('vm-fa', 'vm-fb', '10.66.1.4', 1472).bps);
      res.b1500.push(blast('brbench-a', 'brbench-b', '10.67.1.4', 1472).bps);
    }
    const e64 = median(res.e64);
    const b64 = median(res.b64);
    const e1500 = median(res.e1500);
    const b1500 = median(res.b1500);

    // Flow setup: a scan of new flows; pairs the agent set up per second until it stops growing.
    const before = agentStats(socket);
    const t0 = Date.now();
    const scan = spawn('taskset', ['-c', '0', 'ip', 'netns', 'exec', 'vm-fa', GEN, '10.66.1.4', '9', '18', '0', 'scan', String(SCAN_FLOWS), String(SCAN_RATE)], { stdio: 'ignore' });
    let last = before.table.added;
    let lastT = t0;
    let scanDone = false;
    scan.once('exit', () => (scanDone = true));
    for (let idle = 0; idle < 10; ) {
      await sleep(100);
      const s = agentStats(socket);
      if (s.table.added > last) {
        last = s.table.added;
        lastT = Date.now();
        idle = 0;
      } else if (scanDone) idle++;
    }
    const pairs = last - before.table.added;
    const setupSecs = (lastT - t0) / 1000;
    const setupRate = pairs / setupSecs;
    const after = agentStats(socket);
    const ds = sh(process.execPath, [BIN, 'dropstats', '--socket', socket]);
    const unusable = Number((/^Flow Unusable +(\d+)$/m.exec(ds) ?? ['', '0'])[1]);

    const K = (x: number): string => `${(x / 1000).toFixed(0)} kpps`;
    const G = (x: number): string => `${(x / 1e9).toFixed(2)} Gbit/s`;
    console.log(`forwarding vm1 → vm2, generator on CPU 0, datapath thread on CPU 1, ${SECS} s per run, median of ${ROUNDS}`);
    console.log(`  64-byte frames:   emulator ${K(e64)}   Linux bridge ${K(b64)}   ratio ${(e64 / b64).toFixed(2)}   (runs ${res.e64.map(K).join(', ')} / ${res.b64.map(K).join(', ')})`);
    console.log(`  1514-byte frames: emulator ${G(e1500)}   Linux bridge ${G(b1500)}   ratio ${(e1500 / b1500).toFixed(2)}`);
    console.log(`  flow setup: ${pairs} pairs in ${setupSecs.toFixed(2)} s = ${(setupRate / 1000).toFixed(1)} k pairs/s (scan of ${SCAN_FLOWS} new flows offered at ${SCAN_RATE}/s; Flow Unusable ${unusable}; agent set up ${after.flowsSetUp - before.flowsSetUp} flows)`);
    console.log(JSON.stringify({
      bench: 'forward',
      pps64: Math.round(e64), baselineBridgePps64: Math.round(b64), ratio64: +(e64 / b64).toFixed(2),
      bps1514: Math.round(e1500), baselineBridgeBps1514: Math.round(b1500), ratio1514: +(e1500 / b1500).toFixed(2),
      flowPairsPerSec: Math.round(setupRate), scanFlows: SCAN_FLOWS, pairsSetUp: pairs, flowUnusable: unusable,
      goals: { ratio64: 0.9, flowPairsPerSec: 50000 },
    }));
  } finally {
    for (const s of sinks) s.kill();
    bridgeDown();
    await emu.stop();
  }
}

main().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  bridgeDown();
  process.exit(1);
});
