/**
 * The shapes capacity planning passes around (replay --timeline, plan, the report): plain data, so that
 * worker threads, the CSV/JSON writers and the chart renderer share them.
 * @module
 */

/** One interval of capture time (`--interval S`) of a replay. Counts are for the interval; levels at its end. */
export interface TimelineRow {
  /** Start of the interval, seconds since the capture's first frame. */
  t: number;
  /** Frames in the interval. */
  frames: number;
  /** Active flow entries at the end of the interval (both directions count, as `flow -l` lists them). */
  active: number;
  /** Overflow entries in use at the end of the interval. */
  overflowUsed: number;
  /** New flows per second over the interval. */
  newFlowsPerS: number;
  /** Packets that waited in a hold queue (for the agent's verdict on a new flow) in the interval. */
  held: number;
  /** Drops in the interval by `dropstats` label (only non-zero labels). */
  drops: Record<string, number>;
  /** Flows the agent aged out, and flows the datapath evicted, in the interval. */
  aged: number;
  evicted: number;
  /** Flow-export records sent per second over the interval, and the sampling threshold at its end (bytes). */
  exportPerS: number;
  exportThreshold: number;
  /** Flows the sampler left out in the interval. */
  sampledAway: number;
}

/** One combination of a `plan` sweep and what the replay found. */
export interface SweepResult {
  vr_flow_entries: number;
  vr_oflow_entries: number;
  /** flow_cache_timeout in seconds (0: the agent's default). */
  flow_cache_timeout: number;
  /** Fat-flow rules of the combination ("udp/53", …). */
  fatFlow: string[];
  peakActive: number;
  peakOverflow: number;
  /** Frames dropped as "Flow Table Full". */
  tableFull: number;
  /** Bytes of the flow table ((N + O) × 128, as the module allocates it). */
  tableBytes: number;
  /** Export records per second over the capture (mean) and at its busiest interval. */
  exportPerS: number;
  exportPeakPerS: number;
  /** The combination's timeline (for the report's lines). */
  timeline: TimelineRow[];
}
