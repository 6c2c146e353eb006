/**
 * bench:aging — does the agent's aging scan slow the datapath? As root, on this 2-CPU machine:
 *  1. a running emulator (vr_flow_entries=1048576, datapath thread on CPU 1) is filled with 512K active
 *     flows through the datapath: a UDP scan of 262 144 new (source port, destination port) pairs from
 *     vm ga to vm gb, each set up by the agent as a pair;
 *  2. 64-byte UDP frames ga → gb over one established flow, generator on CPU 0: packets per second
 *     received in gb, with the aging scan running (the reference's pacing at flow_cache_timeout 180 s)
 *     and with it stopped (`agent aging off`), alternating, median of 5 each.
 * The result is the ratio with/without. The scan's measured pace is printed next to the pace the
 * reference's formula gives for that many flows. Last line: one JSON object.
 *
 * Run: sudo npm run bench:aging   (needs gcc, iproute2, python3)
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { FLOW_AGE_TIME_MS, agingMultiplier, agingPace } from '../src/agent/aging';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'vrouter-emu.cjs');
const GEN = path.join(ROOT, 'dist', 'bench', 'udpgen');
const SECS = 3;
const ROUNDS = 5;
const FILL_PAIRS = 262144;
const FILL_RATE = 80000;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function rxPackets(ns: string): number {
  return Number(sh('ip', ['netns', 'exec', ns, 'cat', '/sys/class/net/eth0/statistics/rx_packets']).trim());
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface AgentStats {
  flowsActive: number;
  flowsAged: number;
  flowsScanned: number;
  aging: boolean;
  table: { added: number; active: number };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.error('bench:aging needs root (namespaces, TAP devices): sudo npm run bench:aging');
    process.exit(2);
  }
  fs.mkdirSync(path.dirname(GEN), { recursive: true });
  sh('gcc', ['-std=c99', '-O2', '-Wall', '-o', GEN, path.join(ROOT, 'bench', 'tools', 'udpgen.c')]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vremu-bench-'));
  const topo = path.join(dir, 'topology.json');
  fs.writeFileSync(topo, JSON.stringify({
    networks: [{ name: 'agebench', subnet: '10.68.1.0/24', gateway: '10.68.1.1' }],
    vms: [{ name: 'ga', ip: '10.68.1.3', network: 'agebench' }, { name: 'gb', ip: '10.68.1.4', network: 'agebench' }],
  }));
  const socket = path.join(dir, 'vrouter.sock');
  const emu = spawn(process.execPath, [BIN, 'start', '--topology', topo, '--socket', socket, '--cpu', '1', '--param', 'vr_flow_entries=1048576'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  emu.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  for (let k = 0; k < 120 && !out.includes('Stop with Ctrl-C'); k++) await sleep(250);
  if (!out.includes('Stop with Ctrl-C')) throw new Error(`emulator did not start:\n${out}`);
  const tool = (...a: string[]): string => sh(process.execPath, [BIN, ...a, '--socket', socket]);
  const stats = (): AgentStats => JSON.parse(tool('agent', 'stats', '--json')) as AgentStats;
  let sinkProc: ChildProcess | undefined;
  try {
    // A UDP socket on port 9 in gb that never reads: no ICMP port unreachable for the measured flow.
    sinkProc = spawn('ip', ['netns', 'exec', 'vm-gb', 'python3', '-c', "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',9))\ntime.sleep(3600)"], { stdio: 'ignore' });
    await sleep(500);
    sh('ip', ['netns', 'exec', 'vm-ga', 'ping', '-c', '1', '-W', '2', '10.68.1.4']);

    // 1. Fill: 262 144 new flows from ga, each answered by the agent with a pair.
    const f0 = Date.now();
    sh('taskset', ['-c', '0', 'ip', 'netns', 'exec', 'vm-ga', GEN, '10.68.1.4', '9', '18', '0', 'scan', String(FILL_PAIRS), String(FILL_RATE)]);
    let last = -1;
    for (let idle = 0; idle < 5; ) {
      await sleep(200);
      const a = stats().flowsActive;
      if (a === last) idle++;
      else idle = 0;
      last = a;
    }
    const fillSecs = (Date.now() - f0) / 1000;
    // The measured flow, set up before measuring.
    sh('ip', ['netns', 'exec', 'vm-ga', GEN, '10.68.1.4', '9', '18', '0.2']);
    await sleep(300);
    const filled = stats();

    // 2. Forwarding over one established flow, aging on and off alternately.
    const blast = (): number => {
      const a = rxPackets('vm-gb');
      const t0 = process.hrtime.bigint();
      sh('taskset', ['-c', '0', 'ip', 'netns', 'exec', 'vm-ga', GEN, '10.68.1.4', '9', '18', String(SECS)]);
      const dt = Number(process.hrtime.bigint() - t0) / 1e9;
      return (rxPackets('vm-gb') - a) / dt;
    };
    const on: number[] = [];
    const off: number[] = [];
    const scanRates: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (const aging of r % 2 === 0 ? ['on', 'off'] : ['off', 'on']) {
        tool('agent', 'aging', aging);
        await sleep(300);
        const s0 = stats();
        const t0 = Date.now();
        const pps = blast();
        const s1 = stats();
        if (aging === 'on') {
          on.push(pps);
          scanRates.push((s1.flowsScanned - s0.flowsScanned) / ((Date.now() - t0) / 1000));
        } else {
          off.push(pps);
          if (s1.flowsScanned !== s0.flowsScanned) throw new Error('the scan ran while aging was off');
        }
      }
    }
    tool('agent', 'aging', 'on');
    const end = stats();
    const ppsOn = median(on);
    const ppsOff = median(off);
    const scanRate = median(scanRates);
    const pace = agingPace(FLOW_AGE_TIME_MS, agingMultiplier(FLOW_AGE_TIME_MS), end.flowsActive);
    const expected = (pace.countPerPass * 1000) / pace.intervalMs;
    const K = (x: number): string => `${(x / 1000).toFixed(0)} kpps`;
    console.log(`aging scan vs forwarding, ${end.flowsActive} active flows (table 1048576 + 8192), generator on CPU 0, datapath thread on CPU 1`);
    console.log(`  fill: ${filled.flowsActive} flows (${FILL_PAIRS} pairs offered at ${FILL_RATE}/s) in ${fillSecs.toFixed(1)} s`);
    console.log(`  64-byte frames, one established flow, ${SECS} s per run, median of ${ROUNDS}:`);
    console.log(`    aging scan running ${K(ppsOn)}   aging stopped ${K(ppsOff)}   ratio ${(ppsOn / ppsOff).toFixed(3)}`);
    console.log(`    (runs on ${on.map(K).join(', ')} / off ${off.map(K).join(', ')})`);
    console.log(`  scan pace: ${scanRate.toFixed(0)} flows/s measured; the reference's pacing for ${end.flowsActive} flows at 180 s: ` +
      `${pace.countPerPass} flows every ${pace.intervalMs} ms = ${expected.toFixed(0)} flows/s; flows aged during the runs ${end.flowsAged - filled.flowsAged}`);
    console.log(JSON.stringify({
      bench: 'aging', activeFlows: end.flowsActive, ppsAgingOn: Math.round(ppsOn), ppsAgingOff: Math.round(ppsOff),
      ratio: +(ppsOn / ppsOff).toFixed(3), scanFlowsPerSec: Math.round(scanRate), expectedScanFlowsPerSec: Math.round(expected),
      goals: { ratio: 0.95, activeFlows: 512 * 1024 },
    }));
  } finally {
    sinkProc?.kill();
    emu.kill('SIGTERM');
    await new Promise((r) => emu.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  console.error(e.stack ?? e.message);
  process.exit(1);
});
