/**
 * The agent's flow table: flow-miss traps in, FLOW_SET requests out, the audit of lost traps and the
 * aging scan (the vRouter agent's FlowTable, KSync flow audit and FlowStatsCollector, R2.20/R2.22
 * src/vnsw/agent/pkt, vrouter/ksync and vrouter/flow_stats; reference vrouter-agent.md §3 and
 * vrouter-datapath.md §4.5, §4.8, §5.4, §8.4).
 *
 * State is kept per flow index in typed arrays (the kernel index is the agent's flow handle), so a
 * full 512K table costs no JavaScript object per flow. Each aging table (collector) keeps the indices
 * of its flows in a dense list that its scan walks. The kernel table is read through a read-only view
 * (the /dev/flow mmap) and changed only through the DpChannel.
 *
 * A flow miss: read the trapped entry's key, decide the action (FlowEnv.decide), add the reverse flow
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
  IPPROTO_ICMP,
  IPPROTO_TCP,
  VR_FLOW_ACTION_DROP,
  VR_FLOW_ACTION_FORWARD,
  VR_FLOW_ACTION_HOLD,
  VR_FLOW_DR_AUDIT_ENTRY,
  VR_FLOW_DR_FLOW_LIMIT,
  VR_FLOW_DR_NO_REVERSE_FLOW,
  VR_FLOW_FLAG_ACTIVE,
  VR_FLOW_FLAG_DELETE_MARKED,
  VR_FLOW_FLAG_DNAT,
  VR_FLOW_FLAG_DPAT,
  VR_FLOW_FLAG_EVICTED,
  VR_FLOW_FLAG_EVICT_CANDIDATE,
  VR_FLOW_FLAG_RFLOW_VALID,
  VR_FLOW_FLAG_SNAT,
  VR_FLOW_FLAG_SPAT,
  VR_FLOW_FLAG_VRFT,
  VR_FLOW_KEY_LEN,
  VR_FLOW_TCP_DEAD,
  VR_FLOW_TCP_ESTABLISHED,
  VR_FLOW_TCP_ESTABLISHED_R,
  VR_FLOW_TCP_SYN,
  VR_FLOW_TCP_SYN_R,
} from '../dp/defs';
import { EEXIST, ENOSPC, FlowReq, FlowResp, flowReqNew } from '../dp/flow';
import {
  FE_BYTES,
  FE_BYTES_OFLOW,
  FE_PACKETS,
  FE_PACKETS_OFLOW,
  FE_SIZE,
  FlowTable,
  feAction,
  feDropReason,
  feDvrf,
  feFlags,
  feKeyLen,
  feKeyWord,
  feProto,
  feSrcNh,
  feTcpFlags,
  feVrf,
  flowFind,
} from '../dp/flow-table';
import { rd16, rd32 } from '../dp/pkt';
import { UserError } from '../errors';
import { fillUuid4, uuidString } from '../lib/uuid';
import { AGING_INITIAL_COUNT_PER_PASS, AGING_DEFAULT_INTERVAL_MS, FLOW_TCP_SYN_AGE_TIME_MS, agingMultiplier, agingPace } from './aging';
import type { AgingTimeout } from './contrail-config';
import type { DpChannel } from './dp-channel';

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

export interface FlowMgrConfig {
  /** Age time of the default aging table (flow_cache_timeout; 0 → 180 s), ms. */
  ageMs: number;
  /** tcp_flow_scan_interval: the TCP table's sweep time, ms. */
  tcpScanMs: number;
  /** flow_aging_timeout_list: (protocol, port, timeout s) aging tables. */
  agingTimeouts?: AgingTimeout[];
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
          k0: proto === IPPROTO_ICMP ? k0 >>> 0 : ((k0 >>> 16) | (k0 << 16)) >>> 0, k1: k2 >>> 0, k2: k1 >>> 0, k3: rk3, proto, vrf,
          action: VR_FLOW_ACTION_FORWARD, flags: 0, dvrf: 0, dropReason: 0, srcNh: rk3 & 0xffff,
        },
        short: false, srcVn: -1, dstVn: -1, rule: '00000000-0000-0000-0000-000000000001', log: false, vms: [],
      };
    },
  };
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

const ST_NONE = 0;
const ST_PENDING = 1; // trap taken, FLOW_SET in flight
const ST_ACTIVE = 2;

const FL_SHORT = 0x1;
const FL_LOG = 0x2;
const FL_FWD = 0x4; // the direction that trapped (the plan's forward)
const FL_EXPORTED = 0x8; // a record of this flow went out

/**
 * Where a flow's stats samples go (flow export, flow-export.ts): deltas since the last sample, and the
 * final one at deletion. @returns whether the sample was exported.
 */
export interface FlowSampler {
  sample(i: number, diffBytes: number, diffPackets: number, teardown: boolean, now: number): boolean;
}

/** Kernel counter widths (§1.8): the agent extends them to 64 bits across wraps. */
const BYTES_WRAP = 2 ** 48;
const PACKETS_WRAP = 2 ** 40;
/**
 * Reads of a counter pair the datapath is changing (its overflow word moved, or its low word wrapped
 * and the carry into the overflow word is not stored yet) that are retried before the value is taken.
 */
const COUNTER_READ_RETRIES = 64;

/** KSync flow audit (flowtable_ksync): every 500 ms, 1024 entries; a HOLD entry unknown for 2 s is lost. */
export const AUDIT_INTERVAL_MS = 500;
/** Aging tables the agent holds at once (ids fit the per-flow Uint16Array). */
export const MAX_AGING_TABLES = 4096;
export const AUDIT_ENTRIES_PER_RUN = 1024;
export const AUDIT_TIMEOUT_MS = 2000;

/** Counters of the agent's flow module (a subset of FlowStatsResp). */
export interface FlowMgrStats {
  created: number;
  aged: number;
  evicted: number;
  deleted: number;
  short: number;
  audited: number;
  /** flow_drop_due_to_max_limit */
  limited: number;
  errors: number;
  /** Flows the aging scan looked at (each visit of a live flow). */
  scanned: number;
  /**
   * Counter reads below the agent's copy that cannot be a 48-bit (40-bit) wrap: the entry's counters
   * restarted under the flow (its slot was reused). Taken as no change: delta 0, the copy kept.
   */
  counterResets: number;
}

const collectorKey = (proto: number, port: number): number => (proto << 16) | port;

export class FlowMgr {
  readonly state: Uint8Array;
  readonly flags: Uint8Array;
  readonly rev: Int32Array;
  readonly key: Uint32Array; // 4 words per index
  readonly kproto: Uint8Array;
  /** The agent's copies of the kernel counters, extended to 64 bits. */
  readonly lastBytes: Float64Array;
  readonly lastPackets: Float64Array;
  /** A generation per index, bumped for each new flow there (so that per-flow state elsewhere can tell). */
  readonly gen: Uint32Array;
  /** Flow export, when configured. */
  sampler: FlowSampler | undefined;
  readonly lastModified: Float64Array;
  readonly setupTime: Float64Array;
  /**
   * What the agent last read of the kernel entry while it held this flow (fe_action, fe_drop_reason,
   * fe_tcp_flags): the datapath clears them when it evicts the flow, and a reused slot holds another
   * flow's, so a flow's final record is built from these copies.
   */
  readonly entryAction: Uint8Array;
  readonly entryDropReason: Uint8Array;
  readonly entryTcpFlags: Uint16Array;
  /** The collector (id) of each tracked flow, and its position in that collector's member list. */
  readonly coll: Uint16Array;
  private readonly pos: Int32Array;
  /** Flow metadata: networks (the environment's indices), the deciding rule, the local VMs, a UUID. */
  readonly srcVn: Int16Array;
  readonly dstVn: Int16Array;
  readonly ruleOf: Int32Array;
  readonly rules: string[] = [];
  private readonly ruleIdx = new Map<string, number>();
  readonly vmA: Int16Array;
  readonly vmB: Int16Array;
  /** The vif a forward flow trapped on (to plan it again on a configuration change). */
  readonly inVif: Int16Array;
  readonly uuid: Uint8Array; // 16 bytes per index
  private readonly vmFlows: number[] = [];
  /** When the audit's scan found an unknown HOLD entry (0 = not on the list). */
  private readonly auditSeen: Float64Array;
  /** The audit's list of unknown HOLD entries, oldest first. */
  private auditList: number[] = [];
  private auditCursor = 0;
  private auditNextMs: number;
  /** The aging tables that exist (configured, or removed and still holding flows). */
  readonly collectors: Collector[] = [];
  private readonly byKey = new Map<number, Collector>();
  /** Collectors by id; ids of freed tables are reused. */
  private readonly byId: (Collector | undefined)[] = [];
  private readonly freeIds: number[] = [];
  /** ("all", 0) and ("tcp", 0) entries: they change tables that cannot be removed, until restart (§4.4). */
  private readonly stickyAgeMs = new Map<number, number>();
  private maxVmFlows: number;
  readonly stats: FlowMgrStats = { created: 0, aged: 0, evicted: 0, deleted: 0, short: 0, audited: 0, limited: 0, errors: 0, scanned: 0, counterResets: 0 };
  private readonly req: FlowReq = flowReqNew();
  private readonly revReq: FlowReq = flowReqNew();
  private readonly random: () => number;

  constructor(
    readonly t: FlowTable,
    private readonly ch: DpChannel,
    private readonly env: FlowEnv,
    cfg: FlowMgrConfig,
    private readonly clock: () => number,
    random?: () => number,
  ) {
    const n = t.total;
    this.state = new Uint8Array(n);
    this.flags = new Uint8Array(n);
    this.rev = new Int32Array(n).fill(-1);
    this.key = new Uint32Array(n * 4);
    this.kproto = new Uint8Array(n);
    this.lastBytes = new Float64Array(n);
    this.lastPackets = new Float64Array(n);
    this.gen = new Uint32Array(n);
    this.lastModified = new Float64Array(n);
    this.setupTime = new Float64Array(n);
    this.entryAction = new Uint8Array(n);
    this.entryDropReason = new Uint8Array(n);
    this.entryTcpFlags = new Uint16Array(n);
    this.coll = new Uint16Array(n);
    this.pos = new Int32Array(n).fill(-1);
    this.srcVn = new Int16Array(n);
    this.dstVn = new Int16Array(n);
    this.ruleOf = new Int32Array(n);
    this.inVif = new Int16Array(n);
    this.vmA = new Int16Array(n).fill(-1);
    this.vmB = new Int16Array(n).fill(-1);
    this.uuid = new Uint8Array(n * 16);
    this.auditSeen = new Float64Array(n);
    this.random = random ?? ((): number => (Math.random() * 0x100000000) >>> 0);
    this.maxVmFlows = cfg.maxVmFlows ?? Infinity;
    const now = clock();
    this.auditNextMs = now + AUDIT_INTERVAL_MS;
    this.configureAging(cfg, now);
  }

  /**
   * Apply an aging configuration (start, and reload): the default table gets `ageMs`, the TCP table
   * its age and `tcpScanMs`, and one table per flow_aging_timeout_list entry. ("all", 0) and ("tcp", 0)
   * change the default and the TCP table, which cannot be removed: such an override lasts until restart
   * (§4.4). Tables no longer configured are marked deleted: they keep aging their flows and are freed
   * when empty. Flows stay in the table they joined (the table is chosen once, at creation).
   */
  configureAging(cfg: FlowMgrConfig, now = this.clock()): void {
    this.maxVmFlows = cfg.maxVmFlows ?? Infinity;
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
      throw new UserError(`flow_aging_timeout_list: ${want.size} aging tables, with ${this.collectors.length - this.byKeyLive()} removed ones still aging flows: more than the ${MAX_AGING_TABLES} the emulator holds; use fewer entries`);
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

  private byKeyLive(): number {
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

  /** Flows the agent holds (both directions count). */
  get flowCount(): number {
    let n = 0;
    for (const c of this.collectors) n += c.flows;
    return n;
  }

  private join(i: number, c: Collector): void {
    if (c.flows === c.members.length) {
      const m = new Int32Array(c.members.length * 2);
      m.set(c.members);
      c.members = m;
    }
    this.coll[i] = c.id;
    this.pos[i] = c.flows;
    c.members[c.flows++] = i;
  }

  private leave(i: number): void {
    const c = this.byId[this.coll[i]] as Collector;
    const p = this.pos[i];
    const last = c.members[--c.flows];
    c.members[p] = last;
    this.pos[last] = p;
    this.pos[i] = -1;
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

  /** The old counters of the trap being handled (see onTrap). */
  private trapBytes = 0;
  private trapPackets = 0;

  private keyEqualsKernel(i: number): boolean {
    const t = this.t;
    return (
      feKeyLen(t, i) === VR_FLOW_KEY_LEN &&
      feKeyWord(t, i, 0) === this.key[i * 4] &&
      feKeyWord(t, i, 1) === this.key[i * 4 + 1] &&
      feKeyWord(t, i, 2) === this.key[i * 4 + 2] &&
      feKeyWord(t, i, 3) === this.key[i * 4 + 3] &&
      feProto(t, i) === this.kproto[i]
    );
  }

  /** Whether kernel entry `i` is a live HOLD entry (waiting for the agent). */
  private isHold(i: number): boolean {
    const f = feFlags(this.t, i);
    return (f & (VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_DELETE_MARKED)) === VR_FLOW_FLAG_ACTIVE && feAction(this.t, i) === VR_FLOW_ACTION_HOLD;
  }

  private overLimit(vms: number[]): boolean {
    for (const vm of vms) if ((this.vmFlows[vm] ?? 0) + 2 > this.maxVmFlows) return true;
    return false;
  }

  private flowMiss(i: number, cmd: number, vif: number): void {
    // A trap the agent already answered (the entry left HOLD), or one for a flow being set up.
    if (!this.isHold(i) || this.state[i] === ST_PENDING) return;
    if (this.state[i] === ST_ACTIVE) {
      if (cmd === AGENT_TRAP_FLOW_ACTION_HOLD && this.keyEqualsKernel(i)) return;
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
    this.state[i] = ST_PENDING;
    this.flags[i] |= FL_FWD;
    this.inVif[i] = vif;
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
      this.flags[i] |= FL_SHORT;
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
    const rv = plan.rev as NonNullable<FlowPlan['rev']>;
    // Forgotten meanwhile, or already paired by the other direction's reply (both trapped at once):
    // an entry added for nothing is deleted again.
    if (this.state[i] !== ST_PENDING || this.rev[i] >= 0) {
      if (resp.err === 0) {
        // An index the agent still holds was evicted for this add: forget that flow first.
        if (this.state[resp.index] !== ST_NONE) this.forgetEvicted(resp.index);
        this.track(resp.index, rv.k0, rv.k1, rv.k2, rv.k3, rv.proto, now, plan, true);
        this.state[resp.index] = ST_ACTIVE;
        this.deleteOne(resp.index, false); // never a flow of its own: no record
      }
      return;
    }
    let r = -1;
    if (resp.err === 0) {
      r = resp.index;
      // An add answered with an index the agent still holds: the datapath evicted that flow.
      if (this.state[r] !== ST_NONE) this.forgetEvicted(r);
      this.track(r, rv.k0, rv.k1, rv.k2, rv.k3, rv.proto, now, plan, true);
      this.state[r] = ST_ACTIVE;
      this.copyEntry(r);
    } else if (-resp.err === EEXIST) {
      // The reverse key was trapped on its own: adopt that entry and set both directions once.
      r = flowFind(this.t, rv.k0, rv.k1, rv.k2, rv.k3, rv.proto);
      if (r >= 0) {
        if (this.state[r] === ST_ACTIVE) this.forgetEvicted(r);
        if (this.state[r] === ST_NONE) this.track(r, rv.k0, rv.k1, rv.k2, rv.k3, rv.proto, now, plan, true);
        else this.adoptAsReverse(r, plan);
        this.state[r] = ST_PENDING;
        this.rev[r] = i;
        this.rev[i] = r;
        this.sendSet(r, i, rv, -1);
      }
    } else if (-resp.err !== ENOSPC) {
      this.stats.errors++;
    }
    if (this.flags[i] & FL_SHORT && r >= 0) this.flags[r] |= FL_SHORT;
    if (r < 0) {
      // No reverse flow (its bucket and the overflow are full): the forward becomes a short flow that
      // drops (SHORT_NO_REVERSE_FLOW).
      if ((this.flags[i] & FL_SHORT) === 0) this.stats.short++;
      this.flags[i] |= FL_SHORT;
      this.stats.created++;
      this.sendSet(i, -1, { action: VR_FLOW_ACTION_DROP, flags: 0, dvrf: 0, dropReason: VR_FLOW_DR_NO_REVERSE_FLOW, srcNh: plan.srcNh }, -1);
      return;
    }
    this.rev[i] = r;
    this.rev[r] = i;
    this.stats.created += 2;
    this.sendSet(i, r, plan, resp.err === 0 ? r : -1);
  }

  /**
   * FLOW_SET on a known index with its stored key. If it fails (EBADF/EINVAL: the entry changed under
   * the agent) the flow is forgotten, and `dropOnFail`, a reverse added for it, is deleted.
   */
  private sendSet(i: number, rindex: number, d: SetPlan, dropOnFail: number): void {
    const q = this.req;
    q.index = i;
    q.flags = VR_FLOW_FLAG_ACTIVE | (rindex >= 0 ? VR_FLOW_FLAG_RFLOW_VALID : 0) | d.flags;
    q.rindex = rindex;
    q.action = d.action;
    q.dropReason = d.dropReason;
    q.k0 = this.key[i * 4];
    q.k1 = this.key[i * 4 + 1];
    q.k2 = this.key[i * 4 + 2];
    q.k3 = this.key[i * 4 + 3];
    q.proto = this.kproto[i];
    q.vrf = feVrf(this.t, i);
    q.dvrf = d.dvrf;
    // RPF nexthop: the interface the flow's packets come from.
    q.srcNhIndex = d.srcNh;
    this.ch.flowSet(q, (resp) => {
      if (resp.err === 0) {
        if (this.state[i] === ST_PENDING) this.state[i] = ST_ACTIVE;
        if (this.state[i] !== ST_NONE && this.keyEqualsKernel(i)) this.copyEntry(i);
        return;
      }
      this.stats.errors++;
      this.untrack(i);
      if (dropOnFail >= 0 && this.state[dropOnFail] !== ST_NONE) this.deleteOne(dropOnFail);
    });
  }

  /**
   * Entry `r`, trapped on its own and being set up as a forward flow, turns out to be the reverse of a
   * pair (both directions trapped before the agent answered): it takes the pair's plan as its reverse.
   */
  private adoptAsReverse(r: number, plan: FlowPlan): void {
    this.flags[r] = plan.log ? FL_LOG : 0;
    this.inVif[r] = plan.rev?.vif ?? -1;
    this.srcVn[r] = plan.dstVn;
    this.dstVn[r] = plan.srcVn;
    this.ruleOf[r] = this.ruleIndex(plan.rule);
  }

  /** Start tracking flow `i`; a reverse flow (`reverse`) has the plan's networks the other way round. */
  private track(i: number, k0: number, k1: number, k2: number, k3: number, proto: number, now: number, plan?: FlowPlan, reverse = false): void {
    if (this.state[i] === ST_NONE) {
      this.gen[i]++;
      const sport = ((k0 & 0xff) << 8) | ((k0 >>> 8) & 0xff);
      const dport = (((k0 >>> 16) & 0xff) << 8) | ((k0 >>> 24) & 0xff);
      this.join(i, this.collectorFor(proto, sport, dport));
      const a = plan?.vms[0] ?? -1;
      const b = plan?.vms[1] ?? -1;
      this.vmA[i] = a;
      this.vmB[i] = b;
      if (a >= 0) this.vmFlows[a] = (this.vmFlows[a] ?? 0) + 1;
      if (b >= 0) this.vmFlows[b] = (this.vmFlows[b] ?? 0) + 1;
      fillUuid4(this.uuid, i * 16, this.random);
    }
    this.key[i * 4] = k0;
    this.key[i * 4 + 1] = k1;
    this.key[i * 4 + 2] = k2;
    this.key[i * 4 + 3] = k3;
    this.kproto[i] = proto;
    this.flags[i] = plan?.log ? FL_LOG : 0;
    this.rev[i] = -1;
    this.lastBytes[i] = 0;
    this.lastPackets[i] = 0;
    this.lastModified[i] = now;
    this.setupTime[i] = now;
    this.entryAction[i] = VR_FLOW_ACTION_HOLD;
    this.entryDropReason[i] = 0;
    this.entryTcpFlags[i] = 0;
    if (reverse) this.inVif[i] = plan?.rev?.vif ?? -1;
    this.srcVn[i] = (reverse ? plan?.dstVn : plan?.srcVn) ?? -1;
    this.dstVn[i] = (reverse ? plan?.srcVn : plan?.dstVn) ?? -1;
    this.ruleOf[i] = this.ruleIndex(plan?.rule ?? '');
  }

  private ruleIndex(uuid: string): number {
    let k = this.ruleIdx.get(uuid);
    if (k === undefined) {
      k = this.rules.length;
      this.rules.push(uuid);
      this.ruleIdx.set(uuid, k);
    }
    return k;
  }

  private untrack(i: number): void {
    if (this.state[i] === ST_NONE) return;
    this.leave(i);
    this.state[i] = ST_NONE;
    const r = this.rev[i];
    if (r >= 0 && this.rev[r] === i) this.rev[r] = -1;
    this.rev[i] = -1;
    this.flags[i] = 0;
    if (this.vmA[i] >= 0) this.vmFlows[this.vmA[i]]--;
    if (this.vmB[i] >= 0) this.vmFlows[this.vmB[i]]--;
    this.vmA[i] = -1;
    this.vmB[i] = -1;
  }

  /**
   * The datapath evicted flow `i`: forget it without a delete; its reverse goes too, without a delete
   * when the datapath evicted it as well, else deleted as usual. Both final samples are taken before
   * either flow is forgotten, so each still has its reverse (reverse_uuid, the NAT source, the egress
   * copy of a local flow; reference §2.3). `finalBytes`/`finalPackets`: `i`'s last counters when the
   * caller has them (a FLOW_MISS trap's), else (−1) they are read from the entry.
   */
  private forgetEvicted(i: number, finalBytes = -1, finalPackets = -1): void {
    const r = this.rev[i];
    const withRev = r >= 0 && this.state[r] !== ST_NONE;
    const revEvicted = withRev && ((feFlags(this.t, r) & (VR_FLOW_FLAG_EVICTED | VR_FLOW_FLAG_EVICT_CANDIDATE)) !== 0 || !this.keyEqualsKernel(r));
    if (this.sampler) {
      const now = this.clock();
      if (this.state[i] === ST_ACTIVE) this.finalSample(i, now, finalBytes, finalPackets);
      if (withRev && this.state[r] === ST_ACTIVE) this.finalSample(r, now);
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
    const q = this.req;
    q.index = i;
    q.flags = 0;
    q.rindex = -1;
    q.action = VR_FLOW_ACTION_DROP;
    q.dropReason = 0;
    q.k0 = this.key[i * 4];
    q.k1 = this.key[i * 4 + 1];
    q.k2 = this.key[i * 4 + 2];
    q.k3 = this.key[i * 4 + 3];
    q.proto = this.kproto[i];
    q.vrf = 0;
    q.dvrf = 0;
    if (sample && this.sampler && this.state[i] === ST_ACTIVE) this.finalSample(i, this.clock());
    this.untrack(i);
    this.stats.deleted++;
    this.ch.flowSet(q, () => undefined);
  }

  /**
   * Delete a flow and its reverse, both final samples first (while each still has the other: §2.3).
   * @returns how many flows went.
   */
  private deletePair(i: number): number {
    const r = this.rev[i];
    const withRev = r >= 0 && this.state[r] !== ST_NONE;
    if (this.sampler) {
      const now = this.clock();
      if (this.state[i] === ST_ACTIVE) this.finalSample(i, now);
      if (withRev && this.state[r] === ST_ACTIVE) this.finalSample(r, now);
    }
    this.deleteOne(i, false);
    if (!withRev) return 1;
    this.deleteOne(r, false);
    return 2;
  }

  // -------------------------------------------------------------------------------------------------
  // Audit of lost traps

  /**
   * One audit run (KSync flow audit): the next AUDIT_ENTRIES_PER_RUN entries of the table are scanned
   * and HOLD entries the agent does not know go on a list; an entry of the list still HOLD and unknown
   * AUDIT_TIMEOUT_MS after the scan found it lost its trap: it becomes a short flow (DROP, reason Audit)
   * that the next aging visit deletes. (The scan covers the table in total / 1024 × 500 ms: up to
   * ~4.3 min on a 512K table before the 2 s start.)
   */
  audit(now: number): void {
    const t = this.t;
    for (let k = 0; k < AUDIT_ENTRIES_PER_RUN; k++) {
      const i = this.auditCursor;
      this.auditCursor = i + 1 === t.total ? 0 : i + 1;
      if (this.auditSeen[i] === 0 && this.state[i] === ST_NONE && this.isHold(i)) {
        this.auditSeen[i] = now;
        this.auditList.push(i);
      }
    }
    if (this.auditList.length === 0) return;
    const keep: number[] = [];
    for (const i of this.auditList) {
      if (this.state[i] !== ST_NONE || !this.isHold(i)) {
        this.auditSeen[i] = 0; // answered meanwhile, or gone
        continue;
      }
      if (now - this.auditSeen[i] < AUDIT_TIMEOUT_MS) {
        keep.push(i);
        continue;
      }
      this.auditSeen[i] = 0;
      this.track(i, feKeyWord(t, i, 0), feKeyWord(t, i, 1), feKeyWord(t, i, 2), feKeyWord(t, i, 3), feProto(t, i), now);
      this.state[i] = ST_PENDING;
      this.flags[i] |= FL_SHORT;
      this.stats.short++;
      this.stats.audited++;
      this.sendSet(i, -1, { action: VR_FLOW_ACTION_DROP, flags: 0, dvrf: 0, dropReason: VR_FLOW_DR_AUDIT_ENTRY, srcNh: 0 }, -1);
    }
    this.auditList = keep;
  }

  // -------------------------------------------------------------------------------------------------
  // Aging

  /** Whether the aging scan runs (`agent aging off` stops it: an emulator knob, to compare and inspect). */
  get agingOn(): boolean {
    return this.agingRuns;
  }

  setAging(on: boolean, now: number): void {
    if (on && !this.agingRuns) for (const c of this.collectors) c.nextRunMs = now; // no catch-up burst
    this.agingRuns = on;
  }

  private agingRuns = true;

  /** Run every audit and aging pass that is due at `now` (the agent's timers). */
  tick(now: number): void {
    while (this.auditNextMs <= now) {
      this.audit(this.auditNextMs);
      this.auditNextMs += AUDIT_INTERVAL_MS;
    }
    if (!this.agingRuns) return;
    for (const c of this.collectors) {
      while (c.nextRunMs <= now) {
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
    this.freeEmptyDeleted();
  }

  /** One run of a collector: visit up to countPerPass of its flows from the cursor, then re-pace. */
  runCollector(c: Collector, now: number): void {
    let visited = 0;
    let steps = c.flows;
    let k = c.cursor;
    while (visited < c.countPerPass && steps > 0 && c.flows > 0) {
      if (k >= c.flows) k = 0;
      const i = c.members[k];
      steps--;
      if (this.state[i] !== ST_ACTIVE) {
        k++;
        continue;
      }
      visited += this.visit(c, i, now);
      // A deleted flow's place now holds the list's last member: visit that place again.
      if (this.state[i] === ST_ACTIVE) k++;
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
    const f = feFlags(t, i);
    if ((f & VR_FLOW_FLAG_ACTIVE) === 0 || !this.keyEqualsKernel(i) || f & (VR_FLOW_FLAG_EVICTED | VR_FLOW_FLAG_EVICT_CANDIDATE)) {
      // Evicted by the datapath (or gone): forget it; its reverse goes with it.
      const r = this.rev[i];
      this.forgetEvicted(i);
      return r >= 0 ? 2 : 1;
    }
    if (this.flags[i] & FL_SHORT) return this.age(i);
    const tcp = feTcpFlags(t, i);
    if (this.kproto[i] === IPPROTO_TCP) {
      if (tcp & VR_FLOW_TCP_DEAD) return this.age(i);
      if (tcp & (VR_FLOW_TCP_SYN | VR_FLOW_TCP_SYN_R) && (tcp & (VR_FLOW_TCP_ESTABLISHED | VR_FLOW_TCP_ESTABLISHED_R)) === 0 &&
          now - this.setupTime[i] >= FLOW_TCP_SYN_AGE_TIME_MS) {
        return this.age(i);
      }
    }
    if (this.refresh(i, now)) return 1;
    if (now - this.lastModified[i] < c.ageMs) return 1;
    const r = this.rev[i];
    if (r >= 0 && this.state[r] !== ST_NONE) {
      if (this.refresh(r, now) || now - this.lastModified[r] < c.ageMs) return 1;
    }
    return this.age(i);
  }

  private age(i: number): number {
    const n = this.deletePair(i);
    this.stats.aged += n;
    return n;
  }

  /**
   * Read a flow's counters (check, copy, check), note activity and export a sample of the change (or,
   * for a flow never exported, a zero sample). @returns whether the bytes changed.
   */
  private refresh(i: number, now: number): boolean {
    if (!this.readCounters(i)) return false;
    const db = this.readBytes - this.lastBytes[i];
    const dp = this.readPackets - this.lastPackets[i];
    if (db === 0) {
      if (this.sampler && (this.flags[i] & FL_EXPORTED) === 0 && this.sampler.sample(i, 0, 0, false, now)) this.flags[i] |= FL_EXPORTED;
      return false;
    }
    this.lastBytes[i] = this.readBytes;
    this.lastPackets[i] = this.readPackets;
    this.lastModified[i] = now;
    if (this.sampler && this.sampler.sample(i, db, dp, false, now)) this.flags[i] |= FL_EXPORTED;
    return true;
  }

  private readBytes = 0;
  private readPackets = 0;

  /**
   * The kernel counters of flow `i` into readBytes/readPackets, extended past the agent's copy (see
   * extendCounters). The entry must hold the flow (its key, checked before and after the read), or be
   * the flow's slot as eviction left it (EVICTED, key cleared, counters kept for the next FLOW_MISS
   * trap). While the key matches, the entry's action, drop reason and TCP state are copied too.
   * @returns false when the entry is not this flow any more.
   */
  private readCounters(i: number): boolean {
    const keyed = this.keyEqualsKernel(i);
    if (!keyed && !this.evictedSlot(i)) return false;
    this.readKernelCounters(i);
    if (keyed ? !this.keyEqualsKernel(i) : !this.evictedSlot(i)) return false;
    if (keyed) this.copyEntry(i);
    this.extendCounters(i, this.kernelBytes, this.kernelPackets);
    return true;
  }

  /** Copy entry `i`'s action, drop reason and TCP state (entryAction…): the caller knows the entry holds flow `i`. */
  private copyEntry(i: number): void {
    const t = this.t;
    this.entryAction[i] = feAction(t, i);
    this.entryDropReason[i] = feDropReason(t, i);
    this.entryTcpFlags[i] = feTcpFlags(t, i);
  }

  /** Whether entry `i` is a slot the datapath evicted and nothing has taken since (vr_flow.c: key reset, stats kept). */
  private evictedSlot(i: number): boolean {
    return (feFlags(this.t, i) & VR_FLOW_FLAG_EVICTED) !== 0 && feKeyLen(this.t, i) === 0;
  }

  private kernelBytes = 0;
  private kernelPackets = 0;

  /**
   * Entry `i`'s 48-bit bytes and 40-bit packets into kernelBytes/kernelPackets, consistently while the
   * datapath thread counts: each counter is a low word and an overflow word, and the datapath stores
   * the wrapped low word before it increments the overflow (flow.ts flowStatsAdd). So the overflow is
   * read before and after the low word and the read is retried while it moved; and a low word below the
   * agent's copy under the same overflow (a wrap whose carry is not stored yet) is read again too.
   * After COUNTER_READ_RETRIES the last values are taken: extendCounters does not take a decrease that
   * is no wrap for one.
   */
  private readKernelCounters(i: number): void {
    const t = this.t;
    const bi = (i * FE_SIZE + FE_BYTES) >> 2;
    const boi = (i * FE_SIZE + FE_BYTES_OFLOW) >> 1;
    const pi = (i * FE_SIZE + FE_PACKETS) >> 2;
    const poi = i * FE_SIZE + FE_PACKETS_OFLOW;
    const lb = this.lastBytes[i] % BYTES_WRAP;
    const lp = this.lastPackets[i] % PACKETS_WRAP;
    let bo = 0;
    let bl = 0;
    let po = 0;
    let pl = 0;
    for (let k = 0; k <= COUNTER_READ_RETRIES; k++) {
      bo = Atomics.load(t.u16, boi);
      bl = Atomics.load(t.u32, bi);
      const bo2 = Atomics.load(t.u16, boi);
      po = Atomics.load(t.u8, poi);
      pl = Atomics.load(t.u32, pi);
      const po2 = Atomics.load(t.u8, poi);
      if (bo !== bo2 || po !== po2) continue;
      const carryPending = (bo === Math.floor(lb / 0x100000000) && bl < lb % 0x100000000) ||
        (po === Math.floor(lp / 0x100000000) && pl < lp % 0x100000000);
      if (!carryPending) break;
    }
    this.kernelBytes = bo * 0x100000000 + bl;
    this.kernelPackets = po * 0x100000000 + pl;
  }

  /**
   * The kernel's 48-bit bytes `b` and 40-bit packets `p` of flow `i`, extended to 64 bits past the
   * agent's copy, into readBytes/readPackets (§1.8). A value below the copy's low bits is a wrap only
   * when it can be one (the copy in the upper half of the range, the new value in the lower half);
   * any other decrease means the counters restarted under the flow (its slot was cleared for a new
   * flow): no change is taken (the copy stays, so a delta after that is still against it), and it is
   * counted in counterResets.
   */
  private extendCounters(i: number, b: number, p: number): void {
    const lb = this.lastBytes[i];
    const lp = this.lastPackets[i];
    const lowB = lb % BYTES_WRAP;
    const lowP = lp % PACKETS_WRAP;
    const wrapB = b < lowB;
    const wrapP = p < lowP;
    if ((wrapB && !(lowB >= BYTES_WRAP / 2 && b < BYTES_WRAP / 2)) || (wrapP && !(lowP >= PACKETS_WRAP / 2 && p < PACKETS_WRAP / 2))) {
      this.stats.counterResets++;
      this.readBytes = lb;
      this.readPackets = lp;
      return;
    }
    this.readBytes = lb - lowB + b + (wrapB ? BYTES_WRAP : 0);
    this.readPackets = lp - lowP + p + (wrapP ? PACKETS_WRAP : 0);
  }

  /**
   * The final sample of a flow being deleted: its last counters (`finalBytes`/`finalPackets` when the
   * caller has them, ≥ 0; else the entry's while it still holds the flow), or a zero delta that only
   * carries the teardown time when they cannot be had (§1.1 item 3).
   */
  private finalSample(i: number, now: number, finalBytes = -1, finalPackets = -1): void {
    if (!this.sampler) return;
    let db = 0;
    let dp = 0;
    let got = true;
    if (finalBytes >= 0) this.extendCounters(i, finalBytes, finalPackets);
    else got = this.readCounters(i);
    if (got) {
      db = this.readBytes - this.lastBytes[i];
      dp = this.readPackets - this.lastPackets[i];
      this.lastBytes[i] = this.readBytes;
      this.lastPackets[i] = this.readPackets;
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
    let changed = 0;
    const t = this.t;
    // The forward flows first: programming a pair can untrack entries (a failed FLOW_SET), which would
    // reorder the member lists under the walk.
    const fwd: number[] = [];
    for (const c of this.collectors) {
      for (let k = 0; k < c.flows; k++) {
        const i = c.members[k];
        if (this.state[i] === ST_ACTIVE && (this.flags[i] & (FL_FWD | FL_SHORT)) === FL_FWD) fwd.push(i);
      }
    }
    for (const i of fwd) {
      if (this.state[i] !== ST_ACTIVE || !this.keyEqualsKernel(i)) continue;
      const plan = this.env.plan(this.inVif[i], this.key[i * 4], this.key[i * 4 + 1], this.key[i * 4 + 2], this.key[i * 4 + 3], this.kproto[i], feVrf(t, i));
      const r = this.rev[i];
      const flagMask = VR_FLOW_FLAG_SNAT | VR_FLOW_FLAG_DNAT | VR_FLOW_FLAG_SPAT | VR_FLOW_FLAG_DPAT | VR_FLOW_FLAG_VRFT;
      const same = plan.action === feAction(t, i) && plan.dropReason === (plan.action === VR_FLOW_ACTION_DROP ? feDropReason(t, i) : plan.dropReason) &&
        (feFlags(t, i) & flagMask) === plan.flags && (plan.flags & VR_FLOW_FLAG_VRFT ? feDvrf(t, i) === plan.dvrf : true);
      this.ruleOf[i] = this.ruleIndex(plan.rule);
      this.flags[i] = (this.flags[i] & ~FL_LOG) | (plan.log ? FL_LOG : 0);
      if (r >= 0 && this.state[r] === ST_ACTIVE) {
        this.ruleOf[r] = this.ruleOf[i];
        this.flags[r] = (this.flags[r] & ~FL_LOG) | (plan.log ? FL_LOG : 0);
      }
      if (same && !plan.short) continue;
      changed++;
      if (plan.short || plan.rev === null) {
        // No longer routable (routes withdrawn): both directions drop and go on their next aging visit.
        const d: SetPlan = { action: VR_FLOW_ACTION_DROP, flags: 0, dvrf: 0, dropReason: plan.dropReason, srcNh: plan.srcNh };
        this.flags[i] |= FL_SHORT;
        this.stats.short++;
        this.sendSet(i, r, d, -1);
        if (r >= 0 && this.state[r] === ST_ACTIVE) {
          this.flags[r] |= FL_SHORT;
          this.sendSet(r, i, { ...d, srcNh: feSrcNh(t, r) }, -1);
        }
        continue;
      }
      this.sendSet(i, r, plan, -1);
      if (r >= 0 && this.state[r] === ST_ACTIVE) this.sendSet(r, i, plan.rev, -1);
    }
    return changed;
  }

  // -------------------------------------------------------------------------------------------------
  // The agent's view (`vrouter-emu agent flows`)

  /** The aging table of flow `i`. */
  collectorOf(i: number): Collector {
    return this.byId[this.coll[i]] as Collector;
  }

  /** Whether the agent holds a flow at `i`. */
  has(i: number): boolean {
    return this.state[i] !== ST_NONE;
  }

  /** Whether flow `i` is marked for logging (a `log` policy rule). */
  logged(i: number): boolean {
    return (this.flags[i] & FL_LOG) !== 0;
  }

  /** Whether flow `i` is a short flow. */
  isShort(i: number): boolean {
    return (this.flags[i] & FL_SHORT) !== 0;
  }

  /** The UUID of flow `i` (8-4-4-4-12 hex). */
  uuidOf(i: number): string {
    return uuidString(this.uuid, i * 16);
  }

}
