/**
 * The router instance: every table of the emulated module and the seam to its host (dp-core/vrouter.c
 * `struct vrouter` + `struct host_os`). The datapath core reaches the outside world only through
 * `HostOs`; the TAP worker, the offline replay and the tests are three hosts of this one core.
 *
 * Owner: the datapath thread. Tables that other threads read (flow table, its info block, drop stats,
 * vif counters) live in SharedArrayBuffers; `routerShared()` hands them over.
 * @module
 */
import { VP_DROP_INTERFACE_TX_DISCARD, VP_DROP_INVALID_IF, VP_DROP_MAX } from './defs';
import { FlowTable, flowTableAttach, flowTableCreate } from './flow-table';
import { HoldPool } from './flow-hold';
import { Pkt } from './pkt';
import { FragTable } from './proto-ip';
import { VIFS_LEN, VIFS_TX_BYTES, VIFS_TX_ERRORS, VIFS_TX_PACKETS, VifTable, vifTableCreate } from './interface';
import { RouteTables, routeTablesCreate } from './nexthop';
import type { ModuleParams } from '../params/module-params';

/** Services the datapath needs from its environment (vRouter's `struct host_os`). Hot-path members take numbers. */
export interface HostOs {
  /** Monotonic milliseconds (hos_get_mono_time); the replay's manual-clock host returns capture time. */
  monoMs(): number;
  /** Send a frame out of vif `vif` (hif_tx). */
  tx(vif: number, buf: Uint8Array, off: number, len: number): void;
  /** Hand a pkt0 frame (Ethernet header + agent_hdr + packet) to the agent. The buffer is reused after return. */
  trap(buf: Uint8Array, off: number, len: number): void;
  /** 32 random bits (get_random_bytes); hosts seed it for reproducible runs. */
  random32(): number;
}

/** Behaviour switches that are not module parameters. */
export interface DpConfig {
  /**
   * Datapath eviction of closed TCP flows (EVICT_CANDIDATE → EVICTED, reference §5.3). On at the R2.22
   * branch point and in the release notes; the R2.22.x branch turned it off in Feb 2016 (966f27ee).
   */
  eviction: boolean;
  /** The flow_hold_limit sysctl (/proc/sys/net/vrouter/flow_hold_limit): 1 = refuse new flows above 4096 in HOLD. */
  flowHoldLimit: boolean;
  /** CPUs the datapath reports in per-CPU counters (the emulator runs one datapath thread). */
  cpus: number;
  /** Largest frame a hold-queue slot keeps without a separate copy. */
  holdSlotBytes: number;
  /**
   * Whether the host forwards: routes, ARP proxy, bridging and transmit. Off for the offline replay,
   * whose forwarding stage only counts the packets the flows let through.
   */
  routing: boolean;
}

export const DP_CONFIG_DEFAULTS: DpConfig = {
  eviction: true,
  flowHoldLimit: true,
  cpus: 1,
  holdSlotBytes: 2048,
  routing: true,
};

// Deferred work (vr_schedule_work / RCU callbacks): run by routerDrainWork() when the host ends a burst.
export const WORK_FLUSH_HOLD = 1;
export const WORK_DELETE = 2;
export const WORK_EVICT = 3;

/**
 * Outcome counters of the frames the host fed in (not a vRouter structure). Offline (routing off) each
 * frame is exactly one of forwarded, dropped or not subject to flows; with routing, forwarded counts
 * transmitted frames and frames without flows are counted in both.
 */
export const RES_FORWARDED = 0;
export const RES_HELD = 1;
export const RES_DROPPED = 2;
export const RES_NO_FLOW = 3; // not subject to flow processing (ARP, IPv6, other ethertypes, multicast)
export const RES_TRAPPED = 4;
export const RES_MAX = 5;

export interface Router {
  readonly host: HostOs;
  readonly params: ModuleParams;
  readonly cfg: DpConfig;
  readonly ft: FlowTable;
  readonly hold: HoldPool;
  readonly frags: FragTable;
  readonly vifs: VifTable;
  /** Nexthops, routes, bridge entries (programmed by the agent). */
  readonly rt: RouteTables;
  /** Per-reason drop counters (vr_drop_stats), shared. */
  readonly drops: Float64Array;
  readonly dropsSab: SharedArrayBuffer;
  /** Outcome counters of processed frames. */
  readonly results: Float64Array;
  /** The reason of the latest drop (for per-packet debug output). */
  lastDrop: number;
  /** How many vifs have a fat-flow list (the key builder skips fat flow when none). */
  fatFlowVifs: number;
  /** The packet being processed and one for re-injected held packets. */
  readonly pkt: Pkt;
  readonly heldPkt: Pkt;
  /** Scratch for pkt0 frames. */
  readonly trapBuf: Uint8Array;
  /** Deferred work ring: (work, arg) pairs. */
  work: Int32Array;
  workHead: number;
  workTail: number;
  /** Seed of the outer UDP source-port hash (vr_hash_seed), drawn on first use. */
  udpSeed: number;
  udpSeeded: boolean;
  readonly udpWords: Uint32Array;
  /** The physical (fabric) vif and vhost0, −1 until the agent adds them. */
  fabricVif: number;
  hostVif: number;
  /** Scratch for an encapsulated frame (outer headers + the packet), and the outer IP id counter. */
  readonly encapBuf: Uint8Array;
  /** Scratch for a sub-interface's frame with its 802.1Q tag pushed (vlan_tx), on its way to the parent. */
  readonly vlanBuf: Uint8Array;
  ipId: number;
  /** Frames the overlay answered instead of sending (ICMP "fragmentation needed" to the sender). */
  pmtuSent: number;
  /**
   * The forwarding stage a packet takes after its flow said FORWARD (set by datapath.ts); held packets
   * re-enter here when the agent decides.
   */
  reinject: (r: Router, pkt: Pkt) => void;
}

/** The shared memory of a router, handed to the threads that read it (agent, tools). */
export interface RouterShared {
  flowSab: SharedArrayBuffer;
  flowInfoSab: SharedArrayBuffer;
  dropsSab: SharedArrayBuffer;
  vifStatsSab: SharedArrayBuffer;
}

/** Allocate a router's shared memory for these parameters (the platform's job, as DPDK hands hugepages to vr_flow_table). */
export function routerSharedCreate(params: ModuleParams, cpus = 1): RouterShared {
  const ft = flowTableCreate(params.vr_flow_entries, params.vr_oflow_entries, cpus);
  return {
    flowSab: ft.sab,
    flowInfoSab: ft.infoSab,
    dropsSab: new SharedArrayBuffer(VP_DROP_MAX * 8),
    vifStatsSab: vifTableCreate().statsSab,
  };
}

/** The shared buffers of a router. */
export function routerShared(r: Router): RouterShared {
  return { flowSab: r.ft.sab, flowInfoSab: r.ft.infoSab, dropsSab: r.dropsSab, vifStatsSab: r.vifs.statsSab };
}

/**
 * Create a router with the tables the module parameters size (vrouter_init), in fresh memory or in
 * `shared` memory allocated by routerSharedCreate (another thread's view of the same tables).
 */
export function createRouter(host: HostOs, params: ModuleParams, cfg: Partial<DpConfig> = {}, shared?: RouterShared): Router {
  const c: DpConfig = { ...DP_CONFIG_DEFAULTS, ...cfg };
  const sh = shared ?? routerSharedCreate(params, c.cpus);
  const ft = flowTableAttach(sh.flowSab, sh.flowInfoSab, params.vr_flow_entries, params.vr_oflow_entries);
  const dropsSab = sh.dropsSab;
  return {
    host,
    params,
    cfg: c,
    ft,
    hold: new HoldPool(64, c.holdSlotBytes),
    frags: new FragTable(),
    vifs: vifTableCreate(sh.vifStatsSab),
    rt: routeTablesCreate(params.vr_mpls_labels),
    drops: new Float64Array(dropsSab),
    dropsSab,
    results: new Float64Array(RES_MAX),
    lastDrop: -1,
    fatFlowVifs: 0,
    pkt: new Pkt(),
    heldPkt: new Pkt(),
    trapBuf: new Uint8Array(16384),
    work: new Int32Array(8192),
    workHead: 0,
    workTail: 0,
    udpSeed: 0,
    udpSeeded: false,
    udpWords: new Uint32Array(5),
    fabricVif: -1,
    hostVif: -1,
    encapBuf: new Uint8Array(9216 + 128),
    vlanBuf: new Uint8Array(9216 + 128 + 4),
    ipId: 0,
    pmtuSent: 0,
    reinject: () => {
      throw new Error('router used before datapath init');
    },
  };
}

/** Count a drop (vr_pfree with a reason). Never throws. */
export function dropPkt(r: Router, reason: number): void {
  r.drops[reason]++;
  r.results[RES_DROPPED]++;
  r.lastDrop = reason;
}

/** Transmit on a vif (vif_tx), counting it; a vif that is gone or down discards. */
export function vifTx(r: Router, vif: number, buf: Uint8Array, off: number, len: number): void {
  const v = r.vifs.vifs[vif];
  const st = r.vifs.stats;
  if (v === undefined) {
    dropPkt(r, VP_DROP_INVALID_IF);
    return;
  }
  if (!v.up) {
    st[vif * VIFS_LEN + VIFS_TX_ERRORS]++;
    dropPkt(r, VP_DROP_INTERFACE_TX_DISCARD);
    return;
  }
  st[vif * VIFS_LEN + VIFS_TX_PACKETS]++;
  st[vif * VIFS_LEN + VIFS_TX_BYTES] += len;
  if (v.parent >= 0) {
    // A VLAN sub-interface sends through its parent, tagged with its outer VLAN (priority 0).
    if (len < 12 || len + 4 > r.vlanBuf.length) {
      st[vif * VIFS_LEN + VIFS_TX_ERRORS]++;
      dropPkt(r, VP_DROP_INTERFACE_TX_DISCARD);
      return;
    }
    // One copy of the frame, 4 bytes in, then the MACs moved over the gap: a single subarray (each
    // costs an allocation per frame), and a loop for the 12 bytes (cheaper than copyWithin's call).
    const t = r.vlanBuf;
    t.set(buf.subarray(off, off + len), 4);
    for (let i = 0; i < 12; i++) t[i] = t[i + 4];
    t[12] = 0x81;
    t[13] = 0x00;
    t[14] = (v.ovlan >> 8) & 0x0f;
    t[15] = v.ovlan & 0xff;
    vifTx(r, v.parent, t, 0, len + 4);
    return;
  }
  r.host.tx(vif, buf, off, len);
}
