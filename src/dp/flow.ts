/**
 * Flow processing in the datapath: lookup and creation on the packet path, the action, hold queues and
 * traps, eviction of closed TCP sessions, and the agent's FLOW_SET (dp-core/vr_flow.c at R2.22;
 * reference §3–§5, §8.2). The table itself (buckets, chains, layout) is flow-table.ts; the TCP digest
 * is flow-tcp.ts.
 *
 * Writers: the datapath thread only. The agent changes entries by calling flowSet() through its channel
 * (the FLOW_SET request of the real module); it never writes the table.
 * @module
 */
import {
  AGENT_HDR_LEN,
  AGENT_TRAP_FLOW_ACTION_HOLD,
  AGENT_TRAP_FLOW_MISS,
  AH_CMD,
  AH_CMD_PARAM,
  AH_CMD_PARAM_1,
  AH_CMD_PARAM_2,
  AH_CMD_PARAM_3,
  AH_CMD_PARAM_4,
  AH_IFINDEX,
  AH_VRF,
  ETH_HLEN,
  VP_DROP_FLOW_ACTION_DROP,
  VP_DROP_FLOW_ACTION_INVALID,
  VP_DROP_FLOW_NAT_NO_RFLOW,
  VP_DROP_FLOW_QUEUE_LIMIT_EXCEEDED,
  VP_DROP_FLOW_TABLE_FULL,
  VP_DROP_FLOW_UNUSABLE,
  VP_DROP_INVALID_IF,
  VP_TYPE_IP,
  VR_FLOW_ACTION_DROP,
  VR_FLOW_ACTION_FORWARD,
  VR_FLOW_ACTION_HOLD,
  VR_FLOW_ACTION_NAT,
  VR_FLOW_FLAG_ACTIVE,
  VR_FLOW_FLAG_DELETE_MARKED,
  VR_FLOW_FLAG_DP_BITS,
  VR_FLOW_FLAG_EVICTED,
  VR_FLOW_FLAG_EVICT_CANDIDATE,
  VR_FLOW_FLAG_LINK_LOCAL,
  VR_FLOW_FLAG_MIRROR,
  VR_FLOW_FLAG_MODIFIED,
  VR_FLOW_FLAG_NEW_FLOW,
  VR_FLOW_FLAG_RFLOW_VALID,
  VR_FLOW_FLAG_VRFT,
  VR_FLOW_KEY_LEN,
  VR_FLOW_TCP_DEAD,
  VR_MAX_FLOW_TABLE_HOLD_COUNT,
  VR_MAX_MIRROR_INDICES,
} from './defs';
import {
  FE_ACTION,
  FE_BYTES,
  FE_BYTES_OFLOW,
  FE_DROP_REASON,
  FE_DVRF,
  FE_ECMP,
  FE_FLAGS,
  FE_HOLD,
  FE_K0,
  FE_K1,
  FE_K2,
  FE_K3,
  FE_KEY_LEN,
  FE_MIRROR,
  FE_PACKETS,
  FE_PACKETS_OFLOW,
  FE_PROTO,
  FE_RFLOW,
  FE_SEC_MIRROR,
  FE_SIZE,
  FE_SRC_NH,
  FE_TCP_FLAGS,
  FE_TYPE,
  FE_USED_END,
  FE_UDP_SPORT,
  FE_VRF,
  FTI_ACTION_COUNT,
  FTI_ADDED,
  FTI_HOLD_COUNT,
  FTI_OFLOWS,
  FlowTable,
  flowFindHashed,
  flowHash,
  flowHoldEntries,
  htAlloc,
  htRelease,
} from './flow-table';
import { flowTcpDigest, flowTcpRflowSet } from './flow-tcp';
import { flowNat } from './flow-nat';
import { KEY_OK, ipParse } from './proto-ip';
import { jhashWords } from './jhash';
import { FRAG_MORE, Pkt, wr16, wr32 } from './pkt';
import {
  RES_HELD,
  RES_TRAPPED,
  Router,
  WORK_DELETE,
  WORK_EVICT,
  WORK_FLUSH_HOLD,
  dropPkt,
} from './router';

// flow_result_t: what the packet path does next.
export const FLOW_FORWARD = 0;
export const FLOW_DROP = 1;
export const FLOW_HELD = 2;

// errno values of FLOW_SET responses (Linux).
export const ENOENT = 2;
export const EBADF = 9;
export const EBUSY = 16;
export const EEXIST = 17;
export const EINVAL = 22;
export const ENOSPC = 28;

const W = FE_SIZE >> 2; // u32 words per entry
const H = FE_SIZE >> 1; // u16 halves per entry

/** One FLOW_SET request (sandesh vr_flow_req, R2.22 fields the emulator uses). */
export interface FlowReq {
  /** fr_index: the entry to change, −1 = add by key. */
  index: number;
  /** fr_rindex: the reverse flow (with RFLOW_VALID). */
  rindex: number;
  /** fr_action. */
  action: number;
  /** fr_flags: without VR_FLOW_FLAG_ACTIVE the request deletes. */
  flags: number;
  /** The key as table words (see flow-table.ts): sport|dport, sip, dip, nh_id; fr_flow_proto. */
  k0: number;
  k1: number;
  k2: number;
  k3: number;
  proto: number;
  /** fr_flow_vrf, fr_flow_dvrf. */
  vrf: number;
  dvrf: number;
  /** fr_mir_id, fr_sec_mir_id (255 = none). */
  mirId: number;
  secMirId: number;
  /** fr_ecmp_nh_index (−1 = unset). */
  ecmpNhIndex: number;
  /** fr_src_nh_index. */
  srcNhIndex: number;
  /** fr_drop_reason (VR_FLOW_DR_*). */
  dropReason: number;
}

/** A FLOW_SET reply: vr_response code and the echoed request's index and the entry's stats. */
export interface FlowResp {
  /** 0 or −errno. */
  err: number;
  index: number;
  bytes: number;
  packets: number;
}

/**
 * How FLOW_SET requests reach the datapath (the agent's KSync netlink socket): `DirectChannel`
 * (agent/dp-channel.ts) calls flowSet() in the same thread, the datapath thread (io/dp-thread.ts) posts
 * them to its worker. Defined here, with the request, so that both sides depend on the datapath only.
 */
export interface DpChannel {
  /** Send a FLOW_SET; `done` gets the reply (synchronously or later). The request may be reused after the call. */
  flowSet(req: FlowReq, done: (resp: FlowResp) => void): void;
}

export function flowReqNew(): FlowReq {
  return {
    index: -1, rindex: -1, action: VR_FLOW_ACTION_DROP, flags: 0, k0: 0, k1: 0, k2: 0, k3: 0, proto: 0,
    vrf: 0, dvrf: 0, mirId: VR_MAX_MIRROR_INDICES, secMirId: VR_MAX_MIRROR_INDICES, ecmpNhIndex: -1,
    srcNhIndex: 0, dropReason: 0,
  };
}

// ---------------------------------------------------------------------------------------------------
// Entry life cycle

function fidx(i: number): number {
  return (i * H) + (FE_FLAGS >> 1);
}

/** Initialise a freshly claimed slot for `key` (vr_flow_table entry init after vr_htable alloc). */
function flowEntryInit(t: FlowTable, i: number, k0: number, k1: number, k2: number, k3: number, proto: number): void {
  const b = i * FE_SIZE;
  const f = Atomics.load(t.u16, fidx(i));
  if ((f & VR_FLOW_FLAG_ACTIVE) === 0) {
    // A never-used or deleted slot: set ACTIVE|NEW_FLOW and the "unset" values.
    t.i32[i * W + (FE_RFLOW >> 2)] = -1;
    t.u8[b + FE_MIRROR] = VR_MAX_MIRROR_INDICES;
    t.u8[b + FE_SEC_MIRROR] = VR_MAX_MIRROR_INDICES;
    t.i8[b + FE_ECMP] = -1;
    Atomics.store(t.u16, fidx(i), VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_NEW_FLOW);
  } else {
    // A slot freed by eviction keeps ACTIVE|EVICTED: reuse it as a new flow.
    Atomics.store(t.u16, fidx(i), (f & ~(VR_FLOW_FLAG_EVICTED | VR_FLOW_FLAG_DELETE_MARKED)) | VR_FLOW_FLAG_NEW_FLOW);
  }
  const w = i * W;
  t.u32[w + (FE_K0 >> 2)] = k0;
  t.u32[w + (FE_K1 >> 2)] = k1;
  t.u32[w + (FE_K2 >> 2)] = k2;
  t.u32[w + (FE_K3 >> 2)] = k3;
  t.u8[b + FE_PROTO] = proto;
  t.u8[b + FE_KEY_LEN] = VR_FLOW_KEY_LEN;
  t.u8[b + FE_TYPE] = VP_TYPE_IP;
}

/** Reset an entry to its unused state (vr_flow_reset_entry), keeping only the hentry words. */
function flowEntryReset(t: FlowTable, i: number, keepFlags: number): void {
  const b = i * FE_SIZE;
  const keep = Atomics.load(t.u16, fidx(i)) & keepFlags;
  t.u8.fill(0, b + FE_K0, b + FE_USED_END);
  t.i32[i * W + (FE_RFLOW >> 2)] = -1;
  t.i32[i * W + (FE_HOLD >> 2)] = -1;
  t.u8[b + FE_MIRROR] = VR_MAX_MIRROR_INDICES;
  t.u8[b + FE_SEC_MIRROR] = VR_MAX_MIRROR_INDICES;
  t.i8[b + FE_ECMP] = -1;
  Atomics.store(t.u16, fidx(i), keep);
}

/** The entry's counters into the packet's trap fields (agent_hdr param_2..4). */
function flowStatsToTrap(t: FlowTable, i: number, pkt: Pkt): void {
  pkt.trapBytes = t.u32[i * W + (FE_BYTES >> 2)];
  pkt.trapPackets = t.u32[i * W + (FE_PACKETS >> 2)];
  pkt.trapOflow = t.u16[i * H + (FE_BYTES_OFLOW >> 1)] | (t.u8[i * FE_SIZE + FE_PACKETS_OFLOW] << 16);
}

/** Zero an entry's counters and TCP state (a new flow in the slot). */
function flowStatsClear(t: FlowTable, i: number): void {
  t.u32[i * W + (FE_BYTES >> 2)] = 0;
  t.u32[i * W + (FE_PACKETS >> 2)] = 0;
  t.u16[i * H + (FE_BYTES_OFLOW >> 1)] = 0;
  t.u8[i * FE_SIZE + FE_PACKETS_OFLOW] = 0;
  t.u16[i * H + (FE_TCP_FLAGS >> 1)] = 0;
}

/** Count one packet on an entry: 32-bit counters with 16/8-bit overflow extensions (vr_flow_stats). */
function flowStatsAdd(t: FlowTable, i: number, len: number): void {
  const w = i * W;
  const bi = w + (FE_BYTES >> 2);
  const pi = w + (FE_PACKETS >> 2);
  const ob = t.u32[bi];
  const nb = (ob + len) >>> 0;
  t.u32[bi] = nb;
  if (nb < ob) t.u16[i * H + (FE_BYTES_OFLOW >> 1)]++;
  const np = (t.u32[pi] + 1) >>> 0;
  t.u32[pi] = np;
  if (np === 0) t.u8[i * FE_SIZE + FE_PACKETS_OFLOW]++;
}

function holdCountInc(r: Router): void {
  const info = r.ft.info;
  // vfti_hold_count[cpu] is a u32; its wraps are counted in vfti_oflows. One datapath CPU: cpu 0.
  if (++info[FTI_HOLD_COUNT] > 0xffffffff) {
    info[FTI_HOLD_COUNT] = 0;
    info[FTI_OFLOWS]++;
  }
}

/** Put an entry in HOLD with an empty queue (new flow, or the agent asked for HOLD). */
function flowHoldStart(r: Router, i: number): void {
  const t = r.ft;
  t.u16[i * H + (FE_ACTION >> 1)] = VR_FLOW_ACTION_HOLD;
  const hi = i * W + (FE_HOLD >> 2);
  if (t.i32[hi] < 0) t.i32[hi] = r.hold.alloc();
  holdCountInc(r);
}

// ---------------------------------------------------------------------------------------------------
// The packet path (vr_flow_lookup → vr_do_flow_action)

/** Whether a packet that missed may create a flow (vr_flow_allow_new_flow). */
function flowAllowNew(r: Router, pkt: Pkt): boolean {
  if (pkt.frag === FRAG_MORE) return false;
  if (r.cfg.flowHoldLimit && flowHoldEntries(r.ft) > VR_MAX_FLOW_TABLE_HOLD_COUNT) return false;
  return true;
}

/**
 * Run the flow stage for a packet whose key is in pkt.k0..k3/kproto: find or create the entry, digest
 * TCP, count, apply the action, evict dead TCP sessions.
 * @returns FLOW_FORWARD (the caller forwards, NAT already applied), or FLOW_HELD / FLOW_DROP (the
 * packet was taken care of and counted).
 */
export function flowLookup(r: Router, pkt: Pkt): number {
  const t = r.ft;
  const h = flowHash(pkt.k0, pkt.k1, pkt.k2, pkt.k3, pkt.kproto);
  let i = flowFindHashed(t, h, pkt.k0, pkt.k1, pkt.k2, pkt.k3, pkt.kproto);
  if (i < 0) {
    if (!flowAllowNew(r, pkt)) {
      dropPkt(r, VP_DROP_FLOW_UNUSABLE);
      return FLOW_DROP;
    }
    i = htAlloc(t, h);
    if (i < 0) {
      dropPkt(r, VP_DROP_FLOW_TABLE_FULL);
      return FLOW_DROP;
    }
    flowEntryInit(t, i, pkt.k0, pkt.k1, pkt.k2, pkt.k3, pkt.kproto);
    // A reused (evicted) slot still holds the last flow's counters: the FLOW_MISS trap reports them to
    // the agent, and the new flow counts from zero.
    flowStatsToTrap(t, i, pkt);
    flowStatsClear(t, i);
    t.u16[i * H + (FE_VRF >> 1)] = pkt.vrf;
    flowHoldStart(r, i);
  } else {
    const f = Atomics.load(t.u16, fidx(i));
    if (f & (VR_FLOW_FLAG_NEW_FLOW | VR_FLOW_FLAG_EVICT_CANDIDATE | VR_FLOW_FLAG_EVICTED)) {
      dropPkt(r, VP_DROP_FLOW_UNUSABLE);
      return FLOW_DROP;
    }
    // A FLOW_ACTION_HOLD trap (the agent put the flow back in HOLD) carries the counters so far.
    flowStatsToTrap(t, i, pkt);
  }
  pkt.flowIdx = i;
  flowTcpDigest(t, i, pkt);
  flowStatsAdd(t, i, pkt.len);
  const res = flowAction(r, i, pkt);
  // An entry still in HOLD belongs to the agent until it answers (its trap is pending); it is not
  // evicted (as §5.3 asks of the reverse), the agent deletes it once DEAD.
  if (r.cfg.eviction && t.u16[i * H + (FE_TCP_FLAGS >> 1)] & VR_FLOW_TCP_DEAD &&
      t.u16[i * H + (FE_ACTION >> 1)] !== VR_FLOW_ACTION_HOLD) {
    flowMarkEvict(r, i);
  }
  return res;
}

/** Apply entry `i`'s action to the packet (vr_flow_action). */
function flowAction(r: Router, i: number, pkt: Pkt): number {
  switch (r.ft.u16[i * H + (FE_ACTION >> 1)]) {
    case VR_FLOW_ACTION_HOLD:
      return flowEnqueue(r, i, pkt);
    case VR_FLOW_ACTION_DROP:
      dropPkt(r, VP_DROP_FLOW_ACTION_DROP);
      return FLOW_DROP;
    case VR_FLOW_ACTION_FORWARD:
    case VR_FLOW_ACTION_NAT:
      return flowForwardPrep(r, i, pkt);
    default:
      dropPkt(r, VP_DROP_FLOW_ACTION_INVALID);
      return FLOW_DROP;
  }
}

/**
 * What a FORWARD or NAT entry does to the packet before it is forwarded: NAT by the reverse flow (§3.3;
 * none → Flow NAT no rflow), and with VRFT the VRF to route in.
 */
function flowForwardPrep(r: Router, i: number, pkt: Pkt): number {
  const t = r.ft;
  const f = Atomics.load(t.u16, fidx(i));
  if (t.u16[i * H + (FE_ACTION >> 1)] === VR_FLOW_ACTION_NAT) {
    const rf = t.i32[i * W + (FE_RFLOW >> 2)];
    if ((f & VR_FLOW_FLAG_RFLOW_VALID) === 0 || rf < 0 || rf >= t.total ||
        (Atomics.load(t.u16, fidx(rf)) & VR_FLOW_FLAG_ACTIVE) === 0) {
      dropPkt(r, VP_DROP_FLOW_NAT_NO_RFLOW);
      return FLOW_DROP;
    }
    flowNat(t, i, rf, pkt);
  }
  pkt.fwdVrf = f & VR_FLOW_FLAG_VRFT ? t.u16[i * H + (FE_DVRF >> 1)] : -1;
  return FLOW_FORWARD;
}

/** Queue a packet on a HOLD entry; the one that takes slot 0 traps to the agent (vr_enqueue_flow). */
function flowEnqueue(r: Router, i: number, pkt: Pkt): number {
  const t = r.ft;
  const q = t.i32[i * W + (FE_HOLD >> 2)];
  if (q < 0) {
    dropPkt(r, VP_DROP_FLOW_UNUSABLE);
    return FLOW_DROP;
  }
  const slot = r.hold.enqueue(q, pkt.vif, pkt.buf, pkt.off, pkt.len);
  if (slot < 0) {
    dropPkt(r, VP_DROP_FLOW_QUEUE_LIMIT_EXCEEDED);
    return FLOW_DROP;
  }
  r.hold.setMeta(q, slot, pkt.vrf, pkt.outNh, pkt.tun | (pkt.tunL2 ? 0x100 : 0));
  r.results[RES_HELD]++;
  if (slot === 0) flowTrap(r, i, pkt);
  return FLOW_HELD;
}

/**
 * Trap a copy of the packet to the agent on pkt0 (vr_trap_flow → vr_trap): Ethernet header, agent_hdr,
 * then the packet. FLOW_MISS when the entry is NEW_FLOW (cleared now), else FLOW_ACTION_HOLD.
 */
function flowTrap(r: Router, i: number, pkt: Pkt): void {
  const t = r.ft;
  const fi = fidx(i);
  const f = Atomics.load(t.u16, fi);
  let cmd = AGENT_TRAP_FLOW_ACTION_HOLD;
  if (f & VR_FLOW_FLAG_NEW_FLOW) {
    cmd = AGENT_TRAP_FLOW_MISS;
    Atomics.and(t.u16, fi, ~VR_FLOW_FLAG_NEW_FLOW & 0xffff);
  }
  const tb = r.trapBuf;
  const len = Math.min(pkt.len, tb.length - ETH_HLEN - AGENT_HDR_LEN);
  tb.fill(0, 0, ETH_HLEN);
  tb[12] = 0x08; // an IPv4 ethertype on the pkt0 header, as agent_send builds it
  const h = ETH_HLEN;
  wr16(tb, h + AH_IFINDEX, pkt.vif);
  wr16(tb, h + AH_VRF, t.u16[i * H + (FE_VRF >> 1)]);
  wr16(tb, h + AH_CMD, cmd);
  wr32(tb, h + AH_CMD_PARAM, i);
  wr32(tb, h + AH_CMD_PARAM_1, pkt.k3);
  wr32(tb, h + AH_CMD_PARAM_2, pkt.trapBytes);
  wr32(tb, h + AH_CMD_PARAM_3, pkt.trapPackets);
  wr32(tb, h + AH_CMD_PARAM_4, pkt.trapOflow);
  tb.set(pkt.buf.subarray(pkt.off, pkt.off + len), ETH_HLEN + AGENT_HDR_LEN);
  r.results[RES_TRAPPED]++;
  r.host.trap(tb, 0, ETH_HLEN + AGENT_HDR_LEN + len);
}

// ---------------------------------------------------------------------------------------------------
// Eviction (vr_flow_mark_evict, R2.22 line Aug 2015 – Feb 2016; reference §5.3)

/** Take MODIFIED with compare-and-swap; fails if MODIFIED or EVICTED is already set. */
function flowTryModify(t: FlowTable, i: number): boolean {
  const fi = fidx(i);
  for (;;) {
    const f = Atomics.load(t.u16, fi);
    if (f & (VR_FLOW_FLAG_MODIFIED | VR_FLOW_FLAG_EVICTED)) return false;
    if (Atomics.compareExchange(t.u16, fi, f, f | VR_FLOW_FLAG_MODIFIED) === f) return true;
  }
}

function flowUnmodify(t: FlowTable, i: number): void {
  Atomics.and(t.u16, fidx(i), ~VR_FLOW_FLAG_MODIFIED & 0xffff);
}

/**
 * Step 1 of eviction for a DEAD entry: mark it (and its DEAD reverse) EVICT_CANDIDATE and schedule the
 * transition to EVICTED. From now on packets that hit either entry are Flow Unusable.
 */
function flowMarkEvict(r: Router, fe: number): void {
  const t = r.ft;
  if (!flowTryModify(t, fe)) return;
  const f = Atomics.load(t.u16, fidx(fe));
  const rf = t.i32[fe * W + (FE_RFLOW >> 2)];
  if (f & VR_FLOW_FLAG_RFLOW_VALID && rf >= 0 && rf < t.total) {
    const rff = Atomics.load(t.u16, fidx(rf));
    const rrf = t.i32[rf * W + (FE_RFLOW >> 2)];
    const ok =
      (rff & VR_FLOW_FLAG_ACTIVE) !== 0 &&
      (t.u16[rf * H + (FE_TCP_FLAGS >> 1)] & VR_FLOW_TCP_DEAD) !== 0 &&
      t.u16[rf * H + (FE_ACTION >> 1)] !== VR_FLOW_ACTION_HOLD &&
      ((rff & VR_FLOW_FLAG_RFLOW_VALID) === 0 || rrf === fe || rrf < 0);
    if (!ok || !flowTryModify(t, rf)) {
      flowUnmodify(t, fe);
      return;
    }
    const before = Atomics.or(t.u16, fidx(rf), VR_FLOW_FLAG_EVICT_CANDIDATE);
    if ((before & VR_FLOW_FLAG_EVICT_CANDIDATE) === 0) {
      Atomics.or(t.u16, fidx(fe), VR_FLOW_FLAG_EVICT_CANDIDATE);
      workSchedule(r, WORK_EVICT, fe);
      workSchedule(r, WORK_EVICT, rf);
      return;
    }
    flowUnmodify(t, rf);
    flowUnmodify(t, fe);
    return;
  }
  Atomics.or(t.u16, fidx(fe), VR_FLOW_FLAG_EVICT_CANDIDATE);
  workSchedule(r, WORK_EVICT, fe);
}

/** Step 2, after the grace period: EVICT_CANDIDATE → EVICTED, entry reset, slot free for a new key. */
function flowEvictWork(r: Router, i: number): void {
  const t = r.ft;
  const fi = fidx(i);
  const f = Atomics.load(t.u16, fi);
  if ((f & (VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_EVICT_CANDIDATE)) !== (VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_EVICT_CANDIDATE)) return;
  flowHoldFlush(r, i, VR_FLOW_ACTION_DROP);
  Atomics.store(t.u16, fi, (f & ~(VR_FLOW_FLAG_EVICT_CANDIDATE | VR_FLOW_FLAG_MODIFIED)) | VR_FLOW_FLAG_EVICTED);
  // Key, action, rflow, TCP state and mirrors go; the counters stay for the next FLOW_MISS trap to report.
  const w = i * W;
  const bytes = t.u32[w + (FE_BYTES >> 2)];
  const packets = t.u32[w + (FE_PACKETS >> 2)];
  const bo = t.u16[i * H + (FE_BYTES_OFLOW >> 1)];
  const po = t.u8[i * FE_SIZE + FE_PACKETS_OFLOW];
  flowEntryReset(t, i, VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_EVICTED | VR_FLOW_FLAG_NEW_FLOW | VR_FLOW_FLAG_DELETE_MARKED);
  t.u32[w + (FE_BYTES >> 2)] = bytes;
  t.u32[w + (FE_PACKETS >> 2)] = packets;
  t.u16[i * H + (FE_BYTES_OFLOW >> 1)] = bo;
  t.u8[i * FE_SIZE + FE_PACKETS_OFLOW] = po;
  htRelease(t, i);
}

// ---------------------------------------------------------------------------------------------------
// Held packets

/**
 * Take the hold queue off entry `i` and run its packets through `action` (vr_flow_flush_pnode): DROP
 * counts them as Flow Action Drop, FORWARD hands them to the router's forwarding stage.
 */
function flowHoldFlush(r: Router, i: number, action: number): void {
  const t = r.ft;
  const hi = i * W + (FE_HOLD >> 2);
  const q = t.i32[hi];
  if (q < 0) return;
  t.i32[hi] = -1;
  const hold = r.hold;
  const n = hold.count(q);
  const p = r.heldPkt;
  for (let s = 0; s < n; s++) {
    const vif = hold.vifs[q * 3 + s];
    const v = r.vifs.vifs[vif];
    if (v === undefined || !v.up) {
      dropPkt(r, VP_DROP_INVALID_IF);
      continue;
    }
    if (action === VR_FLOW_ACTION_DROP || action === VR_FLOW_ACTION_HOLD) {
      dropPkt(r, VP_DROP_FLOW_ACTION_DROP);
      continue;
    }
    if (action !== VR_FLOW_ACTION_FORWARD && action !== VR_FLOW_ACTION_NAT) {
      dropPkt(r, VP_DROP_FLOW_ACTION_INVALID);
      continue;
    }
    p.buf = hold.frameBuf(q, s);
    p.off = hold.frameOff(q, s);
    p.len = hold.lens[q * 3 + s];
    p.vif = vif;
    // A packet from the fabric takes the VRF and nexthop its label chose (kept with it), not the fabric vif's.
    const sl = q * 3 + s;
    p.vrf = hold.vrfs[sl];
    p.outNh = hold.outNhs[sl];
    p.tun = hold.tuns[sl] & 0xff;
    p.tunL2 = (hold.tuns[sl] & 0x100) !== 0;
    p.nh = v.nh;
    p.fwdVrf = -1;
    p.flowIdx = i;
    // The held frame is parsed again for the rewrite (it was parsed when it arrived).
    p.l3 = p.off + ETH_HLEN;
    if (ipParse(p) !== KEY_OK) {
      dropPkt(r, VP_DROP_FLOW_ACTION_INVALID);
      continue;
    }
    if (flowForwardPrep(r, i, p) === FLOW_FORWARD) r.reinject(r, p);
  }
  hold.release(q);
}

// ---------------------------------------------------------------------------------------------------
// Deferred work

/** Schedule deferred work (vr_schedule_work); runs at routerDrainWork(). */
export function workSchedule(r: Router, work: number, arg: number): void {
  const cap = r.work.length >> 1;
  if (r.workTail - r.workHead >= cap) {
    const bigger = new Int32Array(r.work.length * 2);
    for (let k = r.workHead; k < r.workTail; k++) {
      bigger[(k % (cap * 2)) * 2] = r.work[(k % cap) * 2];
      bigger[(k % (cap * 2)) * 2 + 1] = r.work[(k % cap) * 2 + 1];
    }
    r.work = bigger;
  }
  const c = r.work.length >> 1;
  const s = (r.workTail % c) * 2;
  r.work[s] = work;
  r.work[s + 1] = arg;
  r.workTail++;
}

/** Run all deferred work: the host calls this at the end of a burst (the emulated RCU grace period). */
export function routerDrainWork(r: Router): void {
  while (r.workHead < r.workTail) {
    const c = r.work.length >> 1;
    const s = (r.workHead % c) * 2;
    const work = r.work[s];
    const arg = r.work[s + 1];
    r.workHead++;
    if (work === WORK_FLUSH_HOLD) {
      const t = r.ft;
      const action = t.u16[arg * H + (FE_ACTION >> 1)];
      if (action !== VR_FLOW_ACTION_HOLD) flowHoldFlush(r, arg, action);
    } else if (work === WORK_DELETE) {
      flowDeleteWork(r, arg);
    } else if (work === WORK_EVICT) {
      flowEvictWork(r, arg);
    }
  }
}

function flowDeleteWork(r: Router, i: number): void {
  const t = r.ft;
  const f = Atomics.load(t.u16, fidx(i));
  if ((f & VR_FLOW_FLAG_DELETE_MARKED) === 0) return;
  flowHoldFlush(r, i, VR_FLOW_ACTION_DROP);
  flowEntryReset(t, i, 0);
  htRelease(t, i);
}

// ---------------------------------------------------------------------------------------------------
// FLOW_SET (vr_flow_set, reference §8.2)

/** Whether the entry's stored key equals the request's. */
function flowKeyEquals(t: FlowTable, i: number, q: FlowReq): boolean {
  const w = i * W;
  const b = i * FE_SIZE;
  return (
    t.u8[b + FE_KEY_LEN] === VR_FLOW_KEY_LEN &&
    t.u32[w + (FE_K0 >> 2)] === q.k0 >>> 0 &&
    t.u32[w + (FE_K1 >> 2)] === q.k1 >>> 0 &&
    t.u32[w + (FE_K2 >> 2)] === q.k2 >>> 0 &&
    t.u32[w + (FE_K3 >> 2)] === q.k3 >>> 0 &&
    t.u8[b + FE_PROTO] === q.proto
  );
}

/** Outer UDP source port of a flow: jhash2 over (sip, dip, vrf, sport, dport) into 49152..65535. */
function flowUdpSrcPort(r: Router, i: number): number {
  const t = r.ft;
  const w = i * W;
  const k0 = t.u32[w + (FE_K0 >> 2)];
  return udpSrcPort(r, t.u32[w + (FE_K1 >> 2)], t.u32[w + (FE_K2 >> 2)], t.u16[i * H + (FE_VRF >> 1)], k0 & 0xffff, k0 >>> 16);
}

/**
 * The outer UDP source port for these words (the flow key's sip and dip words, the VRF, and the key's
 * two port halves as stored): jhash2 with a seed drawn on first use, mapped into 49152..65535 (§3.4).
 * Packets without a flow use it with their own header's words.
 */
export function udpSrcPort(r: Router, sipWord: number, dipWord: number, vrf: number, sport: number, dport: number): number {
  if (!r.udpSeeded) {
    r.udpSeed = r.host.random32() >>> 0;
    r.udpSeeded = true;
  }
  const words = r.udpWords;
  words[0] = sipWord;
  words[1] = dipWord;
  words[2] = vrf;
  words[3] = sport;
  words[4] = dport;
  const h = jhashWords(words, 5, r.udpSeed);
  return 49152 + Math.floor((h * 16383) / 0x100000000);
}

/**
 * Apply a FLOW_SET request. Validation and errors as R2.22's vr_flow_set: a busy entry → −EBUSY;
 * delete-marked → −EINVAL; index not active → −ENOENT (−EINVAL for a delete); key mismatch → −EBADF;
 * bad dvrf / mirror / reverse → −EINVAL; add of an existing key → −EEXIST; no slot → −ENOSPC.
 * Held packets are flushed through the new action by deferred work.
 * @returns the response (a reused object: copy what you keep).
 */
export function flowSet(r: Router, q: FlowReq, resp: FlowResp): FlowResp {
  resp.index = q.index;
  resp.bytes = 0;
  resp.packets = 0;
  resp.err = flowSetRaw(r, q, resp);
  return resp;
}

function flowSetRaw(r: Router, q: FlowReq, resp: FlowResp): number {
  const t = r.ft;
  const add = (q.flags & VR_FLOW_FLAG_ACTIVE) !== 0;
  let i = q.index;
  if (i >= t.total || i < -1) return -EINVAL;
  if (i < 0 && !add) return -EINVAL;

  // The existing entry: take MODIFIED, then check its state and key.
  if (i >= 0) {
    if (!flowTryModify(t, i)) return -EBUSY;
    const f = Atomics.load(t.u16, fidx(i));
    let err = 0;
    if (f & VR_FLOW_FLAG_DELETE_MARKED) err = -EINVAL;
    else if ((f & VR_FLOW_FLAG_ACTIVE) === 0) err = add ? -ENOENT : -EINVAL;
    else if (!flowKeyEquals(t, i, q)) err = -EBADF;
    if (err !== 0) {
      flowUnmodify(t, i);
      return err;
    }
    if (!add) {
      flowDelete(r, i);
      return 0;
    }
  }
  // The new values (§8.2 step 2), before anything is allocated.
  if ((q.flags & VR_FLOW_FLAG_VRFT && q.dvrf >= r.params.vr_vrfs) ||
      (q.flags & VR_FLOW_FLAG_MIRROR && q.mirId >= VR_MAX_MIRROR_INDICES && q.secMirId >= VR_MAX_MIRROR_INDICES) ||
      (q.flags & VR_FLOW_FLAG_RFLOW_VALID &&
        (q.rindex < 0 || q.rindex >= t.total || (Atomics.load(t.u16, fidx(q.rindex)) & VR_FLOW_FLAG_ACTIVE) === 0))) {
    if (i >= 0) flowUnmodify(t, i);
    return -EINVAL;
  }
  let created = false;
  if (i < 0) {
    // Add by key (step 4): an existing key → EEXIST (the datapath made it from a trap), no slot → ENOSPC.
    const h = flowHash(q.k0 >>> 0, q.k1 >>> 0, q.k2 >>> 0, q.k3 >>> 0, q.proto);
    if (flowFindHashed(t, h, q.k0 >>> 0, q.k1 >>> 0, q.k2 >>> 0, q.k3 >>> 0, q.proto) >= 0) return -EEXIST;
    i = htAlloc(t, h);
    if (i < 0) return -ENOSPC;
    flowEntryInit(t, i, q.k0 >>> 0, q.k1 >>> 0, q.k2 >>> 0, q.k3 >>> 0, q.proto);
    flowStatsClear(t, i);
    t.u16[i * H + (FE_ACTION >> 1)] = VR_FLOW_ACTION_DROP;
    t.info[FTI_ADDED]++;
    Atomics.or(t.u16, fidx(i), VR_FLOW_FLAG_MODIFIED);
    created = true;
    resp.index = i;
  }

  const b = i * FE_SIZE;
  const w = i * W;
  // Mirror
  if (q.flags & VR_FLOW_FLAG_MIRROR) {
    t.u8[b + FE_MIRROR] = q.mirId;
    t.u8[b + FE_SEC_MIRROR] = q.secMirId;
  } else {
    t.u8[b + FE_MIRROR] = VR_MAX_MIRROR_INDICES;
    t.u8[b + FE_SEC_MIRROR] = VR_MAX_MIRROR_INDICES;
  }
  // Reverse flow
  t.i32[w + (FE_RFLOW >> 2)] = q.flags & VR_FLOW_FLAG_RFLOW_VALID ? q.rindex : -1;
  t.u16[i * H + (FE_VRF >> 1)] = q.vrf;
  t.u16[i * H + (FE_DVRF >> 1)] = q.flags & VR_FLOW_FLAG_VRFT ? q.dvrf : 0;
  // The agent's ECMP choice is taken only while the datapath has none.
  if (t.i8[b + FE_ECMP] < 0) t.i8[b + FE_ECMP] = q.ecmpNhIndex;
  t.u16[i * H + (FE_SRC_NH >> 1)] = q.srcNhIndex;

  // Action, with the HOLD accounting.
  const hi = i * H + (FE_ACTION >> 1);
  const wasHold = t.u16[hi] === VR_FLOW_ACTION_HOLD && !created;
  if (q.action === VR_FLOW_ACTION_HOLD) {
    if (!wasHold) flowHoldStart(r, i);
  } else {
    t.u16[hi] = q.action;
    if (wasHold) t.info[FTI_ACTION_COUNT]++;
  }
  t.u8[b + FE_DROP_REASON] = q.action === VR_FLOW_ACTION_DROP ? q.dropReason : 0;

  // Flags: the datapath's own bits stay, the rest come from the request; NEW_FLOW ends here, MODIFIED
  // is released below.
  const fi = fidx(i);
  const cur = Atomics.load(t.u16, fi);
  const reqBits = q.flags & ~(VR_FLOW_FLAG_DP_BITS | VR_FLOW_FLAG_MODIFIED | VR_FLOW_FLAG_DELETE_MARKED);
  Atomics.store(t.u16, fi, ((cur & VR_FLOW_FLAG_DP_BITS) | reqBits | VR_FLOW_FLAG_MODIFIED) & ~VR_FLOW_FLAG_NEW_FLOW & 0xffff);
  if (created && q.flags & VR_FLOW_FLAG_RFLOW_VALID) flowTcpRflowSet(t, i, q.rindex);
  t.u16[i * H + (FE_UDP_SPORT >> 1)] = flowUdpSrcPort(r, i);
  resp.bytes = t.u32[w + (FE_BYTES >> 2)];
  resp.packets = t.u32[w + (FE_PACKETS >> 2)];
  flowUnmodify(t, i);
  if (q.action !== VR_FLOW_ACTION_HOLD && t.i32[w + (FE_HOLD >> 2)] >= 0) workSchedule(r, WORK_FLUSH_HOLD, i);
  return 0;
}

/** Delete entry `i` (its MODIFIED is held): mark, make it drop, and let deferred work free the slot. */
function flowDelete(r: Router, i: number): void {
  const t = r.ft;
  const hi = i * H + (FE_ACTION >> 1);
  if (t.u16[hi] === VR_FLOW_ACTION_HOLD) t.info[FTI_ACTION_COUNT]++;
  t.u16[hi] = VR_FLOW_ACTION_DROP;
  Atomics.or(t.u16, fidx(i), VR_FLOW_FLAG_DELETE_MARKED);
  Atomics.and(t.u16, fidx(i), ~(VR_FLOW_FLAG_LINK_LOCAL | VR_FLOW_FLAG_MODIFIED) & 0xffff);
  workSchedule(r, WORK_DELETE, i);
}


