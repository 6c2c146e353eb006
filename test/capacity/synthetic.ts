/**
 * Synthetic capacity-planning data for the report's tests: a timeline that fills a small table (active
 * entries rising past N, the overflow filling, Flow Table Full drops once it is full, export sampling
 * tightening), and a sweep over vr_flow_entries × vr_oflow_entries whose combinations drop less as they grow.
 * Deterministic (no random source).
 */
import type { SweepResult, TimelineRow } from '../../src/capacity/types';
import { xorshift32 } from '../../src/lib/xorshift';

/** A timeline of `rows` 1-second intervals against a table of n + o entries that fills at about 60 % of the capture. */
export function synthTimeline(n: number, o: number, rows = 60, scale = 1, seed = 17): TimelineRow[] {
  const out: TimelineRow[] = [];
  const cap = n + o;
  const rnd = xorshift32(seed);
  const noise = (): number => 1 + ((rnd() % 1000) / 1000 - 0.5) * 0.12; // ±6 %
  for (let k = 0; k < rows; k++) {
    const want = Math.round(cap * scale * 1.4 * Math.sin((Math.PI * (k + 1)) / (rows + 1)) * noise());
    const active = Math.min(cap, want);
    const overflowUsed = Math.min(o, Math.max(0, Math.round(active - n * 0.9)));
    const drops: Record<string, number> = {};
    if (want > cap) drops['Flow Table Full'] = (want - cap) * 3;
    if (k % 7 === 3) drops['Flow Action Drop'] = 5 + k;
    if (k % 11 === 5) drops['Flow Queue Limit Exceeded'] = 2;
    out.push({
      t: k,
      frames: 1000 + 37 * k,
      active,
      overflowUsed,
      newFlowsPerS: Math.max(0, Math.round((cap * 0.05 * Math.cos((Math.PI * k) / rows) + 20) * noise())),
      held: (k * 13) % 9,
      drops,
      aged: k > rows / 2 ? 10 + k : 0,
      evicted: k % 5 === 0 ? 2 : 0,
      exportPerS: Math.round(Math.min(120, 20 + 4 * k) * noise()),
      exportThreshold: k < 10 ? 0 : 200 * (k - 9),
      sampledAway: k < 10 ? 0 : 3 * k,
    });
  }
  return out;
}

/** A sweep over `ns` × `os`: each combination replays synthTimeline against its own size (the load of base). */
export function synthSweep(ns: number[], os: number[], base: { n: number; o: number }): SweepResult[] {
  const out: SweepResult[] = [];
  for (const n of ns)
    for (const o of os) {
      const timeline = synthTimeline(n, o, 60, (base.n + base.o) / (n + o));
      let peakActive = 0;
      let peakOverflow = 0;
      let tableFull = 0;
      let exp = 0;
      let expPeak = 0;
      for (const r of timeline) {
        peakActive = Math.max(peakActive, r.active);
        peakOverflow = Math.max(peakOverflow, r.overflowUsed);
        tableFull += r.drops['Flow Table Full'] ?? 0;
        exp += r.exportPerS;
        expPeak = Math.max(expPeak, r.exportPerS);
      }
      out.push({
        vr_flow_entries: n, vr_oflow_entries: o, flow_cache_timeout: 0, fatFlow: [],
        peakActive, peakOverflow, tableFull, tableBytes: (n + o) * 128,
        exportPerS: exp / timeline.length, exportPeakPerS: expPeak, timeline,
      });
    }
  return out;
}
