/**
 * `vrouter-emu plan`: replay one capture under every combination of a sweep (vr_flow_entries,
 * vr_oflow_entries, flow_cache_timeout, fat flow) and say which table is big enough. The capture is
 * decoded once into shared memory (frames.ts); worker threads (plan-worker.ts) take the combinations one
 * by one and replay them from it. One combination is runCombination: the same replay as `replay`.
 * @module
 */
import { Worker } from 'worker_threads';
import { FTI_ACTIVE_PEAK, FTI_OFLOW_PEAK, flowTableBytes } from '../dp/flow-table';
import { VP_DROP_FLOW_TABLE_FULL } from '../dp/defs';
import type { ModuleParams } from '../params/module-params';
import { distFile } from '../lib/package-root';
import { replayCapture } from '../cli/replay-run';
import { AgentFiles, agingFor, fatFlowText } from './agent-options';
import { SharedFrameReader, SharedFrames } from './frames';
import type { SweepResult } from './types';

export { overflowShare, smallestTable } from './answer';

/** One combination: the module parameters (validated), the agent's timeout and fat-flow rules. */
export interface PlanJob {
  params: ModuleParams;
  flowCacheTimeoutS: number;
  fatFlow: number[];
  files: AgentFiles;
  intervalMs: number;
  seed: number;
}

/** Replay the shared frames under one combination. */
export function runCombination(frames: SharedFrames, job: PlanJob): SweepResult {
  const files = { ...job.files, fatFlow: job.fatFlow };
  const run = replayCapture(new SharedFrameReader(frames), {
    params: job.params,
    aging: agingFor(job.params, files, job.flowCacheTimeoutS),
    fatFlow: job.fatFlow,
    exportRate: job.files.exportRate,
    intervalMs: job.intervalMs,
    seed: job.seed,
  });
  const info = run.r.ft.info;
  const secs = Math.max((run.lastTsMs - run.firstTsMs) / 1000, 1e-3);
  const rows = run.timeline?.rows ?? [];
  return {
    vr_flow_entries: job.params.vr_flow_entries,
    vr_oflow_entries: job.params.vr_oflow_entries,
    flow_cache_timeout: job.flowCacheTimeoutS,
    fatFlow: job.fatFlow.map(fatFlowText),
    peakActive: info[FTI_ACTIVE_PEAK],
    peakOverflow: info[FTI_OFLOW_PEAK],
    tableFull: run.r.drops[VP_DROP_FLOW_TABLE_FULL],
    tableBytes: flowTableBytes(job.params.vr_flow_entries, job.params.vr_oflow_entries),
    exportPerS: (run.exporter?.sampler.stats.exported ?? 0) / secs,
    exportPeakPerS: rows.reduce((m, r) => Math.max(m, r.exportPerS), 0),
    timeline: rows,
  };
}

/**
 * Run every job on `workers` threads (1: in this thread), in the jobs' order in the result.
 * @param onDone called as each combination finishes (progress)
 */
export async function runPlan(frames: SharedFrames, jobs: PlanJob[], workers: number, onDone?: (k: number, r: SweepResult) => void): Promise<SweepResult[]> {
  const out: SweepResult[] = new Array(jobs.length);
  if (workers <= 1) {
    jobs.forEach((j, k) => {
      out[k] = runCombination(frames, j);
      onDone?.(k, out[k]);
    });
    return out;
  }
  let next = 0;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = new Worker(distFile('plan-worker.cjs'), { workerData: { frames } });
      const give = (): void => {
        if (next >= jobs.length) {
          void w.terminate().then(() => resolve());
          return;
        }
        const k = next++;
        w.once('message', (m: { k: number; result?: SweepResult; error?: string }) => {
          if (m.error !== undefined) {
            void w.terminate();
            reject(new Error(`plan: combination ${k + 1}: ${m.error}`));
            return;
          }
          out[k] = m.result as SweepResult;
          onDone?.(k, out[k]);
          give();
        });
        w.postMessage({ k, job: jobs[k] });
      };
      w.once('error', reject);
      give();
    });
  await Promise.all(Array.from({ length: Math.min(workers, jobs.length) }, one));
  return out;
}
