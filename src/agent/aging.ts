/**
 * The agent's flow aging (FlowStatsCollector and FlowStatsManager, contrail-controller R2.20/R2.22
 * src/vnsw/agent/vrouter/flow_stats; reference vrouter-agent.md §3.2, §4.3, §4.4): the aging tables
 * (collectors) keyed by (protocol, port) with the flows each one ages, the scan pacing
 * (UpdateFlowMultiplier and the re-arm at the end of Run: pure arithmetic, agingMultiplier/agingPace),
 * the scan itself (a run visits the next countPerPass flows of a table and ages the idle ones) and its
 * timers.
 *
 * Part of the flow manager (flow-mgr.ts), which owns the flows: the scan reads the per-flow state
 * (flow-state.ts) and asks the manager, through AgingOps, to read a flow's counters and to delete or
 * forget flows. Each table keeps the indices of its flows in a dense list that its scan walks.
 * @module
 */
import {
  IPPROTO_TCP,
  VR_FLOW_FLAG_ACTIVE,
  VR_FLOW_FLAG_EVICTED,
  VR_FLOW_FLAG_EVICT_CANDIDATE,
  VR_FLOW_TCP_DEAD,
  VR_FLOW_TCP_ESTABLISHED,
  VR_FLOW_TCP_ESTABLISHED_R,
  VR_FLOW_TCP_SYN,
  VR_FLOW_TCP_SYN_R,
} from '../dp/defs';
import { FlowTable, feFlags, feTcpFlags } from '../dp/flow-table';
import { UserError } from '../errors';
import type { AgingTimeout } from './contrail-config';
import { FL_SHORT, FlowMgrStats, FlowState, ST_ACTIVE, ST_NONE } from './flow-state';

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

/** Aging tables the agent holds at once (ids fit the per-flow Uint16Array). */
export const MAX_AGING_TABLES = 4096;

/**
 * Due runs of one aging table that tick() still makes one by one at their times: at least this many
 * (≈ 17 min at the 1 s interval of a table of up to ~1000 flows, 100 s at the 100 ms floor), or two
 * sweeps of the table when those are more, so that every flow is visited at least twice. A longer gap
 * (a capture whose clock jumps by years) is not run through, which would never end: after these runs
 * one sweep at `now` ages what stayed idle across the gap (even when the age time is longer than the
 * runs span), and the timer re-arms from `now`. Gaps within the bound run exactly as before; past it the
 * same flows age, at `now` rather than at the skipped runs' times, and `scanned` counts fewer visits.
 */
export const AGING_CATCHUP_RUNS = 1000;

/** Runs that visit every flow of a table of `flows` flows at least once (a run visits ≥ AGING_MIN_COUNT_PER_PASS, or a whole lap). */
export function agingSweepRuns(flows: number): number {
  return Math.ceil(flows / AGING_MIN_COUNT_PER_PASS) + 1;
}

/** An aging table (FlowStatsCollector) keyed by (protocol, port), with the flows it ages. */
export interface Collector {
  readonly id: number;
  readonly proto: number;
  readonly port: number;
  ageMs: number;
  scanMs: number;
  multiplier: number;
  intervalMs: number;
  countPerPass: number;
  nextRunMs: number;
  /** Position in `members` where the next run starts. */
  cursor: number;
  /** Flow indices of this table, dense in members[0, flows). */
  members: Int32Array;
  flows: number;
  /** Removed from the configuration: keeps aging its flows, takes no new ones, goes when empty. */
  deleted: boolean;
}

/** The aging part of the agent's configuration (FlowMgrConfig). */
export interface AgingConfig {
  /** Age time of the default aging table (flow_cache_timeout; 0 → 180 s), ms. */
  ageMs: number;
  /** tcp_flow_scan_interval: the TCP table's sweep time, ms. */
  tcpScanMs: number;
  /** flow_aging_timeout_list: (protocol, port, timeout s) aging tables. */
  agingTimeouts?: AgingTimeout[];
}

/** What the scan asks of the flow manager. */
export interface AgingOps {
  /** Read flow `i`'s counters, note activity and export a sample of the change. @returns whether its bytes changed. */
  refresh(i: number, now: number): boolean;
  /** Delete flow `i` and its reverse. @returns how many flows went. */
  deletePair(i: number): number;
  /** The datapath evicted flow `i`: forget it (and its reverse). */
  forgetEvicted(i: number): void;
}

const collectorKey = (proto: number, port: number): number => (proto << 16) | port;

/** The aging tables, the membership of each flow in one, and the scan. */
export class FlowAging {
  /** The aging tables that exist (configured, or removed and still holding flows). */
  readonly collectors: Collector[] = [];
  private readonly byKey = new Map<number, Collector>();
  /** Collectors by id; ids of freed tables are reused. */
  private readonly byId: (Collector | undefined)[] = [];
  private readonly freeIds: number[] = [];
  /** ("all", 0) and ("tcp", 0) entries: they change tables that cannot be removed, until restart (§4.4). */
  private readonly stickyAgeMs = new Map<number, number>();
  /** The collector (id) of each tracked flow, and its position in that collector's member list. */
  private readonly coll: Uint16Array;
  private readonly pos: Int32Array;
  private runs = true;

  constructor(
    private readonly t: FlowTable,
    private readonly fs: FlowState,
    private readonly stats: FlowMgrStats,
    private readonly ops: AgingOps,
  ) {
    this.coll = new Uint16Array(t.total);
    this.pos = new Int32Array(t.total).fill(-1);
  }

  /**
   * Apply an aging configuration (start, and reload): the default table gets `ageMs`, the TCP table
   * its age and `tcpScanMs`, and one table per flow_aging_timeout_list entry. ("all", 0) and ("tcp", 0)
   * change the default and the TCP table, which cannot be removed: such an override lasts until restart
   * (§4.4). Tables no longer configured are marked deleted: they keep aging their flows and are freed
   * when empty. Flows stay in the table they joined (the table is chosen once, at creation).
   * @throws UserError for more tables than MAX_AGING_TABLES (nothing changed then).
   */
  configure(cfg: AgingConfig, now: number): void {
    const dflt = collectorKey(0, 0);
    const tcp = collectorKey(IPPROTO_TCP, 0);
    const sticky = new Map(this.stickyAgeMs);
    for (const a of cfg.agingTimeouts ?? []) {
      const k = collectorKey(a.proto, a.port);
      if ((k === dflt || k === tcp) && a.timeoutS > 0) sticky.set(k, a.timeoutS * 1000);
    }
    const want = new Map<number, { ageMs: number; scanMs: number }>();
    want.set(dflt, { ageMs: sticky.get(dflt) ?? cfg.ageMs, scanMs: sticky.get(dflt) ?? cfg.ageMs });
    want.set(tcp, { ageMs: sticky.get(tcp) ?? cfg.ageMs, scanMs: cfg.tcpScanMs });
    for (const a of cfg.agingTimeouts ?? []) {
      const k = collectorKey(a.proto, a.port);
      if (k === dflt || k === tcp) continue;
      if (a.timeoutS <= 0) want.delete(k);
      else want.set(k, { ageMs: a.timeoutS * 1000, scanMs: a.timeoutS * 1000 });
    }
    // Checked before anything changes, so that a refused configuration leaves the old one whole.
    let adding = 0;
    for (const k of want.keys()) if (!this.byKey.has(k)) adding++;
    if (this.collectors.length + adding > MAX_AGING_TABLES) {
      throw new UserError(`flow_aging_timeout_list: ${want.size} aging tables, with ${this.collectors.length - this.liveCount()} removed ones still aging flows: more than the ${MAX_AGING_TABLES} the emulator holds; use fewer entries`);
    }
    for (const [k, v] of sticky) this.stickyAgeMs.set(k, v);
    for (const [k, c] of this.byKey) if (!want.has(k)) c.deleted = true;
    for (const [k, w] of want) {
      let c = this.byKey.get(k);
      if (!c) {
        const id = this.freeIds.pop() ?? this.byId.length;
        c = {
          id, proto: k >>> 16, port: k & 0xffff, ageMs: w.ageMs, scanMs: w.scanMs,
          multiplier: agingMultiplier(w.scanMs), intervalMs: AGING_DEFAULT_INTERVAL_MS, countPerPass: AGING_INITIAL_COUNT_PER_PASS,
          nextRunMs: now + AGING_DEFAULT_INTERVAL_MS, cursor: 0, members: new Int32Array(64), flows: 0, deleted: false,
        };
        this.byId[id] = c;
        this.collectors.push(c);
        this.byKey.set(k, c);
      }
      c.deleted = false;
      c.ageMs = w.ageMs;
      if (c.scanMs !== w.scanMs) {
        c.scanMs = w.scanMs;
        c.multiplier = agingMultiplier(w.scanMs);
      }
    }
    this.freeEmptyDeleted();
  }

  private liveCount(): number {
    let n = 0;
    for (const c of this.collectors) if (!c.deleted) n++;
    return n;
  }

  /** Free the removed tables that hold no flows any more (their ids are reused). */
  private freeEmptyDeleted(): void {
    for (let k = this.collectors.length - 1; k >= 0; k--) {
      const c = this.collectors[k];
      if (!c.deleted || c.flows > 0) continue;
      this.collectors.splice(k, 1);
      this.byKey.delete(collectorKey(c.proto, c.port));
      this.byId[c.id] = undefined;
      this.freeIds.push(c.id);
    }
  }

  /**
   * The aging table of a new flow (FlowStatsManager::GetFlowStatsCollector at 2.22, §4.3): neither
   * (proto, sport) nor (proto, dport) exists → the protocol's table (proto, 0), else the default;
   * otherwise (proto, sport) if it exists, else (proto, dport). As in 2.22 a table marked deleted is
   * found while it exists, and a port of 0 (a fat flow's zeroed client port) finds the protocol's table.
   */
  collectorFor(proto: number, sport: number, dport: number): Collector {
    const bySport = this.byKey.get(collectorKey(proto, sport));
    const byDport = this.byKey.get(collectorKey(proto, dport));
    if (!bySport && !byDport) return this.byKey.get(collectorKey(proto, 0)) ?? (this.byKey.get(0) as Collector);
    return (bySport ?? byDport) as Collector;
  }

  /** The aging table of tracked flow `i`. */
  collectorOf(i: number): Collector {
    return this.byId[this.coll[i]] as Collector;
  }

  /** Flows in the tables (both directions count). */
  get flowCount(): number {
    let n = 0;
    for (const c of this.collectors) n += c.flows;
    return n;
  }

  /** Flow `i` joins table `c` (at its creation). */
  join(i: number, c: Collector): void {
    if (c.flows === c.members.length) {
      const m = new Int32Array(c.members.length * 2);
      m.set(c.members);
      c.members = m;
    }
    this.coll[i] = c.id;
    this.pos[i] = c.flows;
    c.members[c.flows++] = i;
  }

  /** Flow `i` leaves its table (untracked): the table's last member takes its place. */
  leave(i: number): void {
    const c = this.byId[this.coll[i]] as Collector;
    const p = this.pos[i];
    const last = c.members[--c.flows];
    c.members[p] = last;
    this.pos[last] = p;
    this.pos[i] = -1;
  }

  /** Whether the scan runs (`agent aging off` stops it: an emulator knob, to compare and inspect). */
  get on(): boolean {
    return this.runs;
  }

  setOn(on: boolean, now: number): void {
    if (on && !this.runs) for (const c of this.collectors) c.nextRunMs = now; // no catch-up burst
    this.runs = on;
  }

  /** Run every aging pass that is due at `now` (a finite time: FlowMgr.tick checks), then free the emptied removed tables. */
  tick(now: number): void {
    if (!this.runs) return;
    for (const c of this.collectors) this.runDue(c, now);
    this.freeEmptyDeleted();
  }

  /** The due runs of one table, bounded (see AGING_CATCHUP_RUNS). */
  private runDue(c: Collector, now: number): void {
    const limit = Math.max(AGING_CATCHUP_RUNS, 2 * agingSweepRuns(c.flows));
    let runs = 0;
    while (c.nextRunMs <= now) {
      if (runs++ === limit) {
        // Too far behind: skip the rest of the gap. One sweep at `now` (so that a flow idle across the
        // gap ages even when the age time is longer than the runs above span), then re-arm from now.
        const sweep = agingSweepRuns(c.flows);
        for (let k = 0; k < sweep && c.flows > 0; k++) this.runCollector(c, now);
        c.nextRunMs = now + c.intervalMs;
        return;
      }
      if (c.flows === 0) {
        // Nothing to scan: re-arm the empty-table timer from now.
        c.intervalMs = AGING_DEFAULT_INTERVAL_MS;
        c.countPerPass = AGING_INITIAL_COUNT_PER_PASS;
        c.nextRunMs = Math.max(c.nextRunMs + c.intervalMs, now - (now % AGING_DEFAULT_INTERVAL_MS) + AGING_DEFAULT_INTERVAL_MS);
        continue;
      }
      this.runCollector(c, c.nextRunMs);
      c.nextRunMs += c.intervalMs;
    }
  }

  /** One run of a collector: visit up to countPerPass of its flows from the cursor, then re-pace. */
  runCollector(c: Collector, now: number): void {
    const state = this.fs.state;
    let visited = 0;
    let steps = c.flows;
    let k = c.cursor;
    while (visited < c.countPerPass && steps > 0 && c.flows > 0) {
      if (k >= c.flows) k = 0;
      const i = c.members[k];
      steps--;
      if (state[i] !== ST_ACTIVE) {
        k++;
        continue;
      }
      visited += this.visit(c, i, now);
      // A deleted flow's place now holds the list's last member: visit that place again.
      if (state[i] === ST_ACTIVE) k++;
    }
    c.cursor = k;
    this.stats.scanned += visited;
    const p = agingPace(c.scanMs, c.multiplier, c.flows);
    c.intervalMs = p.intervalMs;
    c.countPerPass = p.countPerPass;
  }

  /**
   * Age one flow. @returns flows accounted: 1 for a live flow, 2 for a deleted pair.
   * A flow ages when the datapath marked it dead (TCP DEAD, eviction), when it is short, when it stayed
   * in SYN without ESTABLISHED for FlowTcpSynAgeTime since setup, or when its bytes did not change for
   * the age time — and then only together with its reverse, which must be idle too.
   */
  private visit(c: Collector, i: number, now: number): number {
    const t = this.t;
    const fs = this.fs;
    const f = feFlags(t, i);
    if ((f & VR_FLOW_FLAG_ACTIVE) === 0 || !fs.keyEqualsKernel(i) || f & (VR_FLOW_FLAG_EVICTED | VR_FLOW_FLAG_EVICT_CANDIDATE)) {
      // Evicted by the datapath (or gone): forget it; its reverse goes with it.
      const r = fs.rev[i];
      this.ops.forgetEvicted(i);
      return r >= 0 ? 2 : 1;
    }
    if (fs.flags[i] & FL_SHORT) return this.age(i);
    const tcp = feTcpFlags(t, i);
    if (fs.kproto[i] === IPPROTO_TCP) {
      if (tcp & VR_FLOW_TCP_DEAD) return this.age(i);
      if (tcp & (VR_FLOW_TCP_SYN | VR_FLOW_TCP_SYN_R) && (tcp & (VR_FLOW_TCP_ESTABLISHED | VR_FLOW_TCP_ESTABLISHED_R)) === 0 &&
          now - fs.setupTime[i] >= FLOW_TCP_SYN_AGE_TIME_MS) {
        return this.age(i);
      }
    }
    if (this.ops.refresh(i, now)) return 1;
    if (now - fs.lastModified[i] < c.ageMs) return 1;
    const r = fs.rev[i];
    if (r >= 0 && fs.state[r] !== ST_NONE) {
      if (this.ops.refresh(r, now) || now - fs.lastModified[r] < c.ageMs) return 1;
    }
    return this.age(i);
  }

  private age(i: number): number {
    const n = this.ops.deletePair(i);
    this.stats.aged += n;
    return n;
  }
}
