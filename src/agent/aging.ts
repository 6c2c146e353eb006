/**
 * The agent's flow-aging scan pacing (FlowStatsCollector::UpdateFlowMultiplier and the re-arm at the
 * end of Run, contrail-controller R2.20 src/vnsw/agent/vrouter/flow_stats/flow_stats_collector.cc;
 * reference vrouter-agent.md §3.2). Pure arithmetic: the flow walk itself is in flow-mgr.ts.
 * @module
 */

/** MaxFlows: the table size the multiplier is computed for. */
export const AGING_MAX_FLOWS = 256 * 1024;
/** FlowStatsMinInterval (ms). */
export const AGING_MIN_INTERVAL_MS = 100;
/** kFlowStatsInterval: the timer when a collector is empty or new (ms). */
export const AGING_DEFAULT_INTERVAL_MS = 1000;
/** Initial FlowCountPerPass. */
export const AGING_INITIAL_COUNT_PER_PASS = 200;
/** Lower bound on flows visited per run. */
export const AGING_MIN_COUNT_PER_PASS = 100;
/** FlowAgeTime: the default age time when flow_cache_timeout is 0 (ms). */
export const FLOW_AGE_TIME_MS = 180_000;
/** FlowTcpSynAgeTime: a TCP flow that never got established is deleted after this (ms since setup). */
export const FLOW_TCP_SYN_AGE_TIME_MS = 180_000;
/** tcp_flow_scan_interval default: a whole sweep of the TCP table fits in this (ms). */
export const TCP_FLOW_SCAN_INTERVAL_MS = 15_000;

/** The multiplier for a scan time (recomputed when the age time changes); ≈145 for any time. */
export function agingMultiplier(scanMs: number): number {
  const ageMs = Math.max(1, Math.floor(scanMs));
  const maxFlows = Math.floor((AGING_MAX_FLOWS * ageMs) / FLOW_AGE_TIME_MS);
  return Math.floor((maxFlows * 100) / ageMs);
}

/**
 * The timer interval and flows per pass after a run over a collector of `flows` flows.
 * The product age × multiplier is a 32-bit unsigned in the agent and wraps for scan times above
 * ~8.2 h; that quirk is kept.
 */
export function agingPace(scanMs: number, multiplier: number, flows: number): { intervalMs: number; countPerPass: number } {
  const ageMs = Math.max(1, Math.floor(scanMs));
  if (flows <= 0) return { intervalMs: AGING_DEFAULT_INTERVAL_MS, countPerPass: AGING_MIN_COUNT_PER_PASS };
  const product = Math.imul(ageMs, multiplier) >>> 0;
  let intervalMs = Math.min(Math.floor(product / flows), AGING_DEFAULT_INTERVAL_MS);
  if (intervalMs < AGING_MIN_INTERVAL_MS) intervalMs = AGING_MIN_INTERVAL_MS;
  const countPerPass = Math.max(Math.floor((intervalMs * flows) / ageMs), AGING_MIN_COUNT_PER_PASS);
  return { intervalMs, countPerPass };
}
