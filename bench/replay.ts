/**
 * bench:replay — capacity planning's speed (issue 17).
 *  1. One core, the default table (524288 + 8192), the whole agent in the loop: a synthetic capture of
 *     FRAMES frames (`vrouter-emu synth`, seeded) replayed from the file, frames/s and peak RSS. Anchors
 *     in the same run, over the same file: `tcpdump -r CAP -w /dev/null` and `tshark -r CAP -T fields -e
 *     frame.number` (they do less than we do: no flow table, no agent); both ratios printed.
 *  2. Memory, each in a process of its own (`vrouter-emu replay CAP`, peak RSS from getrusage): the same
 *     flows in 1 M and in FRAMES frames (memory must not grow with the capture), against what is sized by
 *     the table (the datapath's flow table, the agent's flow state and the export sampler's, measured as
 *     the buffers they allocate): the rest is the fixed cost (Node, the code, the reader, the listing).
 *  3. The sweep: 4 combinations on 2 worker threads from the capture decoded once, against the same 4
 *     combinations one after the other on one thread (the throughput of one replay), and against 4 times
 *     one replay of the default table: (combinations × frames)/s, and the ratios. Each round runs both, and
 *     the ratio is the median of the rounds' ratios (5 rounds).
 * Median of 3 runs each. Last line: one JSON object.
 * Run: npm run bench:replay [-- --frames N] [-- --parts 2,3]   (part 1's tshark takes ~15 min at 10 M frames)
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { replayCapture } from '../src/cli/replay-run';
import { MODULE_PARAM_DEFAULTS } from '../src/params/module-params';
import { decodeShared } from '../src/capacity/frames';
import { PlanJob, runPlan } from '../src/capacity/plan';
import { AGENT_CONF_DEFAULTS } from '../src/agent/agent-conf';
import { createDatapath } from '../src/dp/datapath';
import { ManualHost } from '../src/dp/manual-host';
import { FlowMgr, allowAllEnv } from '../src/agent/flow-mgr';
import { DirectChannel } from '../src/agent/dp-channel';
import { agentFlowConfig } from '../src/agent/assembly';
import { FlowExport } from '../src/agent/flow-export';
import { xorshift32 } from '../src/lib/xorshift';
import { flowTableBytes } from '../src/dp/flow-table';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'vrouter-emu.cjs');
const arg = (name: string, dflt: number): number => {
  const k = process.argv.indexOf(name);
  return k >= 0 ? Number(process.argv[k + 1]) : dflt;
};
const FRAMES = arg('--frames', 10_000_000);
const FLOWS = arg('--flows', 100_000);
const PARTS = new Set((process.argv.includes('--parts') ? process.argv[process.argv.indexOf('--parts') + 1] : '1,2,3').split(',').map(Number));
const RUNS = 3;
/** The sweep's rounds: its ratio moves by ±0.1 from round to round on this shared machine. */
const SWEEP_ROUNDS = 5;
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** Write a synth capture of `frames` frames and `flows` flows (seeded) unless it is there. */
function synth(dir: string, frames: number, flows: number): string {
  const cap = path.join(dir, `synth-${frames}-${flows}.pcap`);
  if (!fs.existsSync(cap)) {
    process.stdout.write(`writing ${cap} (vrouter-emu synth) …\n`);
    const r = spawnSync(process.execPath, [BIN, 'synth', cap, '--scenario', 'flows', '--flows', String(flows), '--frames', String(frames), '--frame-size', '64', '--seed', '1'], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error('synth failed');
  }
  return cap;
}

/** Peak RSS (MiB) of `vrouter-emu replay CAP` in a process of its own. */
function replayRss(cap: string): number {
  const r = spawnSync(process.execPath, ['--require', path.join(ROOT, 'bench', 'tools', 'maxrss.cjs'), BIN, 'replay', cap], { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  const m = /MAXRSS_KIB (\d+)/.exec(r.stderr.toString());
  if (r.status !== 0 || !m) throw new Error(`vrouter-emu replay ${cap} failed (${r.status}): ${r.stderr.toString().slice(0, 300)}`);
  return Number(m[1]) / 1024;
}

/**
 * Buffers (MiB) the replay's datapath, agent and export sampler allocate for the default table, before any
 * frame. Measured first, while nothing else is allocated: a collection of earlier buffers in between
 * would make the deltas meaningless.
 */
function tableSizedMiB(): { datapath: number; agent: number; total: number } {
  const ab = (): number => process.memoryUsage().arrayBuffers;
  (globalThis as { gc?: () => void }).gc?.();
  const a0 = ab();
  const r = createDatapath(new ManualHost({ now: 0, seed: 1, keepSent: false }), { ...MODULE_PARAM_DEFAULTS }, { eviction: true, routing: false });
  const a1 = ab();
  const agent = new FlowMgr(r.ft, new DirectChannel(r), allowAllEnv(), agentFlowConfig(MODULE_PARAM_DEFAULTS, { ...AGENT_CONF_DEFAULTS }), () => 0);
  agent.sampler = new FlowExport(agent, r.ft, { vnName: () => undefined, vmInterface: () => undefined, vrouterIp: '0.0.0.0' }, { rate: 1000, disable: false }, () => 0, xorshift32(1), undefined, () => 0);
  const a2 = ab();
  return { datapath: (a1 - a0) / 1048576, agent: (a2 - a1) / 1048576, total: (a2 - a0) / 1048576 };
}

function timeCmd(cmd: string, args: string[]): number {
  const t = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'ignore'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status})`);
  return (performance.now() - t) / 1000;
}

async function main(): Promise<void> {
  const sized = tableSizedMiB();
  const dir = path.join(os.tmpdir(), 'vre-bench-replay');
  fs.mkdirSync(dir, { recursive: true });
  const cap = synth(dir, FRAMES, FLOWS);
  const small = synth(dir, Math.min(1_000_000, FRAMES), FLOWS);
  const size = fs.statSync(cap).size;
  process.stdout.write(`capture: ${FRAMES} frames, ${FLOWS} flows, ${(size / 1e6).toFixed(0)} MB\n\n`);

  // 1. replay from the file vs the anchors, alternating.
  const tcpdump: number[] = [];
  const tshark: number[] = [];
  const ours: number[] = [];
  for (let k = 0; k < (PARTS.has(1) ? RUNS : 0); k++) {
    tcpdump.push(timeCmd('tcpdump', ['-r', cap, '-w', '/dev/null']));
    if (k === 0) tshark.push(timeCmd('tshark', ['-r', cap, '-T', 'fields', '-e', 'frame.number']));
    (globalThis as { gc?: () => void }).gc?.();
    const t = performance.now();
    const run = replayCapture(cap, { params: { ...MODULE_PARAM_DEFAULTS }, seed: 1 });
    ours.push((performance.now() - t) / 1000);
    if (run.frames !== FRAMES) throw new Error(`replayed ${run.frames} frames, expected ${FRAMES}`);
  }
  const fps = FRAMES / median(ours);
  const tdFps = FRAMES / median(tcpdump);
  const tsFps = FRAMES / median(tshark);
  if (PARTS.has(1)) {
    process.stdout.write(`replay, one core, 524288 + 8192, agent in the loop: ${(fps / 1e6).toFixed(2)} M frames/s (median ${median(ours).toFixed(2)} s)\n`);
    process.stdout.write(`  tcpdump -r … -w /dev/null:           ${(tdFps / 1e6).toFixed(2)} M frames/s → ratio ${(fps / tdFps).toFixed(2)}x\n`);
    process.stdout.write(`  tshark -r … -T fields -e frame.number: ${(tsFps / 1e6).toFixed(2)} M frames/s → ratio ${(fps / tsFps).toFixed(2)}x\n\n`);
  }

  // 2. memory, in processes of their own.
  const rssSmall = PARTS.has(2) ? replayRss(small) : NaN;
  const rssBig = PARTS.has(2) ? replayRss(cap) : NaN;
  const fixed = rssBig - sized.total;
  if (PARTS.has(2)) {
    process.stdout.write(`memory of \`vrouter-emu replay\` (its own process, peak RSS): ${Math.min(1_000_000, FRAMES)} frames ${rssSmall.toFixed(0)} MiB, ${FRAMES} frames ${rssBig.toFixed(0)} MiB\n`);
    process.stdout.write(`  sized by the table: ${sized.total.toFixed(0)} MiB (datapath flow table ${sized.datapath.toFixed(0)} MiB = flowTableBytes ${(flowTableBytes(MODULE_PARAM_DEFAULTS.vr_flow_entries, MODULE_PARAM_DEFAULTS.vr_oflow_entries) / 1048576).toFixed(0)} MiB, agent flow state + export sampler ${sized.agent.toFixed(0)} MiB)\n`);
    process.stdout.write(`  the rest (Node, the code, reader, listing): ${fixed.toFixed(0)} MiB; growth from 1 M to ${FRAMES} frames: ${(rssBig - rssSmall).toFixed(0)} MiB\n\n`);
  }

  // 3. the sweep on 2 threads vs the same combinations on one thread, alternating.
  const frames = decodeShared(cap);
  const files = { flowCacheTimeoutS: 0, maxVmFlows: AGENT_CONF_DEFAULTS.maxVmFlows, tcpFlowScanInterval: AGENT_CONF_DEFAULTS.tcpFlowScanInterval, agingTimeouts: [], exportRate: 1000, fatFlow: [], fatFlowText: [] };
  const job = (n: number, o: number): PlanJob => ({ params: { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: n, vr_oflow_entries: o }, flowCacheTimeoutS: 0, fatFlow: [], files, intervalMs: 1000, seed: 1 });
  const jobs = [job(131072, 8192), job(262144, 8192), job(524288, 8192), job(524288, 16384)];
  const serial: number[] = [];
  const one: number[] = [];
  const sweep: number[] = [];
  for (let k = 0; k < (PARTS.has(3) ? SWEEP_ROUNDS : 0); k++) {
    const t0 = performance.now();
    let t = t0;
    await runPlan(frames, jobs, 1, (i) => {
      const now = performance.now();
      if (i === 2) one.push((now - t) / 1000);
      t = now;
    });
    serial.push((performance.now() - t0) / 1000);
    t = performance.now();
    await runPlan(frames, jobs, 2);
    sweep.push((performance.now() - t) / 1000);
  }
  const n = jobs.length;
  const ratioSerial = median(serial.map((s, k) => s / sweep[k]));
  const ratioOne = median(one.map((s, k) => (n * s) / sweep[k]));
  const sweepFps = (n * FRAMES) / median(sweep);
  process.stdout.write(`capture decoded once into shared memory: ${(frames.bytes / 1048576).toFixed(0)} MiB for ${frames.count} frames\n`);
  process.stdout.write(`the ${n} combinations one after the other on 1 thread: ${((n * FRAMES) / median(serial) / 1e6).toFixed(2)} M frames/s (one replay of 524288 + 8192: ${(FRAMES / median(one) / 1e6).toFixed(2)} M frames/s)\n`);
  process.stdout.write(`sweep, ${n} combinations on 2 worker threads: ${(sweepFps / 1e6).toFixed(2)} M frames/s → ratio ${ratioSerial.toFixed(2)}x the same combinations on 1 thread, ${ratioOne.toFixed(2)}x ${n} replays of 524288 + 8192 (medians of the rounds' ratios: ${serial.map((s, k) => (s / sweep[k]).toFixed(2)).join(' ')})\n`);
  process.stdout.write(JSON.stringify({
    bench: 'replay', frames: FRAMES, flows: FLOWS, replayFps: fps, tcpdumpFps: tdFps, tsharkFps: tsFps, ratioTcpdump: fps / tdFps, ratioTshark: fps / tsFps,
    rssMiB: { small: rssSmall, big: rssBig, tableSized: sized.total, datapathTable: sized.datapath, agentState: sized.agent, fixed },
    decodedMiB: frames.bytes / 1048576, serialFps: (n * FRAMES) / median(serial), oneFps: FRAMES / median(one), sweepFps, sweepRatio: ratioSerial, sweepRatioOne: ratioOne, cpus: os.cpus().length,
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`bench:replay: ${(e as Error).message}\n`);
  process.exit(1);
});
