/**
 * The agent's flow table: flow-miss traps in, FLOW_SET requests out (the vRouter agent's FlowTable and
 * its KSync flow requests, R2.20/R2.22 src/vnsw/agent/pkt and vrouter/ksync; reference vrouter-agent.md
 * §3 and vrouter-datapath.md §4.5, §4.8, §5.4, §8.4): trap → plan → set → track, deletion, and the
 * re-evaluation of established flows after a configuration change.
 *
 * Its rooms: flow-state.ts keeps what the agent knows of each flow in typed arrays indexed by the flow
 * index (the kernel index is the agent's flow handle) and is how others read a flow (FlowView);
 * aging.ts holds the aging tables and their scan; flow-counters.ts reads and extends the kernel
 * counters; flow-audit.ts finds lost traps. The kernel table is read through a read-only view (the
 * /dev/flow mmap) and changed only through the DpChannel.
 *
 * A flow miss: read the trapped entry's key, decide the action (FlowEnv.plan), add the reverse flow
 * with index −1, then set the forward flow at the trapped index with RFLOW_VALID and the reverse's index.
 * A reverse add that finds its key already trapped (EEXIST: both directions started at once) adopts that
 * entry and pairs the two once; one that finds no room (ENOSPC) makes the forward a short flow (DROP),
 * deleted on its next aging visit, as the 2.22 agent did with SHORT_FAILED_VROUTER_INSTALL.
 *
 * Flow export's samples (FlowSampler): a deleted pair takes both final samples before either flow is
 * forgotten (each still knows its reverse). A flow the datapath evicted ends with the counters eviction
 * left in its slot, or, once a new flow took the slot, with those its FLOW_MISS trap reports; the
 * entry's action and TCP state are cleared by then, so records use the agent's last copies of them.
 * @module
 */
import {
  AGENT_TRAP_FLOW_ACTION_HOLD,
  AGENT_TRAP_FLOW_MISS,
  AH_CMD,
  AH_CMD_PARAM,
  AH_CMD_PARAM_2,
  AH_CMD_PARAM_3,
  AH_CMD_PARAM_4,
  AH_IFINDEX,
  ETH_HLEN,
  VR_FLOW_ACTION_DROP,
  VR_FLOW_ACTION_FORWARD,
  VR_FLOW_ACTION_HOLD,
  VR_FLOW_DR_AUDIT_ENTRY,
  VR_FLOW_DR_FLOW_LIMIT,
  VR_FLOW_DR_NO_REVERSE_FLOW,
  VR_FLOW_FLAG_ACTIVE,
  VR_FLOW_FLAG_DNAT,
  VR_FLOW_FLAG_DPAT,
  VR_FLOW_FLAG_EVICTED,
  VR_FLOW_FLAG_EVICT_CANDIDATE,
  VR_FLOW_FLAG_RFLOW_VALID,
  VR_FLOW_FLAG_SNAT,
  VR_FLOW_FLAG_SPAT,
  VR_FLOW_FLAG_VRFT,
} from '../dp/defs';
import { EEXIST, ENOSPC, FlowReq, FlowResp, flowReqNew } from '../dp/flow';
import { FlowTable, feAction, feDropReason, feDvrf, feFlags, feKeyWord, feProto, feSrcNh, feVrf, flowFind } from '../dp/flow-table';
import { rd16, rd32 } from '../dp/pkt';
import { keyDport, keyReversePorts, keySport } from '../dp/proto-ip';
import { fillUuid4 } from '../lib/uuid';
import { AgingConfig, Collector, FlowAging } from './aging';
import type { DpChannel } from './dp-channel';
import { FlowAudit } from './flow-audit';
import { FlowCounters } from './flow-counters';
import { FL_EXPORTED, FL_FWD, FL_LOG, FL_SHORT, FlowMgrStats, FlowState, FlowView, ST_ACTIVE, ST_NONE, ST_PENDING, entryIsHold } from './flow-state';

// Moved to the rooms; exported here too for the modules that import them from the flow manager.
export { MAX_AGING_TABLES } from './aging';
export type { Collector } from './aging';
export { AUDIT_ENTRIES_PER_RUN, AUDIT_INTERVAL_MS, AUDIT_TIMEOUT_MS } from './flow-audit';
export type { FlowMgrStats } from './flow-state';

/** What one FLOW_SET of a new flow sets (besides the key and the reverse index). */
export interface SetPlan {
  action: number;
  /** Request flags besides ACTIVE and RFLOW_VALID: the NAT bits, VRFT. */
  flags: number;
  /** Destination VRF with VRFT. */
  dvrf: number;
  dropReason: number;
  /** RPF nexthop (fe_src_nh_index). */
  srcNh: number;
}

/** The agent's plan of a new flow: its forward entry (the trapped one), its reverse, what it belongs to. */
export interface FlowPlan extends SetPlan {
  /** The reverse entry to add (key as the datapath will build it for the replies), or null. */
  rev: (SetPlan & { k0: number; k1: number; k2: number; k3: number; proto: number; vrf: number; vif?: number }) | null;
  /** A short flow: programmed (DROP) and deleted on its first aging visit. */
  short: boolean;
  /** Source and destination network (indices the environment names), −1 when none. */
  srcVn: number;
  dstVn: number;
  /** The policy rule that decided (its UUID or a pseudo-UUID). */
  rule: string;
  /** The rule asked for the flow to be logged (exported unsampled). */
  log: boolean;
  /** The local VMs the flow belongs to (positions, for max_vm_flows). */
  vms: number[];
}

/** What the agent knows of the compute node around the flow table. */
export interface FlowEnv {
  /** Plan a new flow trapped on vif `vif`, key (k0..k3, proto), in `vrf`. */
  plan(vif: number, k0: number, k1: number, k2: number, k3: number, proto: number, vrf: number): FlowPlan;
}

export interface FlowMgrConfig extends AgingConfig {
  /** Per-VM flow limit (max_vm_flows as a number of entries; Infinity = none). */
  maxVmFlows?: number;
}

/**
 * An allow-everything environment (no configuration): the reverse is the forward's key swapped (ports
 * kept for ICMP) with the nexthop `reverseNh` gives, both FORWARD.
 */
export function allowAllEnv(reverseNh: (vrf: number, sip: number, dip: number, nh: number) => number = (_v, _s, _d, nh) => nh): FlowEnv {
  return {
    plan: (_vif, k0, k1, k2, k3, proto, vrf) => {
      const rk3 = reverseNh(vrf, k1, k2, k3) >>> 0;
      return {
        action: VR_FLOW_ACTION_FORWARD, flags: 0, dvrf: 0, dropReason: 0, srcNh: k3 & 0xffff,
        rev: {
          k0: keyReversePorts(k0, proto), k1: k2 >>> 0, k2: k1 >>> 0, k3: rk3, proto, vrf,
          action: VR_FLOW_ACTION_FORWARD, flags: 0, dvrf: 0, dropReason: 0, srcNh: rk3 & 0xffff,
        },
        short: false, srcVn: -1, dstVn: -1, rule: '00000000-0000-0000-0000-000000000001', log: false, vms: [],
      };
    },
  };
}

/**
 * Where a flow's stats samples go (flow export, flow-export.ts): deltas since the last sample, and the
 * final one at deletion. @returns whether the sample was exported.
 */
export interface FlowSampler {
  sample(i: number, diffBytes: number, diffPackets: number, teardown: boolean, now: number): boolean;
}

export class FlowMgr {
  /** The per-flow state (the writers' side; `flows` is its read API). */
  private readonly fs: FlowState;
  /** How others read the agent's flows (flow export, `agent flows`). */
  readonly flows: FlowView;
  /** Flow export, when configured. */
  sampler: FlowSampler | undefined;
  readonly stats: FlowMgrStats = { created: 0, aged: 0, evicted: 0, deleted: 0, short: 0, audited: 0, limited: 0, errors: 0, scanned: 0, counterResets: 0 };
  /** The aging tables and their scan. */
  private readonly aging: FlowAging;
  private readonly counters: FlowCounters;
  private readonly audit: FlowAudit;
  /** Flows per local VM (positions), for max_vm_flows. */
  private readonly vmFlows: number[] = [];
  private maxVmFlows: number;
  private cfg!: FlowMgrConfig;
  private readonly req: FlowReq = flowReqNew();
  private readonly revReq: FlowReq = flowReqNew();
  private readonly random: () => number;
  /** The old counters of the trap being handled (see onTrap). */
  private trapBytes = 0;
  private trapPackets = 0;

  constructor(
    readonly t: FlowTable,
    private readonly ch: DpChannel,
    private readonly env: FlowEnv,
    cfg: FlowMgrConfig,
    private readonly clock: () => number,
    random?: () => number,
  ) {
    this.fs = new FlowState(t);
    this.flows = this.fs;
    this.random = random ?? ((): number => (Math.random() * 0x100000000) >>> 0);
    this.maxVmFlows = cfg.maxVmFlows ?? Infinity;
    this.counters = new FlowCounters(t, this.fs, this.stats);
    this.aging = new FlowAging(t, this.fs, this.stats, {
      refresh: (i, now) => this.refresh(i, now),
      deletePair: (i) => this.deletePair(i),
      forgetEvicted: (i) => this.forgetEvicted(i),
    });
    const now = clock();
    this.audit = new FlowAudit(t, this.fs, (i, at) => this.lost(i, at), now);
    this.configureAging(cfg, now);
  }

  /**
   * Apply an aging configuration and the flow limit (start, and reload): see FlowAging.configure.
   * @throws UserError for more aging tables than the emulator holds (nothing changed then).
   */
  configureAging(cfg: FlowMgrConfig, now = this.clock()): void {
    this.aging.configure(cfg, now);
    this.maxVmFlows = cfg.maxVmFlows ?? Infinity;
    this.cfg = { ...cfg, agingTimeouts: [...(cfg.agingTimeouts ?? [])] };
  }

  /** The aging configuration last applied (introspect's Snh_AddAgingConfig adds to it). */
  get agingConfig(): FlowMgrConfig {
    return this.cfg;
  }

  /** max_vm_flows as a number of entries (Infinity = none). */
  get maxVmFlowsLimit(): number {
    return this.maxVmFlows;
  }

  /**
   * Delete every flow the agent holds, through the normal delete path (final samples, FLOW_SET
   * without ACTIVE): introspect's Snh_DeleteAllFlowRecords. @returns how many flows went.
   */
  deleteAll(): number {
    const fs = this.fs;
    let n = 0;
    for (let i = 0; i < fs.total; i++) if (fs.state[i] !== ST_NONE) n += this.deletePair(i);
    return n;
  }

  /**
   * Run every audit and aging pass that is due at `now` (the agent's timers). A non-finite `now` is
   * ignored: no timer can be due at NaN, and a timer that ran up to Infinity would never run again.
   * A jump far ahead (a capture's clock leaping by years) is caught up by a bounded amount of work
   * (AGING_CATCHUP_RUNS, AUDIT_CATCHUP_RUNS), not one run per interval of the gap, which would never end.
   */
  tick(now: number): void {
    if (!Number.isFinite(now)) return;
    this.audit.tick(now);
    this.aging.tick(now);
  }

  /** Whether the aging scan runs (`agent aging off` stops it: an emulator knob, to compare and inspect). */
  get agingOn(): boolean {
    return this.aging.on;
  }

  setAging(on: boolean, now: number): void {
    this.aging.setOn(on, now);
  }

  /** The aging tables that exist (configured, or removed and still holding flows). */
  get collectors(): readonly Collector[] {
    return this.aging.collectors;
  }

  /** The aging table a new flow of (proto, sport, dport) joins (FlowAging.collectorFor). */
  collectorFor(proto: number, sport: number, dport: number): Collector {
    return this.aging.collectorFor(proto, sport, dport);
  }

  /** The aging table of flow `i`. */
  collectorOf(i: number): Collector {
    return this.aging.collectorOf(i);
  }

  /** Flows the agent holds (both directions count). */
  get flowCount(): number {
    return this.aging.flowCount;
  }

  /** Whether the agent holds a flow at `i`. */
  has(i: number): boolean {
    return this.fs.state[i] !== ST_NONE;
  }

  /** Whether flow `i` is marked for logging (a `log` policy rule). */
  logged(i: number): boolean {
    return (this.fs.flags[i] & FL_LOG) !== 0;
  }

  /** Whether flow `i` is a short flow. */
  isShort(i: number): boolean {
    return (this.fs.flags[i] & FL_SHORT) !== 0;
  }

  /** The UUID of flow `i` (8-4-4-4-12 hex). */
  uuidOf(i: number): string {
    return this.fs.uuidOf(i);
  }

  // -------------------------------------------------------------------------------------------------
  // Traps

  /** Handle one frame from pkt0 (Ethernet header + agent_hdr + packet). */
  onTrap(frame: Uint8Array): void {
    if (frame.length < ETH_HLEN + 26) return;
    const cmd = rd16(frame, ETH_HLEN + AH_CMD);
    if (cmd !== AGENT_TRAP_FLOW_MISS && cmd !== AGENT_TRAP_FLOW_ACTION_HOLD) return;
    const idx = rd32(frame, ETH_HLEN + AH_CMD_PARAM);
    if (idx >= this.t.total) return;
    // A FLOW_MISS reports what the slot counted before the new flow took it (the last counters of a
    // flow the datapath evicted there): param_2 bytes, param_3 packets, param_4 their overflow words.
    const oflow = rd32(frame, ETH_HLEN + AH_CMD_PARAM_4);
    this.trapBytes = rd32(frame, ETH_HLEN + AH_CMD_PARAM_2) + (oflow & 0xffff) * 0x100000000;
    this.trapPackets = rd32(frame, ETH_HLEN + AH_CMD_PARAM_3) + ((oflow >>> 16) & 0xff) * 0x100000000;
    this.flowMiss(idx, cmd, rd16(frame, ETH_HLEN + AH_IFINDEX));
  }

  private overLimit(vms: number[]): boolean {
    for (const vm of vms) if ((this.vmFlows[vm] ?? 0) + 2 > this.maxVmFlows) return true;
    return false;
  }

  private flowMiss(i: number, cmd: number, vif: number): void {
    const fs = this.fs;
    // A trap the agent already answered (the entry left HOLD), or one for a flow being set up.
    if (!entryIsHold(this.t, i) || fs.state[i] === ST_PENDING) return;
    if (fs.state[i] === ST_ACTIVE) {
      if (cmd === AGENT_TRAP_FLOW_ACTION_HOLD && fs.keyEqualsKernel(i)) return;
      // A FLOW_MISS on an index the agent holds: the datapath evicted that flow and made a new one in
      // its slot (same key or not). Forget the old one ("vrouter evicted"), its final stats from the
      // trap's (the slot's counters are the new flow's now), and set the new one up.
      if (cmd === AGENT_TRAP_FLOW_MISS) this.forgetEvicted(i, this.trapBytes, this.trapPackets);
      else this.forgetEvicted(i);
    }
    const t = this.t;
    const k0 = feKeyWord(t, i, 0);
    const k1 = feKeyWord(t, i, 1);
    const k2 = feKeyWord(t, i, 2);
    const k3 = feKeyWord(t, i, 3);
    const proto = feProto(t, i);
    const vrf = feVrf(t, i);
    const now = this.clock();
    const plan = this.env.plan(vif, k0, k1, k2, k3, proto, vrf);
    const overLimit = this.overLimit(plan.vms); // before this pair counts
    this.track(i, k0, k1, k2, k3, proto, now, plan);
    fs.state[i] = ST_PENDING;
    fs.flags[i] |= FL_FWD;
    fs.inVif[i] = vif;
    if (overLimit) {
      // max_vm_flows: the pair becomes short flows that drop (SHORT_FLOW_LIMIT).
      this.stats.limited++;
      plan.action = VR_FLOW_ACTION_DROP;
      plan.flags = 0;
      plan.dropReason = VR_FLOW_DR_FLOW_LIMIT;
      plan.short = true;
      if (plan.rev) Object.assign(plan.rev, { action: VR_FLOW_ACTION_DROP, flags: 0, dvrf: 0, dropReason: VR_FLOW_DR_FLOW_LIMIT });
    }
    if (plan.short) {
      fs.flags[i] |= FL_SHORT;
      this.stats.short++;
    }
    const rv = plan.rev;
    if (rv === null) {
      this.stats.created++;
      this.sendSet(i, -1, plan, -1);
      return;
    }
    const rq = this.revReq;
    rq.index = -1;
    rq.flags = VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_RFLOW_VALID | rv.flags;
    rq.rindex = i;
    rq.action = rv.action;
    rq.dropReason = rv.dropReason;
    rq.k0 = rv.k0;
    rq.k1 = rv.k1;
    rq.k2 = rv.k2;
    rq.k3 = rv.k3;
    rq.proto = rv.proto;
    rq.vrf = rv.vrf;
    rq.dvrf = rv.dvrf;
    rq.srcNhIndex = rv.srcNh;
    this.ch.flowSet(rq, (resp) => this.reverseAdded(i, plan, resp, now));
  }

  private reverseAdded(i: number, plan: FlowPlan, resp: FlowResp, now: number): void {
    const fs = this.fs;
    const rv = plan.rev as NonNullable<FlowPlan['rev']>;
    // Forgotten meanwhile, or already paired by the other direction's reply (both trapped at once):
    // an entry added for nothing is deleted again.
    if (fs.state[i] !== ST_PENDING || fs.rev[i] >= 0) {
      if (resp.err === 0) {
        // An index the agent still holds was evicted for this add: forget that flow first.
        if (fs.state[resp.index] !== ST_NONE) this.forgetEvicted(resp.index);
        this.track(resp.index, rv.k0, rv.k1, rv.k2, rv.k3, rv.proto, now, plan, true);
        fs.state[resp.index] = ST_ACTIVE;
        this.deleteOne(resp.index, false); // never a flow of its own: no record
      }
      return;
    }
    let r = -1;
    if (resp.err === 0) {
      r = resp.index;
      // An add answered with an index the agent still holds: the datapath evicted that flow.
      if (fs.state[r] !== ST_NONE) this.forgetEvicted(r);
      this.track(r, rv.k0, rv.k1, rv.k2, rv.k3, rv.proto, now, plan, true);
      fs.state[r] = ST_ACTIVE;
      fs.copyEntry(r);
    } else if (-resp.err === EEXIST) {
      // The reverse key was trapped on its own: adopt that entry and set both directions once.
      r = flowFind(this.t, rv.k0, rv.k1, rv.k2, rv.k3, rv.proto);
      if (r >= 0) {
        if (fs.state[r] === ST_ACTIVE) this.forgetEvicted(r);
        if (fs.state[r] === ST_NONE) this.track(r, rv.k0, rv.k1, rv.k2, rv.k3, rv.proto, now, plan, true);
        else this.adoptAsReverse(r, plan);
        fs.state[r] = ST_PENDING;
        fs.rev[r] = i;
        fs.rev[i] = r;
        this.sendSet(r, i, rv, -1);
      }
    } else if (-resp.err !== ENOSPC) {
      this.stats.errors++;
    }
    if (fs.flags[i] & FL_SHORT && r >= 0) fs.flags[r] |= FL_SHORT;
    if (r < 0) {
      // No reverse flow (its bucket and the overflow are full): the forward becomes a short flow that
      // drops (SHORT_NO_REVERSE_FLOW).
      if ((fs.flags[i] & FL_SHORT) === 0) this.stats.short++;
      fs.flags[i] |= FL_SHORT;
      this.stats.created++;
      this.sendSet(i, -1, { action: VR_FLOW_ACTION_DROP, flags: 0, dvrf: 0, dropReason: VR_FLOW_DR_NO_REVERSE_FLOW, srcNh: plan.srcNh }, -1);
      return;
    }
    fs.rev[i] = r;
    fs.rev[r] = i;
    this.stats.created += 2;
    this.sendSet(i, r, plan, resp.err === 0 ? r : -1);
  }

  /**
   * FLOW_SET on a known index with its stored key. If it fails (EBADF/EINVAL: the entry changed under
   * the agent) the flow is forgotten, and `dropOnFail`, a reverse added for it, is deleted.
   */
  private sendSet(i: number, rindex: number, d: SetPlan, dropOnFail: number): void {
    const fs = this.fs;
    const q = this.req;
    q.index = i;
    q.flags = VR_FLOW_FLAG_ACTIVE | (rindex >= 0 ? VR_FLOW_FLAG_RFLOW_VALID : 0) | d.flags;
    q.rindex = rindex;
    q.action = d.action;
    q.dropReason = d.dropReason;
    q.k0 = fs.key[i * 4];
    q.k1 = fs.key[i * 4 + 1];
    q.k2 = fs.key[i * 4 + 2];
    q.k3 = fs.key[i * 4 + 3];
    q.proto = fs.kproto[i];
    q.vrf = feVrf(this.t, i);
    q.dvrf = d.dvrf;
    // RPF nexthop: the interface the flow's packets come from.
    q.srcNhIndex = d.srcNh;
    this.ch.flowSet(q, (resp) => {
      if (resp.err === 0) {
        if (fs.state[i] === ST_PENDING) fs.state[i] = ST_ACTIVE;
        if (fs.state[i] !== ST_NONE && fs.keyEqualsKernel(i)) fs.copyEntry(i);
        return;
      }
      this.stats.errors++;
      this.untrack(i);
      if (dropOnFail >= 0 && fs.state[dropOnFail] !== ST_NONE) this.deleteOne(dropOnFail);
    });
  }

  /**
   * Entry `r`, trapped on its own and being set up as a forward flow, turns out to be the reverse of a
   * pair (both directions trapped before the agent answered): it takes the pair's plan as its reverse.
   */
  private adoptAsReverse(r: number, plan: FlowPlan): void {
    const fs = this.fs;
    fs.flags[r] = plan.log ? FL_LOG : 0;
    fs.inVif[r] = plan.rev?.vif ?? -1;
    fs.srcVn[r] = plan.dstVn;
    fs.dstVn[r] = plan.srcVn;
    fs.ruleOf[r] = fs.ruleIndex(plan.rule);
  }

  /** Start tracking flow `i`; a reverse flow (`reverse`) has the plan's networks the other way round. */
  private track(i: number, k0: number, k1: number, k2: number, k3: number, proto: number, now: number, plan?: FlowPlan, reverse = false): void {
    const fs = this.fs;
    if (fs.state[i] === ST_NONE) {
      fs.gen[i]++;
      this.aging.join(i, this.aging.collectorFor(proto, keySport(k0), keyDport(k0)));
      const a = plan?.vms[0] ?? -1;
      const b = plan?.vms[1] ?? -1;
      fs.vmA[i] = a;
      fs.vmB[i] = b;
      if (a >= 0) this.vmFlows[a] = (this.vmFlows[a] ?? 0) + 1;
      if (b >= 0) this.vmFlows[b] = (this.vmFlows[b] ?? 0) + 1;
      fillUuid4(fs.uuid, i * 16, this.random);
    }
    fs.key[i * 4] = k0;
    fs.key[i * 4 + 1] = k1;
    fs.key[i * 4 + 2] = k2;
    fs.key[i * 4 + 3] = k3;
    fs.kproto[i] = proto;
    fs.flags[i] = plan?.log ? FL_LOG : 0;
    fs.rev[i] = -1;
    fs.lastBytes[i] = 0;
    fs.lastPackets[i] = 0;
    fs.lastModified[i] = now;
    fs.setupTime[i] = now;
    fs.entryAction[i] = VR_FLOW_ACTION_HOLD;
    fs.entryDropReason[i] = 0;
    fs.entryTcpFlags[i] = 0;
    if (reverse) fs.inVif[i] = plan?.rev?.vif ?? -1;
    fs.srcVn[i] = (reverse ? plan?.dstVn : plan?.srcVn) ?? -1;
    fs.dstVn[i] = (reverse ? plan?.srcVn : plan?.dstVn) ?? -1;
    fs.ruleOf[i] = fs.ruleIndex(plan?.rule ?? '');
  }


  private untrack(i: number): void {
    const fs = this.fs;
    if (fs.state[i] === ST_NONE) return;
    this.aging.leave(i);
    fs.state[i] = ST_NONE;
    const r = fs.rev[i];
    if (r >= 0 && fs.rev[r] === i) fs.rev[r] = -1;
    fs.rev[i] = -1;
    fs.flags[i] = 0;
    if (fs.vmA[i] >= 0) this.vmFlows[fs.vmA[i]]--;
    if (fs.vmB[i] >= 0) this.vmFlows[fs.vmB[i]]--;
    fs.vmA[i] = -1;
    fs.vmB[i] = -1;
  }

  /**
   * The datapath evicted flow `i`: forget it without a delete; its reverse goes too, without a delete
   * when the datapath evicted it as well, else deleted as usual. Both final samples are taken before
   * either flow is forgotten, so each still has its reverse (reverse_uuid, the NAT source, the egress
   * copy of a local flow; reference §2.3). `finalBytes`/`finalPackets`: `i`'s last counters when the
   * caller has them (a FLOW_MISS trap's), else (−1) they are read from the entry.
   */
  private forgetEvicted(i: number, finalBytes = -1, finalPackets = -1): void {
    const fs = this.fs;
    const r = fs.rev[i];
    const withRev = r >= 0 && fs.state[r] !== ST_NONE;
    const revEvicted = withRev && ((feFlags(this.t, r) & (VR_FLOW_FLAG_EVICTED | VR_FLOW_FLAG_EVICT_CANDIDATE)) !== 0 || !fs.keyEqualsKernel(r));
    if (this.sampler) {
      const now = this.clock();
      if (fs.state[i] === ST_ACTIVE) this.finalSample(i, now, finalBytes, finalPackets);
      if (withRev && fs.state[r] === ST_ACTIVE) this.finalSample(r, now);
    }
    this.untrack(i);
    this.stats.evicted++;
    if (!withRev) return;
    if (revEvicted) {
      this.untrack(r);
      this.stats.evicted++;
    } else {
      this.deleteOne(r, false);
    }
  }

  /** Send the delete of one flow (FLOW_SET without ACTIVE) and forget it; `sample`: take its final sample first. */
  private deleteOne(i: number, sample = true): void {
    const fs = this.fs;
    const q = this.req;
    q.index = i;
    q.flags = 0;
    q.rindex = -1;
    q.action = VR_FLOW_ACTION_DROP;
    q.dropReason = 0;
    q.k0 = fs.key[i * 4];
    q.k1 = fs.key[i * 4 + 1];
    q.k2 = fs.key[i * 4 + 2];
    q.k3 = fs.key[i * 4 + 3];
    q.proto = fs.kproto[i];
    q.vrf = 0;
    q.dvrf = 0;
    if (sample && this.sampler && fs.state[i] === ST_ACTIVE) this.finalSample(i, this.clock());
    this.untrack(i);
    this.stats.deleted++;
    this.ch.flowSet(q, () => undefined);
  }

  /**
   * Delete a flow and its reverse, both final samples first (while each still has the other: §2.3).
   * @returns how many flows went.
   */
  private deletePair(i: number): number {
    const fs = this.fs;
    const r = fs.rev[i];
    const withRev = r >= 0 && fs.state[r] !== ST_NONE;
    if (this.sampler) {
      const now = this.clock();
      if (fs.state[i] === ST_ACTIVE) this.finalSample(i, now);
      if (withRev && fs.state[r] === ST_ACTIVE) this.finalSample(r, now);
    }
    this.deleteOne(i, false);
    if (!withRev) return 1;
    this.deleteOne(r, false);
    return 2;
  }

  // -------------------------------------------------------------------------------------------------
  // Stats samples (the counters: flow-counters.ts)

  /**
   * Read a flow's counters (check, copy, check), note activity and export a sample of the change (or,
   * for a flow never exported, a zero sample): the aging visit's read (AgingOps.refresh).
   * @returns whether the bytes changed.
   */
  private refresh(i: number, now: number): boolean {
    const fs = this.fs;
    const out = this.counters.out;
    if (!this.counters.read(i)) return false;
    const db = out.bytes - fs.lastBytes[i];
    const dp = out.packets - fs.lastPackets[i];
    if (db === 0) {
      if (this.sampler && (fs.flags[i] & FL_EXPORTED) === 0 && this.sampler.sample(i, 0, 0, false, now)) fs.flags[i] |= FL_EXPORTED;
      return false;
    }
    fs.lastBytes[i] = out.bytes;
    fs.lastPackets[i] = out.packets;
    fs.lastModified[i] = now;
    if (this.sampler && this.sampler.sample(i, db, dp, false, now)) fs.flags[i] |= FL_EXPORTED;
    return true;
  }

  /**
   * The final sample of a flow being deleted: its last counters (`finalBytes`/`finalPackets` when the
   * caller has them, ≥ 0; else the entry's while it still holds the flow), or a zero delta that only
   * carries the teardown time when they cannot be had (§1.1 item 3).
   */
  private finalSample(i: number, now: number, finalBytes = -1, finalPackets = -1): void {
    if (!this.sampler) return;
    const fs = this.fs;
    const out = this.counters.out;
    let db = 0;
    let dp = 0;
    let got = true;
    if (finalBytes >= 0) this.counters.extend(i, finalBytes, finalPackets);
    else got = this.counters.read(i);
    if (got) {
      db = out.bytes - fs.lastBytes[i];
      dp = out.packets - fs.lastPackets[i];
      fs.lastBytes[i] = out.bytes;
      fs.lastPackets[i] = out.packets;
    }
    this.sampler.sample(i, db, dp, true, now);
  }

  // -------------------------------------------------------------------------------------------------
  // Configuration changes

  /**
   * Plan every established flow again (after a policy change, as the agent re-evaluates flows on an ACL
   * update) and re-program the pairs whose action changed. The aging table and the key stay.
   * @returns how many pairs changed.
   */
  reevaluate(): number {
    const fs = this.fs;
    let changed = 0;
    const t = this.t;
    // The forward flows first: programming a pair can untrack entries (a failed FLOW_SET), which would
    // reorder the member lists under the walk.
    const fwd: number[] = [];
    for (const c of this.aging.collectors) {
      for (let k = 0; k < c.flows; k++) {
        const i = c.members[k];
        if (fs.state[i] === ST_ACTIVE && (fs.flags[i] & (FL_FWD | FL_SHORT)) === FL_FWD) fwd.push(i);
      }
    }
    for (const i of fwd) {
      if (fs.state[i] !== ST_ACTIVE || !fs.keyEqualsKernel(i)) continue;
      const plan = this.env.plan(fs.inVif[i], fs.key[i * 4], fs.key[i * 4 + 1], fs.key[i * 4 + 2], fs.key[i * 4 + 3], fs.kproto[i], feVrf(t, i));
      const r = fs.rev[i];
      const flagMask = VR_FLOW_FLAG_SNAT | VR_FLOW_FLAG_DNAT | VR_FLOW_FLAG_SPAT | VR_FLOW_FLAG_DPAT | VR_FLOW_FLAG_VRFT;
      const same = plan.action === feAction(t, i) && plan.dropReason === (plan.action === VR_FLOW_ACTION_DROP ? feDropReason(t, i) : plan.dropReason) &&
        (feFlags(t, i) & flagMask) === plan.flags && (plan.flags & VR_FLOW_FLAG_VRFT ? feDvrf(t, i) === plan.dvrf : true);
      fs.ruleOf[i] = fs.ruleIndex(plan.rule);
      fs.flags[i] = (fs.flags[i] & ~FL_LOG) | (plan.log ? FL_LOG : 0);
      if (r >= 0 && fs.state[r] === ST_ACTIVE) {
        fs.ruleOf[r] = fs.ruleOf[i];
        fs.flags[r] = (fs.flags[r] & ~FL_LOG) | (plan.log ? FL_LOG : 0);
      }
      if (same && !plan.short) continue;
      changed++;
      if (plan.short || plan.rev === null) {
        // No longer routable (routes withdrawn): both directions drop and go on their next aging visit.
        const d: SetPlan = { action: VR_FLOW_ACTION_DROP, flags: 0, dvrf: 0, dropReason: plan.dropReason, srcNh: plan.srcNh };
        fs.flags[i] |= FL_SHORT;
        this.stats.short++;
        this.sendSet(i, r, d, -1);
        if (r >= 0 && fs.state[r] === ST_ACTIVE) {
          fs.flags[r] |= FL_SHORT;
          this.sendSet(r, i, { ...d, srcNh: feSrcNh(t, r) }, -1);
        }
        continue;
      }
      this.sendSet(i, r, plan, -1);
      if (r >= 0 && fs.state[r] === ST_ACTIVE) this.sendSet(r, i, plan.rev, -1);
    }
    return changed;
  }

  // -------------------------------------------------------------------------------------------------
  // Lost traps

  /** The audit found entry `i` still HOLD and unknown: it becomes a short flow (DROP, reason Audit) that the next aging visit deletes. */
  private lost(i: number, now: number): void {
    const t = this.t;
    this.track(i, feKeyWord(t, i, 0), feKeyWord(t, i, 1), feKeyWord(t, i, 2), feKeyWord(t, i, 3), feProto(t, i), now);
    this.fs.state[i] = ST_PENDING;
    this.fs.flags[i] |= FL_SHORT;
    this.stats.short++;
    this.stats.audited++;
    this.sendSet(i, -1, { action: VR_FLOW_ACTION_DROP, flags: 0, dvrf: 0, dropReason: VR_FLOW_DR_AUDIT_ENTRY, srcNh: 0 }, -1);
  }
}
