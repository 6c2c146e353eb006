/**
 * Virtual interfaces (dp-core/vr_interface.c, include/vr_interface.h at R2.22): the vif table and its
 * per-vif counters. Numbering as the module: vif0/0 physical, vif0/1 vhost0, vif0/2 pkt0 (the agent),
 * VM interfaces from vif0/3. A handful of vifs per router, so each is a plain object; their counters
 * live in one shared Float64Array so the CLI can read them from another thread.
 * @module
 */

// VIF_TYPE_*, include/vr_interface.h.
export const VIF_TYPE_HOST = 0;
export const VIF_TYPE_AGENT = 1;
export const VIF_TYPE_PHYSICAL = 2;
export const VIF_TYPE_VIRTUAL = 3;
export const VIF_TYPE_GATEWAY = 5;
export const VIF_TYPE_VIRTUAL_VLAN = 6;
export const VIF_TYPE_NAMES = ['Host', 'Agent', 'Physical', 'Virtual', 'XenLL', 'Gateway', 'Virtual(Vlan)', 'Stats', 'Monitoring'] as const;

// VIF_FLAG_*, include/vr_interface.h (the order of the `vif --list` legend).
export const VIF_FLAG_POLICY_ENABLED = 0x1;
export const VIF_FLAG_XCONNECT = 0x2;
export const VIF_FLAG_SERVICE_IF = 0x4;
export const VIF_FLAG_MIRROR_RX = 0x8;
export const VIF_FLAG_MIRROR_TX = 0x10;
export const VIF_FLAG_TX_CSUM_OFFLOAD = 0x20;
export const VIF_FLAG_L3_ENABLED = 0x40;
export const VIF_FLAG_L2_ENABLED = 0x80;
export const VIF_FLAG_DHCP_ENABLED = 0x100;

/** VLAN_ID_MAX: 12-bit VLAN ids; a parent's sub-interface table has this many slots. */
export const VLAN_ID_MAX = 4096;

/** VR_MAX_INTERFACES (256 + 4096). */
export const VR_MAX_INTERFACES = 4352;

// Per-vif counters, VIFS_* slots of the shared block.
export const VIFS_RX_PACKETS = 0;
export const VIFS_RX_BYTES = 1;
export const VIFS_RX_ERRORS = 2;
export const VIFS_TX_PACKETS = 3;
export const VIFS_TX_BYTES = 4;
export const VIFS_TX_ERRORS = 5;
export const VIFS_LEN = 8;

export interface Vif {
  readonly idx: number;
  readonly type: number;
  /** OS interface name (vifr_name), e.g. "tap1a2b3c4d" or "pkt0". */
  readonly name: string;
  vrf: number;
  /** vif_nh_id: the interface nexthop the agent assigned; the flow key's nh for packets from this vif. */
  nh: number;
  flags: number;
  mtu: number;
  /** MAC of the vif (the vRouter's 00:00:5e:00:01:00 for VM interfaces). */
  mac: Uint8Array;
  /** Up (false once the OS interface vanished). */
  up: boolean;
  /** Fat-flow list ((proto << 16) | port, vifr_fat_flow_protocol_port), or null. */
  fatFlow?: Int32Array | null;
  /** vifr_ip: the fabric address on the physical vif and vhost0 (a number, a<<24|…), 0 elsewhere. */
  ip: number;
  /**
   * A VLAN sub-interface (VIF_TYPE_VIRTUAL_VLAN): its parent vif (vifr_parent_vif_idx), the VLAN its
   * frames arrive with on the parent (vifr_vlan_id, "i") and the one it sends with (vifr_ovlan_id, "o").
   * −1 on other vifs.
   */
  parent: number;
  vlan: number;
  ovlan: number;
  /** A parent's sub-interfaces by VLAN (vif_sub_interfaces), vif index or −1; null until one is added. */
  subVifs: Int16Array | null;
}

export interface VifTable {
  readonly vifs: (Vif | undefined)[];
  readonly statsSab: SharedArrayBuffer;
  readonly stats: Float64Array;
}

/** A vif table whose counters live in `statsSab` (fresh when not given). */
export function vifTableCreate(statsSab = new SharedArrayBuffer(VR_MAX_INTERFACES * VIFS_LEN * 8)): VifTable {
  return { vifs: [], statsSab, stats: new Float64Array(statsSab) };
}

/** What a vif is made from: the VLAN fields default to none (−1, no sub-interfaces). */
export type VifInit = Omit<Vif, 'parent' | 'vlan' | 'ovlan' | 'subVifs'> & Partial<Pick<Vif, 'parent' | 'vlan' | 'ovlan' | 'subVifs'>>;

/** Add (or replace) a vif. @throws RangeError for an index outside 0..VR_MAX_INTERFACES−1. */
export function vifAdd(t: VifTable, init: VifInit): void {
  if (init.idx < 0 || init.idx >= VR_MAX_INTERFACES) throw new RangeError(`vif index ${init.idx} out of range`);
  const v: Vif = { parent: -1, vlan: -1, ovlan: -1, subVifs: null, ...init };
  t.vifs[v.idx] = v;
  t.stats.fill(0, v.idx * VIFS_LEN, (v.idx + 1) * VIFS_LEN);
}

export function vifDelete(t: VifTable, idx: number): void {
  t.vifs[idx] = undefined;
}

/** Parse "aa:bb:cc:dd:ee:ff"; undefined if malformed. */
export function macParse(s: string): Uint8Array | undefined {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(s);
  if (!m) return undefined;
  return Uint8Array.from(m.slice(1).map((x) => parseInt(x, 16)));
}

export function macString(m: Uint8Array): string {
  return Array.from(m, (x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Set a vif's fat-flow list ((proto << 16) | port entries); keeps `count` of vifs with one in step. */
export function vifSetFatFlow(t: VifTable, idx: number, rules: ArrayLike<number>): number {
  const v = t.vifs[idx];
  if (v === undefined) return 0;
  const had = v.fatFlow && v.fatFlow.length > 0 ? 1 : 0;
  v.fatFlow = rules.length > 0 ? Int32Array.from(rules) : null;
  return (rules.length > 0 ? 1 : 0) - had;
}
