/**
 * The answer a sweep gives, the same in `plan`'s table and in the report: a combination's overflow
 * share and the smallest table that drops nothing.
 * @module
 */
import type { SweepResult } from './types';

/** The peak overflow share (0…1): overflow entries in use over active entries, at their peaks. */
export function overflowShare(r: Pick<SweepResult, 'peakActive' | 'peakOverflow'>): number {
  return r.peakActive > 0 ? r.peakOverflow / r.peakActive : 0;
}

/**
 * The smallest table (fewest bytes; then fewer vr_flow_entries, vr_oflow_entries, a shorter timeout) of a
 * sweep that drops no frame as Flow Table Full and, with `maxOverflow`, has at most that share of its
 * active entries in overflow. @returns undefined when no combination qualifies.
 */
export function smallestTable(sweep: readonly SweepResult[], maxOverflow?: number): SweepResult | undefined {
  let best: SweepResult | undefined;
  for (const r of sweep) {
    if (r.tableFull !== 0) continue;
    if (maxOverflow !== undefined && overflowShare(r) > maxOverflow) continue;
    const key = (x: SweepResult): number[] => [x.tableBytes, x.vr_flow_entries, x.vr_oflow_entries, x.flow_cache_timeout];
    const a = key(r);
    const b = best ? key(best) : undefined;
    const k = b ? a.findIndex((v, i) => v !== b[i]) : 0;
    if (!b || (k >= 0 && a[k] < b[k])) best = r;
  }
  return best;
}
