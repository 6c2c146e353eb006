/**
 * bench:aging — does the agent's aging scan slow the datapath? As root, on this 2-CPU machine:
 *  1. a running emulator (vr_flow_entries=1048576, vr_oflow_entries=131072, datapath thread on CPU 1)
 *     is filled with 512K active flows through the datapath: a UDP scan of 262 144 new (source port,
 *     destination port) pairs from vm ga to vm gb, each set up by the agent as a pair;
 *  2. 64-byte UDP frames ga → gb over one established flow, generator on CPU 0: packets per second
 *     received in gb, with the aging scan running (the reference's pacing at flow_cache_timeout 180 s)
 *     and with it stopped (`agent aging off`), alternating, median of 7 each.
 * The result is the ratio with/without. The scan's measured pace is printed next to the pace the
 * reference's formula gives for that many flows. Last line: one JSON object.
 *
 * Run: sudo npm run bench:aging   (needs gcc, iproute2, python3; DEBUG_AGING=1 prints the drop
 * statistics and the measured flow when a run forwards nothing)
 */
import { ChildProcess } from 'child_process';
import { FLOW_AGE_TIME_MS, agingMultiplier, agingPace } from '../src/agent/aging';
import { GEN, buildUdpgen, median, needRoot, sh, sink, sleep, startEmulator } from './lib/emulator';

const SECS = 3;
const ROUNDS = 7;
const FILL_RATE = 50000;
/** 512K active flows: 262 144 pairs. */
const TARGET_FLOWS = 512 * 1024;

function rxPackets(ns: string): number {
  return Number(sh('ip', ['netns', 'exec', ns, 'cat', '/sys/class/net/eth0/statistics/rx_packets']).trim());
}

/** The measured flow's source port (udpgen binds it), so every run uses the one established flow. */
const MEASURED = { UDPGEN_SPORT: '40009' };
const FLOW_ENTRIES = 1048576;
const OFLOW_ENTRIES = 131072;

interface AgentStats {
  flowsActive: number;
  flowsAged: number;
  flowsScanned: number;
  aging: boolean;
  table: { added: number; active: number };
}

async function main(): Promise<void> {
  needRoot('bench:aging');
  buildUdpgen();
  const emu = await startEmulator({
    networks: [{ name: 'agebench', subnet: '10.68.1.0/24', gateway: '10.68.1.1' }],
    vms: [{ name: 'ga', ip: '10.68.1.3', network: 'agebench' }, { name: 'gb', ip: '10.68.1.4', network: 'agebench' }],
  }, ['--cpu', '1', '--param', `vr_flow_entries=${FLOW_ENTRIES}`, '--param', `vr_oflow_entries=${OFLOW_ENTRIES}`]);
  const tool = emu.tool;
  const stats = (): AgentStats => JSON.parse(tool('agent', 'stats', '--json')) as AgentStats;
  let sinkProc: ChildProcess | undefined;
  try {
    sinkProc = sink('vm-gb');
    await sleep(500);
    sh('ip', ['netns', 'exec', 'vm-ga', 'ping', '-c', '1', '-W', '2', '10.68.1.4']);

    // 1. Fill: 262 144 new flows from ga, each answered by the agent with a pair; pairs lost on the way
    // (hold queue, trap ring) are made up by further scans from new source ports.
    const f0 = Date.now();
    let offered = 0;
    for (let round = 0, want = TARGET_FLOWS / 2; round < 5 && want > 0; round++) {
      const n = round === 0 ? want : Math.ceil(want * 1.02);
      sh('taskset', ['-c', '0', 'ip', 'netns', 'exec', 'vm-ga', GEN, '10.68.1.4', '9', '18', '0', 'scan', String(n), String(FILL_RATE)],
        { UDPGEN_SPORT: String(1024 + round * 8) });
      offered += n;
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
    // The measured flow, set up before measuring.
    sh('ip', ['netns', 'exec', 'vm-ga', GEN, '10.68.1.4', '9', '18', '0.2'], MEASURED);
    await sleep(300);
    const filled = stats();

    // 2. Forwarding over one established flow, aging on and off alternately.
    const blast = (): number => {
      const a = rxPackets('vm-gb');
      const t0 = process.hrtime.bigint();
      sh('taskset', ['-c', '0', 'ip', 'netns', 'exec', 'vm-ga', GEN, '10.68.1.4', '9', '18', String(SECS)], MEASURED);
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
        if (process.env.DEBUG_AGING && pps < 1000) {
          console.log(`round ${r} aging ${aging}: ${pps} pps`);
          console.log(tool('dropstats').split('\n').filter((l) => / [1-9]\d*$/.test(l)).join('\n'));

          console.log(sh('ip', ['netns', 'exec', 'vm-ga', 'ip', 'neigh']));
          console.log(tool('flow', '-l').split('\n').filter((l, k, a) => / 10\.68\.1\.4:9 /.test(l) || / 10\.68\.1\.4:9 /.test(a[k - 1] ?? '')).join('\n'));
        }
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
    console.log(`aging scan vs forwarding, ${end.flowsActive} active flows (table ${FLOW_ENTRIES} + ${OFLOW_ENTRIES}), generator on CPU 0, datapath thread on CPU 1`);
    console.log(`  fill: ${filled.flowsActive} flows (${offered} pairs offered at ${FILL_RATE}/s) in ${fillSecs.toFixed(1)} s`);
    console.log(`  64-byte frames, one established flow, ${SECS} s per run, median of ${ROUNDS}:`);
    console.log(`    aging scan running ${K(ppsOn)}   aging stopped ${K(ppsOff)}   ratio ${(ppsOn / ppsOff).toFixed(3)}`);
    console.log(`    (runs on ${on.map(K).join(', ')} / off ${off.map(K).join(', ')})`);
    console.log(`  scan pace: ${scanRate.toFixed(0)} flows/s measured; the reference's pacing for ${end.flowsActive} flows at 180 s: ` +
      `${pace.countPerPass} flows every ${pace.intervalMs} ms = ${expected.toFixed(0)} flows/s; flows aged during the runs ${end.flowsAged - filled.flowsAged}`);
    console.log(JSON.stringify({
      bench: 'aging', activeFlows: end.flowsActive, ppsAgingOn: Math.round(ppsOn), ppsAgingOff: Math.round(ppsOff),
      ratio: +(ppsOn / ppsOff).toFixed(3), scanFlowsPerSec: Math.round(scanRate), expectedScanFlowsPerSec: Math.round(expected),
      goals: { ratio: 0.95, activeFlows: TARGET_FLOWS },
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
