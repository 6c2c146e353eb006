/**
 * bench:replay — capacity planning's speed (issue 17).
 *  1. One core, the default table (524288 + 8192), the whole agent in the loop: a synthetic capture of
 *     FRAMES frames (`vrouter-emu synth`, seeded) replayed from the file, frames/s and peak RSS. Anchors
 *     in the same run, over the same file: `tcpdump -r CAP -w /dev/null` and `tshark -r CAP -T fields -e
 *     frame.number` (they do less than we do: no flow table, no agent); both ratios printed.
 *  2. The sweep: 4 combinations on 2 worker threads from the capture decoded once, against one replay of
 *     the same shared frames on one thread: (combinations × frames)/s, and the ratio.
 * Median of 3 runs each. Last line: one JSON object.
 * Run: npm run bench:replay [-- --frames N]
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

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'vrouter-emu.cjs');
const arg = (name: string, dflt: number): number => {
  const k = process.argv.indexOf(name);
  return k >= 0 ? Number(process.argv[k + 1]) : dflt;
};
const FRAMES = arg('--frames', 10_000_000);
const FLOWS = arg('--flows', 100_000);
const RUNS = 3;
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

function timeCmd(cmd: string, args: string[]): number {
  const t = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'ignore'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status})`);
  return (performance.now() - t) / 1000;
}

async function main(): Promise<void> {
  const dir = path.join(os.tmpdir(), 'vre-bench-replay');
  fs.mkdirSync(dir, { recursive: true });
  const cap = path.join(dir, `synth-${FRAMES}-${FLOWS}.pcap`);
  if (!fs.existsSync(cap)) {
    process.stdout.write(`writing ${cap} (vrouter-emu synth) …\n`);
    const r = spawnSync(process.execPath, [BIN, 'synth', cap, '--scenario', 'flows', '--flows', String(FLOWS), '--frames', String(FRAMES), '--frame-size', '64', '--seed', '1'], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error('synth failed');
  }
  const size = fs.statSync(cap).size;
  process.stdout.write(`capture: ${FRAMES} frames, ${FLOWS} flows, ${(size / 1e6).toFixed(0)} MB\n\n`);

  // 1. replay from the file vs the anchors, alternating.
  const tcpdump: number[] = [];
  const tshark: number[] = [];
  const ours: number[] = [];
  let rss = 0;
  for (let k = 0; k < RUNS; k++) {
    tcpdump.push(timeCmd('tcpdump', ['-r', cap, '-w', '/dev/null']));
    if (k === 0) tshark.push(timeCmd('tshark', ['-r', cap, '-T', 'fields', '-e', 'frame.number']));
    (globalThis as { gc?: () => void }).gc?.();
    const t = performance.now();
    const run = replayCapture(cap, { params: { ...MODULE_PARAM_DEFAULTS }, seed: 1 });
    ours.push((performance.now() - t) / 1000);
    rss = Math.max(rss, process.memoryUsage().rss);
    if (run.frames !== FRAMES) throw new Error(`replayed ${run.frames} frames, expected ${FRAMES}`);
  }
  const fps = FRAMES / median(ours);
  const tdFps = FRAMES / median(tcpdump);
  const tsFps = FRAMES / median(tshark);
  process.stdout.write(`replay, one core, 524288 + 8192, agent in the loop: ${(fps / 1e6).toFixed(2)} M frames/s (median ${median(ours).toFixed(2)} s), peak RSS ${(rss / 1048576).toFixed(0)} MiB\n`);
  process.stdout.write(`  tcpdump -r … -w /dev/null:           ${(tdFps / 1e6).toFixed(2)} M frames/s → ratio ${(fps / tdFps).toFixed(2)}x\n`);
  process.stdout.write(`  tshark -r … -T fields -e frame.number: ${(tsFps / 1e6).toFixed(2)} M frames/s → ratio ${(fps / tsFps).toFixed(2)}x\n\n`);

  // 2. the sweep on 2 threads vs one replay of the shared frames.
  const frames = decodeShared(cap);
  const files = { flowCacheTimeoutS: 0, maxVmFlows: AGENT_CONF_DEFAULTS.maxVmFlows, tcpFlowScanInterval: AGENT_CONF_DEFAULTS.tcpFlowScanInterval, agingTimeouts: [], exportRate: 1000, fatFlow: [], fatFlowText: [] };
  const job = (n: number, o: number): PlanJob => ({ params: { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: n, vr_oflow_entries: o }, flowCacheTimeoutS: 0, fatFlow: [], files, intervalMs: 1000, seed: 1 });
  const jobs = [job(131072, 8192), job(262144, 8192), job(524288, 8192), job(524288, 16384)];
  const single: number[] = [];
  const sweep: number[] = [];
  for (let k = 0; k < RUNS; k++) {
    let t = performance.now();
    await runPlan(frames, [jobs[2]], 1);
    single.push((performance.now() - t) / 1000);
    t = performance.now();
    await runPlan(frames, jobs, 2);
    sweep.push((performance.now() - t) / 1000);
  }
  const oneFps = FRAMES / median(single);
  const sweepFps = (jobs.length * FRAMES) / median(sweep);
  process.stdout.write(`one replay of the shared frames (1 thread): ${(oneFps / 1e6).toFixed(2)} M frames/s\n`);
  process.stdout.write(`sweep, ${jobs.length} combinations on 2 worker threads: ${(sweepFps / 1e6).toFixed(2)} M frames/s → ratio ${(sweepFps / oneFps).toFixed(2)}x\n`);
  process.stdout.write(JSON.stringify({
    bench: 'replay', frames: FRAMES, flows: FLOWS, replayFps: fps, peakRssMiB: rss / 1048576, tcpdumpFps: tdFps, tsharkFps: tsFps,
    ratioTcpdump: fps / tdFps, ratioTshark: fps / tsFps, sharedOneFps: oneFps, sweepFps, sweepRatio: sweepFps / oneFps, cpus: os.cpus().length,
  }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`bench:replay: ${(e as Error).message}\n`);
  process.exit(1);
});
