/**
 * `vrouter-emu plan CAPTURE --sweep NAME=V1,V2… …`: every combination of the sweeps replayed (in worker
 * threads, from the capture decoded once), a table of what each did, and the answer: the smallest flow
 * table that drops nothing with its overflow share under `--max-overflow`.
 * @module
 */
import * as os from 'os';
import { loadReport } from '../capacity/load-report';
import { UserError } from '../errors';
import { loadModuleParams } from '../params/module-params';
import { defaultParamsFile } from '../lib/package-root';
import { AGENT_OPTS, AGENT_USAGE, agentFiles, parseFatFlow } from '../capacity/agent-options';
import { decodeShared } from '../capacity/frames';
import { intervalOption } from '../capacity/timeline';
import { PlanJob, overflowShare, runPlan, smallestTable } from '../capacity/plan';
import type { SweepResult } from '../capacity/types';
import { Parsed, opt, optInt } from './args';
import { StdoutWriter } from './out';

export const PLAN_USAGE =
  `vrouter-emu plan CAPTURE --sweep vr_flow_entries=N1,N2… [--sweep vr_oflow_entries=O1,…] [--sweep flow_cache_timeout=S1,…] [--sweep fat_flow=none,udp/53+tcp/80…] [--max-overflow F] [--workers N] [--params FILE] [--param name=value]... ${AGENT_USAGE} [--interval S] [--report FILE.html] [--svg DIR] [--json]`;

export const PLAN_OPTS = {
  '--sweep': { value: true, repeat: true },
  '--max-overflow': { value: true },
  '--workers': { value: true },
  '--params': { value: true },
  '--param': { value: true, repeat: true },
  ...AGENT_OPTS,
  '--interval': { value: true },
  '--report': { value: true },
  '--svg': { value: true },
  '--json': {},
};

const SWEEPS = ['vr_flow_entries', 'vr_oflow_entries', 'flow_cache_timeout', 'fat_flow'] as const;
type SweepName = (typeof SWEEPS)[number];

/** Parse the --sweep options into value lists per name. @throws UserError naming the option. */
export function parseSweeps(list: string[]): Map<SweepName, string[]> {
  const out = new Map<SweepName, string[]>();
  for (const s of list) {
    const m = /^([a-z_]+)=(.+)$/.exec(s);
    if (!m || !(SWEEPS as readonly string[]).includes(m[1])) throw new UserError(`--sweep ${s}: expected NAME=V1,V2,… with NAME one of ${SWEEPS.join(', ')}`);
    if (out.has(m[1] as SweepName)) throw new UserError(`--sweep ${m[1]} is given twice; list all its values in one --sweep`);
    const vals = m[2].split(',').map((v) => v.trim());
    if (vals.some((v) => v === '')) throw new UserError(`--sweep ${s}: an empty value`);
    out.set(m[1] as SweepName, vals);
  }
  if (out.size === 0) throw new UserError(`plan needs at least one --sweep; usage: ${PLAN_USAGE}`);
  return out;
}

/** Every combination as a job, each validated (module parameter ranges) before anything runs. */
function jobsOf(p: Parsed, sweeps: Map<SweepName, string[]>, intervalMs: number): PlanJob[] {
  const files = agentFiles(p);
  const dims = SWEEPS.map((n) => sweeps.get(n) ?? [undefined]) as (string | undefined)[][];
  const jobs: PlanJob[] = [];
  const combos = dims.reduce<(string | undefined)[][]>((acc, vals) => acc.flatMap((c) => vals.map((v) => [...c, v])), [[]]);
  if (combos.length > 1000) throw new UserError(`--sweep: ${combos.length} combinations; at most 1000`);
  for (const [n, o, fct, ff] of combos) {
    const overrides = [...(p.opts.get('--param') ?? [])];
    if (n !== undefined) overrides.push(`vr_flow_entries=${n}`);
    if (o !== undefined) overrides.push(`vr_oflow_entries=${o}`);
    // The module's own checks name a value out of range (vr_flow_entries a multiple of 4, limits).
    const params = loadModuleParams({ file: opt(p, '--params'), overrides }, defaultParamsFile());
    let timeout = files.flowCacheTimeoutS;
    if (fct !== undefined) {
      timeout = Number(fct);
      if (!/^\d+$/.test(fct) || timeout > 86400) throw new UserError(`--sweep flow_cache_timeout=${fct}: expected seconds, 0 (the default 180) to 86400`);
    }
    let fat = files.fatFlow;
    if (ff !== undefined) fat = ff === 'none' ? [] : ff.split('+').map((r) => parseFatFlow(r, '--sweep fat_flow='));
    jobs.push({ params, flowCacheTimeoutS: timeout, fatFlow: fat, files, intervalMs, seed: 1 });
  }
  return jobs;
}

const mib = (b: number): string => (b / 1048576).toFixed(1);

export async function cmdPlan(p: Parsed): Promise<number> {
  const file = p.positional[0];
  if (file === undefined || p.positional.length > 1) throw new UserError(`usage: ${PLAN_USAGE}`);
  const sweeps = parseSweeps(p.opts.get('--sweep') ?? []);
  const maxOverflow = opt(p, '--max-overflow') === undefined ? 0.5 : Number(opt(p, '--max-overflow'));
  if (!(maxOverflow >= 0 && maxOverflow <= 1)) throw new UserError(`--max-overflow ${opt(p, '--max-overflow')}: expected the largest share of active entries in overflow, 0 to 1`);
  const intervalS = intervalOption(p);
  const jobs = jobsOf(p, sweeps, intervalS * 1000);
  const workers = opt(p, '--workers') === undefined ? Math.min(os.cpus().length, jobs.length) : optInt(p, '--workers', 1);
  if (workers < 1 || workers > 64) throw new UserError(`--workers ${workers}: expected 1 to 64 threads`);
  const t0 = Date.now();
  const frames = decodeShared(file);
  const t1 = Date.now();
  const tty = process.stderr.isTTY === true;
  let done = 0;
  const results = await runPlan(frames, jobs, workers, () => {
    done++;
    if (tty) {
      const el = (Date.now() - t1) / 1000;
      const eta = done > 0 ? (el / done) * (jobs.length - done) : 0;
      process.stderr.write(`\r${done}/${jobs.length} combinations, ${((done * frames.count) / Math.max(el, 1e-3) / 1e6).toFixed(2)} M frames/s, ETA ${eta.toFixed(0)} s   `);
    }
  });
  if (tty) process.stderr.write('\r' + ' '.repeat(70) + '\r');
  const wall = (Date.now() - t1) / 1000;
  const best = smallestTable(results, maxOverflow);
  const out = new StdoutWriter();
  if (p.flags.has('--json')) {
    out.write(JSON.stringify({
      capture: file, frames: frames.count, combinations: results.length, workers, decodeSeconds: (t1 - t0) / 1000, replaySeconds: wall,
      framesPerSecond: (results.length * frames.count) / Math.max(wall, 1e-3), maxOverflow,
      results: results.map(({ timeline: _t, ...r }) => ({ ...r, overflowShare: overflowShare(r) })),
      answer: best ? { vr_flow_entries: best.vr_flow_entries, vr_oflow_entries: best.vr_oflow_entries, flow_cache_timeout: best.flow_cache_timeout, fatFlow: best.fatFlow, tableBytes: best.tableBytes } : null,
    }) + '\n');
  } else {
    out.write(`Plan for ${file}: ${frames.count} frames, ${results.length} combinations on ${workers} threads in ${wall.toFixed(1)} s (${((results.length * frames.count) / Math.max(wall, 1e-3) / 1e6).toFixed(2)} M frames/s; decoded once in ${((t1 - t0) / 1000).toFixed(1)} s)\n\n`);
    const head = ['vr_flow_entries', 'vr_oflow_entries', 'timeout', 'fat flow', 'peak active', 'peak overflow', 'overflow share', 'Flow Table Full', 'table MiB', 'export/s', 'export peak/s'];
    const rows = results.map((r) => [r.vr_flow_entries, r.vr_oflow_entries, r.flow_cache_timeout || 180, r.fatFlow.join('+') || '-', r.peakActive, r.peakOverflow, overflowShare(r).toFixed(3), r.tableFull, mib(r.tableBytes), r.exportPerS.toFixed(1), r.exportPeakPerS.toFixed(1)].map(String));
    const w = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
    out.write(head.map((h, k) => h.padStart(w[k])).join('  ') + '\n');
    for (const r of rows) out.write(r.map((c, k) => c.padStart(w[k])).join('  ') + '\n');
    out.write('\n');
    out.write(best
      ? `Smallest table that drops nothing with at most ${(maxOverflow * 100).toFixed(0)} % of its entries in overflow: vr_flow_entries=${best.vr_flow_entries} vr_oflow_entries=${best.vr_oflow_entries}${best.flow_cache_timeout ? ` flow_cache_timeout=${best.flow_cache_timeout}` : ''}${best.fatFlow.length ? ` fat flow ${best.fatFlow.join('+')}` : ''} (${mib(best.tableBytes)} MiB; peak ${best.peakActive} active, ${best.peakOverflow} in overflow)\n`
      : `No combination drops nothing with at most ${(maxOverflow * 100).toFixed(0)} % of its entries in overflow: sweep larger tables (or a shorter flow_cache_timeout, or fat flow)\n`);
  }
  out.flush();
  await writePictures(p, file, results, best, maxOverflow);
  return 0;
}

/** --report FILE.html and --svg DIR (src/capacity/report.ts): the sweep, and the answer's (or the last combination's) timeline. */
async function writePictures(p: Parsed, file: string, results: SweepResult[], best: SweepResult | undefined, maxOverflow: number): Promise<void> {
  const report = opt(p, '--report');
  const svg = opt(p, '--svg');
  if (!report && !svg) return;
  const { writeReport, writeSvgs } = loadReport();
  const focus = best ?? results[results.length - 1];
  const input = {
    timeline: focus.timeline, sweep: results, table: { entries: focus.vr_flow_entries, oentries: focus.vr_oflow_entries },
    exportRate: agentFiles(p).exportRate, title: `vrouter-emu plan: ${file}`, maxOverflow,
  };
  if (report) await writeReport(report, input);
  if (svg) await writeSvgs(svg, input);
}
