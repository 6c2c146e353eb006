/**
 * Capacity planning: a sweep whose answer the test works out on its own from jhash and the bucket
 * geometry (4 entries per bucket, one shared overflow pool), the same answer from worker threads, and
 * timeline rows that add up to the replay's totals.
 */
import test from 'ava';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pcapBuild } from '../../src/io/pcap';
import { udpFrame } from '../../src/io/frame-build';
import { flowHash } from '../../src/dp/flow-table';
import { keyPorts } from '../../src/dp/proto-ip';
import { ipKeyWord, ipParse } from '../../src/agent/topology';
import { MODULE_PARAM_DEFAULTS } from '../../src/params/module-params';
import { decodeShared } from '../../src/capacity/frames';
import { PlanJob, runPlan, smallestTable } from '../../src/capacity/plan';
import { replayCapture } from '../../src/cli/replay-run';
import { AGENT_CONF_DEFAULTS } from '../../src/agent/agent-conf';
import type { AgentFiles } from '../../src/capacity/agent-options';
import type { SweepResult } from '../../src/capacity/types';
import { VP_DROP_FLOW_TABLE_FULL } from '../../src/dp/defs';
import { flowCreatedCount, FTI_ADDED } from '../../src/dp/flow-table';

const FLOWS = 1500;
const VM = '10.1.1.3';
const dst = (f: number): string => `10.2.${f >> 8}.${f & 255}`;

/** FLOWS UDP flows from the VM to port 53, three frames each, interleaved, 1 ms apart. */
function capture(): string {
  const frames = [];
  for (let i = 0; i < 3 * FLOWS; i++) {
    const f = i % FLOWS;
    frames.push({ tsMs: 1.7e12 + i, data: udpFrame({ src: VM, dst: dst(f), srcMac: '02:00:0a:01:01:03', dstMac: '00:00:5e:00:01:00' }, { sport: 1000 + f, dport: 53, payload: 20 }) });
  }
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vre-plan-')), 'c.pcap');
  fs.writeFileSync(file, pcapBuild(frames));
  return file;
}

/**
 * The model: each flow needs its forward key and the reverse key the agent adds (both keyed by the
 * replayed interface's nexthop, 16). A bucket is (jhash mod N) with the low two bits cleared and holds
 * 4; what does not fit takes an overflow entry. Nothing ages in 4.5 s, so the table drops nothing iff
 * the overflow needed is at most O.
 */
function overflowNeeded(n: number): number {
  const perBucket = new Map<number, number>();
  const vm = ipKeyWord(ipParse(VM));
  for (let f = 0; f < FLOWS; f++) {
    const d = ipKeyWord(ipParse(dst(f)));
    for (const [k0, k1, k2] of [[keyPorts(1000 + f, 53), vm, d], [keyPorts(53, 1000 + f), d, vm]]) {
      const b = ((flowHash(k0, k1, k2, 16, 17) >>> 0) % n) & ~3;
      perBucket.set(b, (perBucket.get(b) ?? 0) + 1);
    }
  }
  let need = 0;
  for (const c of perBucket.values()) need += Math.max(0, c - 4);
  return need;
}

const files: AgentFiles = {
  flowCacheTimeoutS: 0, maxVmFlows: AGENT_CONF_DEFAULTS.maxVmFlows, tcpFlowScanInterval: AGENT_CONF_DEFAULTS.tcpFlowScanInterval,
  agingTimeouts: [], exportRate: 1000, fatFlow: [], fatFlowText: [],
};

test('a sweep: peak overflow and Flow Table Full as the bucket model says, the smallest table that drops nothing, the same from 2 threads', async (t) => {
  const file = capture();
  const frames = decodeShared(file);
  t.is(frames.count, 3 * FLOWS);
  const Ns = [1024, 2048, 4096, 8192];
  const Os = [64, 256, 1024];
  const jobs: PlanJob[] = [];
  for (const n of Ns) for (const o of Os) jobs.push({ params: { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: n, vr_oflow_entries: o }, flowCacheTimeoutS: 0, fatFlow: [], files, intervalMs: 1000, seed: 1 });
  const one = await runPlan(frames, jobs, 1);
  for (const r of one) {
    const need = overflowNeeded(r.vr_flow_entries);
    if (need <= r.vr_oflow_entries) {
      t.is(r.tableFull, 0, `${r.vr_flow_entries}+${r.vr_oflow_entries}: needs ${need} overflow entries, has them`);
      t.is(r.peakOverflow, need);
      t.is(r.peakActive, 2 * FLOWS);
    } else {
      t.true(r.tableFull > 0, `${r.vr_flow_entries}+${r.vr_oflow_entries}: needs ${need} overflow entries`);
      t.is(r.peakOverflow, r.vr_oflow_entries, 'the overflow pool ran out');
    }
  }
  // The answer, worked out from the model alone.
  const fits = jobs.filter((j) => overflowNeeded(j.params.vr_flow_entries) <= j.params.vr_oflow_entries && overflowNeeded(j.params.vr_flow_entries) / (2 * FLOWS) <= 0.1);
  fits.sort((a, b) => a.params.vr_flow_entries + a.params.vr_oflow_entries - (b.params.vr_flow_entries + b.params.vr_oflow_entries));
  const best = smallestTable(one, 0.1);
  t.truthy(best);
  t.deepEqual([best?.vr_flow_entries, best?.vr_oflow_entries], [fits[0].params.vr_flow_entries, fits[0].params.vr_oflow_entries]);
  // Worker threads replay the same shared frames to the same results.
  const two = await runPlan(frames, jobs, 2);
  t.deepEqual(two.map(({ timeline: _x, ...r }) => r), one.map(({ timeline: _x, ...r }) => r));
});

test('timeline rows tile the capture and add up to the totals', (t) => {
  const file = capture();
  const run = replayCapture(file, { params: { ...MODULE_PARAM_DEFAULTS, vr_flow_entries: 1024, vr_oflow_entries: 64 }, intervalMs: 250 });
  const rows = run.timeline?.rows ?? [];
  t.is(rows.length, Math.floor((3 * FLOWS - 1) / 250) + 1, 'one row per 250 ms of the 4.5 s capture');
  rows.forEach((r, k) => t.is(r.t, k * 0.25));
  const sum = (f: (r: (typeof rows)[number]) => number): number => rows.reduce((a, r) => a + f(r), 0);
  t.is(sum((r) => r.frames), run.frames);
  t.is(sum((r) => r.drops['Flow Table Full'] ?? 0), run.r.drops[VP_DROP_FLOW_TABLE_FULL]);
  t.true(run.r.drops[VP_DROP_FLOW_TABLE_FULL] > 0, 'the small table overflowed');
  t.is(Math.round(sum((r) => r.newFlowsPerS * 0.25)), flowCreatedCount(run.r.ft) + run.r.ft.info[FTI_ADDED]);
  t.is(sum((r) => r.held), run.r.results[1]);
  t.is(sum((r) => r.exportPerS * 0.25), run.exporter?.sampler.stats.exported ?? -1);
  t.is(rows[rows.length - 1].active, run.r.ft.info[4]);
});

const BIN = path.join(__dirname, '..', '..', 'bin', 'vrouter-emu.cjs');
const cli = (...a: string[]) => spawnSync(process.execPath, [BIN, ...a], { encoding: 'utf8', timeout: 60000 });

test('replay --keep-going: a corrupt block mid-file keeps the results so far, names the frame and byte, exit 2; without it one line', (t) => {
  const file = capture();
  const cut = `${file}.cut`;
  fs.writeFileSync(cut, Buffer.concat([fs.readFileSync(file).subarray(0, 24 + 100 * 78), Buffer.from('garbage-garbage-garbage!')]));
  const kept = cli('replay', cut, '--keep-going', '--params', path.join(__dirname, '..', '..', 'module-params', 'small.conf'), '--timeline', `${file}.csv`);
  t.is(kept.status, 2);
  t.regex(kept.stdout, /^Replay of .*: 100 frames over/);
  t.regex(kept.stderr, /frame 101 at byte 7824: corrupt: .*; the results above are those of the frames before it \(--keep-going\)/);
  t.regex(fs.readFileSync(`${file}.csv`, 'utf8'), /^t,frames,active,/);
  const strict = cli('replay', cut);
  t.is(strict.status, 2);
  t.is(strict.stdout, '');
  t.regex(strict.stderr, /^vrouter-emu: .*frame 101 at byte 7824: corrupt: /);
});

test('plan --json: the table of every combination and the answer smallestTable gives; a sweep value out of range is one line', (t) => {
  const file = capture();
  const r = cli('plan', file, '--sweep', 'vr_flow_entries=1024,8192', '--sweep', 'vr_oflow_entries=64,1024', '--max-overflow', '0.1', '--workers', '2', '--json');
  t.is(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout) as { combinations: number; results: (SweepResult & { overflowShare: number })[]; answer: { vr_flow_entries: number; vr_oflow_entries: number } | null };
  t.is(o.combinations, 4);
  const best = smallestTable(o.results.map((x) => ({ ...x, timeline: [] })), 0.1);
  t.deepEqual(o.answer && [o.answer.vr_flow_entries, o.answer.vr_oflow_entries], best ? [best.vr_flow_entries, best.vr_oflow_entries] : null);
  const bad = cli('plan', file, '--sweep', 'vr_flow_entries=abc');
  t.is(bad.status, 2);
  t.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
});
