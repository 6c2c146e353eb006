/**
 * The audit of lost traps (the 2.22 agent's KSync flow audit, flowtable_ksync; reference
 * vrouter-agent.md §3, vrouter-datapath.md §4.8): a timer scans the flow table a slice at a time for
 * HOLD entries the agent does not know (their FLOW_MISS trap was lost) and hands those still HOLD and
 * unknown AUDIT_TIMEOUT_MS later to the flow manager, which turns them into short flows.
 *
 * Part of the flow manager (flow-mgr.ts): reads the table and the per-flow state, owns its list and
 * cursor, and reports a lost entry through the `lost` callback.
 * @module
 */
import type { FlowTable } from '../dp/flow-table';
import { FlowState, ST_NONE, entryIsHold } from './flow-state';

/** KSync flow audit (flowtable_ksync): every 500 ms, 1024 entries; a HOLD entry unknown for 2 s is lost. */
export const AUDIT_INTERVAL_MS = 500;
export const AUDIT_ENTRIES_PER_RUN = 1024;
export const AUDIT_TIMEOUT_MS = 2000;
/**
 * Due audit runs that tick() still makes one by one at their times: two scans of the whole table and
 * the timeout (a lost trap is found and handled within them), and at least this many (16 s). Each run
 * reads AUDIT_ENTRIES_PER_RUN entries whatever the table's size, so a larger floor only re-reads a small
 * table many times over: 1000 runs made a clock jump cost ~0.2 s on a 1K-entry table. A longer gap (a capture whose clock jumps by years) is not run through, which would
 * never end: after these runs one run at `now`, and the timer re-arms from `now`. Gaps within the bound
 * run exactly as before.
 */
export const AUDIT_CATCHUP_RUNS = 32;

export class FlowAudit {
  /** When the audit's scan found an unknown HOLD entry (0 = not on the list). */
  private readonly seen: Float64Array;
  /** The audit's list of unknown HOLD entries, oldest first. */
  private list: number[] = [];
  private cursor = 0;
  private nextMs: number;
  private readonly catchUpRuns: number;

  constructor(
    private readonly t: FlowTable,
    private readonly fs: FlowState,
    /** Entry `i` lost its trap (still HOLD and unknown at `now`). */
    private readonly lost: (i: number, now: number) => void,
    now: number,
  ) {
    this.seen = new Float64Array(t.total);
    this.nextMs = now + AUDIT_INTERVAL_MS;
    this.catchUpRuns = Math.max(AUDIT_CATCHUP_RUNS, 2 * Math.ceil(t.total / AUDIT_ENTRIES_PER_RUN) + AUDIT_TIMEOUT_MS / AUDIT_INTERVAL_MS + 1);
  }

  /** Make the runs due at `now` (a finite time: FlowMgr.tick checks), bounded (see AUDIT_CATCHUP_RUNS). */
  tick(now: number): void {
    let runs = 0;
    while (this.nextMs <= now) {
      if (runs++ === this.catchUpRuns) {
        this.run(now);
        this.nextMs = now + AUDIT_INTERVAL_MS;
        return;
      }
      this.run(this.nextMs);
      this.nextMs += AUDIT_INTERVAL_MS;
    }
  }

  /**
   * One audit run (KSync flow audit): the next AUDIT_ENTRIES_PER_RUN entries of the table are scanned
   * and HOLD entries the agent does not know go on a list; an entry of the list still HOLD and unknown
   * AUDIT_TIMEOUT_MS after the scan found it lost its trap: it goes to `lost`. (The scan covers the
   * table in total / 1024 × 500 ms: up to ~4.3 min on a 512K table before the 2 s start.)
   */
  run(now: number): void {
    const t = this.t;
    const state = this.fs.state;
    for (let k = 0; k < AUDIT_ENTRIES_PER_RUN; k++) {
      const i = this.cursor;
      this.cursor = i + 1 === t.total ? 0 : i + 1;
      if (this.seen[i] === 0 && state[i] === ST_NONE && entryIsHold(t, i)) {
        this.seen[i] = now;
        this.list.push(i);
      }
    }
    if (this.list.length === 0) return;
    const keep: number[] = [];
    for (const i of this.list) {
      if (state[i] !== ST_NONE || !entryIsHold(t, i)) {
        this.seen[i] = 0; // answered meanwhile, or gone
        continue;
      }
      if (now - this.seen[i] < AUDIT_TIMEOUT_MS) {
        keep.push(i);
        continue;
      }
      this.seen[i] = 0;
      this.lost(i, now);
    }
    this.list = keep;
  }
}
