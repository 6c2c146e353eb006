/**
 * The agent's per-flow state: what it knows of each flow, in typed arrays indexed by the flow index
 * (the kernel index is the agent's flow handle), so that a full 512K table costs no JavaScript object
 * per flow. Part of the agent's flow module (the vRouter agent's FlowEntry fields, R2.20/R2.22
 * src/vnsw/agent/pkt/flow_entry.h; reference vrouter-agent.md §3).
 *
 * Writers: the flow manager (flow-mgr.ts) writes the arrays, flow-counters.ts the entry copies; its
 * other rooms (aging.ts, flow-audit.ts) read them directly. Everyone else (flow export, `vrouter-emu
 * agent flows`, tests) reads a flow through one API, FlowView: `read(i, out)` fills a FlowInfo the caller
 * owns, `uuidOf(i)` formats the flow's UUID. One thread: the agent's.
 * @module
 */
import { VR_FLOW_FLAG_ACTIVE, VR_FLOW_FLAG_DELETE_MARKED, VR_FLOW_FLAG_EVICTED, VR_FLOW_ACTION_HOLD, VR_FLOW_KEY_LEN } from '../dp/defs';
import { FlowTable, feAction, feDropReason, feFlags, feKeyLen, feKeyWord, feProto, feTcpFlags } from '../dp/flow-table';
import { uuidString } from '../lib/uuid';

// What the agent holds at an index (state[i]).
export const ST_NONE = 0;
/** Trap taken, FLOW_SET in flight. */
export const ST_PENDING = 1;
export const ST_ACTIVE = 2;

// flags[i].
export const FL_SHORT = 0x1;
export const FL_LOG = 0x2;
/** The direction that trapped (the plan's forward). */
export const FL_FWD = 0x4;
/** A record of this flow went out. */
export const FL_EXPORTED = 0x8;

/** Counters of the agent's flow module (a subset of FlowStatsResp); every room of the module adds to them. */
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

/** One flow as the agent holds it: what FlowView.read fills (the caller owns the object and may reuse it). */
export interface FlowInfo {
  index: number;
  /** Whether the agent holds a flow at this index (set up or being set up); the rest is stale when not. */
  held: boolean;
  /** The reverse flow's index, −1 when none. */
  rindex: number;
  /** A generation per index, bumped for each new flow there (so that per-flow state elsewhere can tell). */
  gen: number;
  /** The agent's copy of the key (words as the flow table holds them, see proto-ip.ts keySport…). */
  k0: number;
  k1: number;
  k2: number;
  k3: number;
  proto: number;
  /** The vif the flow's packets come in on (the forward's trap vif; a reverse's, the destination's), −1 when none. */
  inVif: number;
  /** Source and destination network (indices the environment names), −1 when none. */
  srcVn: number;
  dstVn: number;
  /** The policy rule that decided (its UUID or a pseudo-UUID), '' when none. */
  rule: string;
  /** Marked for logging (a `log` policy rule): exported unsampled. */
  log: boolean;
  short: boolean;
  /** The agent's copies of the kernel counters, extended to 64 bits (as of its last read). */
  bytes: number;
  packets: number;
  /** Clock times (ms) of the flow's setup and of its last activity seen by the aging scan. */
  setupMs: number;
  lastModifiedMs: number;
  /**
   * What the agent last read of the kernel entry while it held this flow (fe_action, fe_drop_reason,
   * fe_tcp_flags): the datapath clears them when it evicts the flow, and a reused slot holds another
   * flow's, so a flow's final record is built from these copies.
   */
  action: number;
  dropReason: number;
  tcpFlags: number;
}

/** A FlowInfo to fill. */
export function flowInfoNew(): FlowInfo {
  return {
    index: -1, held: false, rindex: -1, gen: 0, k0: 0, k1: 0, k2: 0, k3: 0, proto: 0, inVif: -1, srcVn: -1, dstVn: -1,
    rule: '', log: false, short: false, bytes: 0, packets: 0, setupMs: 0, lastModifiedMs: 0, action: 0, dropReason: 0, tcpFlags: 0,
  };
}

/** The read API of the agent's per-flow state. */
export interface FlowView {
  /** Indices there are (the flow table's N + O). */
  readonly total: number;
  /** Flow `i` into `out` (a new FlowInfo when omitted). @returns `out`. */
  read(i: number, out?: FlowInfo): FlowInfo;
  /** The UUID of flow `i` (8-4-4-4-12 hex). */
  uuidOf(i: number): string;
}

/** Whether kernel entry `i` is a live HOLD entry (waiting for the agent). */
export function entryIsHold(t: FlowTable, i: number): boolean {
  const f = feFlags(t, i);
  return (f & (VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_DELETE_MARKED)) === VR_FLOW_FLAG_ACTIVE && feAction(t, i) === VR_FLOW_ACTION_HOLD;
}

/** The per-index arrays. Fields are the writers'; readers use FlowView. */
export class FlowState implements FlowView {
  readonly total: number;
  readonly state: Uint8Array;
  readonly flags: Uint8Array;
  readonly rev: Int32Array;
  /** 4 key words per index. */
  readonly key: Uint32Array;
  readonly kproto: Uint8Array;
  readonly lastBytes: Float64Array;
  readonly lastPackets: Float64Array;
  readonly gen: Uint32Array;
  readonly lastModified: Float64Array;
  readonly setupTime: Float64Array;
  readonly entryAction: Uint8Array;
  readonly entryDropReason: Uint8Array;
  readonly entryTcpFlags: Uint16Array;
  readonly srcVn: Int16Array;
  readonly dstVn: Int16Array;
  /** Index into `rules`. */
  readonly ruleOf: Int32Array;
  /** The local VMs the flow belongs to (positions, for max_vm_flows), −1 when none. */
  readonly vmA: Int16Array;
  readonly vmB: Int16Array;
  readonly inVif: Int16Array;
  /** 16 bytes per index. */
  readonly uuid: Uint8Array;
  /** The rule UUIDs seen, each once (ruleOf holds positions). */
  readonly rules: string[] = [];
  private readonly ruleIdx = new Map<string, number>();

  constructor(readonly t: FlowTable) {
    const n = t.total;
    this.total = n;
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
    this.srcVn = new Int16Array(n);
    this.dstVn = new Int16Array(n);
    this.ruleOf = new Int32Array(n);
    this.inVif = new Int16Array(n);
    this.vmA = new Int16Array(n).fill(-1);
    this.vmB = new Int16Array(n).fill(-1);
    this.uuid = new Uint8Array(n * 16);
  }

  read(i: number, out: FlowInfo = flowInfoNew()): FlowInfo {
    out.index = i;
    out.held = this.state[i] !== ST_NONE;
    out.rindex = this.rev[i];
    out.gen = this.gen[i];
    out.k0 = this.key[i * 4];
    out.k1 = this.key[i * 4 + 1];
    out.k2 = this.key[i * 4 + 2];
    out.k3 = this.key[i * 4 + 3];
    out.proto = this.kproto[i];
    out.inVif = this.inVif[i];
    out.srcVn = this.srcVn[i];
    out.dstVn = this.dstVn[i];
    out.rule = this.rules[this.ruleOf[i]] ?? '';
    out.log = (this.flags[i] & FL_LOG) !== 0;
    out.short = (this.flags[i] & FL_SHORT) !== 0;
    out.bytes = this.lastBytes[i];
    out.packets = this.lastPackets[i];
    out.setupMs = this.setupTime[i];
    out.lastModifiedMs = this.lastModified[i];
    out.action = this.entryAction[i];
    out.dropReason = this.entryDropReason[i];
    out.tcpFlags = this.entryTcpFlags[i];
    return out;
  }

  uuidOf(i: number): string {
    return uuidString(this.uuid, i * 16);
  }

  /** The position of rule `uuid` in `rules` (added when new). */
  ruleIndex(uuid: string): number {
    let k = this.ruleIdx.get(uuid);
    if (k === undefined) {
      k = this.rules.length;
      this.rules.push(uuid);
      this.ruleIdx.set(uuid, k);
    }
    return k;
  }

  /** Whether kernel entry `i` holds flow `i`'s key (the agent's copy). */
  keyEqualsKernel(i: number): boolean {
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

  /** Whether entry `i` is a slot the datapath evicted and nothing has taken since (vr_flow.c: key reset, stats kept). */
  evictedSlot(i: number): boolean {
    return (feFlags(this.t, i) & VR_FLOW_FLAG_EVICTED) !== 0 && feKeyLen(this.t, i) === 0;
  }

  /** Copy entry `i`'s action, drop reason and TCP state (entryAction…): the caller knows the entry holds flow `i`. */
  copyEntry(i: number): void {
    const t = this.t;
    this.entryAction[i] = feAction(t, i);
    this.entryDropReason[i] = feDropReason(t, i);
    this.entryTcpFlags[i] = feTcpFlags(t, i);
  }
}
