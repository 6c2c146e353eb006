/**
 * A `plan` worker thread: replays the shared frames (workerData.frames) under each combination the main
 * thread sends, and answers with its SweepResult. Entry point of dist/plan-worker.cjs.
 * @module
 */
import { parentPort, workerData } from 'worker_threads';
import { PlanJob, runCombination } from './plan';
import type { SharedFrames } from './frames';

const port = parentPort;
if (port) {
  const frames = (workerData as { frames: SharedFrames }).frames;
  port.on('message', (m: { k: number; job: PlanJob }) => {
    try {
      port.postMessage({ k: m.k, result: runCombination(frames, m.job) });
    } catch (e) {
      port.postMessage({ k: m.k, error: (e as Error).message });
    }
  });
}
