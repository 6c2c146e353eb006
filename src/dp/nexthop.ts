/**
 * Nexthops, routes and the bridge table (dp-core/vr_nexthop.c, vr_route.c/mtrie, vr_bridge.c at R2.22;
 * reference §9). The agent programs them; the datapath only reads them. A compute node has a handful of
 * each per VM, so they are plain objects in arrays and Maps, not shared memory.
 *
 * Routes are /32 host routes per VRF (the VM and gateway addresses the agent installs), keyed by the
 * address's key word (the IP's 4 bytes read little-endian, as in the flow key). Route label flags:
 * PROXY (answer ARP with the vRouter MAC), FLOOD.
 * @module
 */

// Nexthop types, include/vr_nexthop.h.
export const NH_DEAD = 0;
export const NH_RCV = 1;
export const NH_ENCAP = 2;
export const NH_TUNNEL = 3;
export const NH_RESOLVE = 4;
export const NH_DISCARD = 5;
export const NH_COMPOSITE = 6;
export const NH_VRF_TRANSLATE = 7;
export const NH_L2_RCV = 8;

// Nexthop flags (include/vr_nexthop.h NH_FLAG_*, R2.x numbering): the tunnel type of a TUNNEL nexthop.
export const NH_FLAG_VALID = 0x1;
export const NH_FLAG_POLICY_ENABLED = 0x2;
export const NH_FLAG_ENCAP_L2 = 0x4;
export const NH_FLAG_TUNNEL_GRE = 0x8;
export const NH_FLAG_TUNNEL_UDP = 0x10;
export const NH_FLAG_MCAST = 0x20;
export const NH_FLAG_TUNNEL_UDP_MPLS = 0x40;
export const NH_FLAG_TUNNEL_VXLAN = 0x80;

// Route label flags (include/vr_defs.h VR_RT_*_FLAG).
export const VR_RT_ARP_PROXY_FLAG = 0x2;
export const VR_RT_ARP_TRAP_FLAG = 0x4;
export const VR_RT_ARP_FLOOD_FLAG = 0x8;

export interface Nexthop {
  readonly id: number;
  readonly type: number;
  /** Output vif (ENCAP; the fabric vif of a TUNNEL). */
  readonly vif: number;
  /**
   * Destination MAC of the rewrite: the VM's MAC for an interface NH; for a TUNNEL the MAC of its
   * destination on the fabric, all-zero until ARP resolves it (see dp/fabric.ts).
   */
  readonly dmac: Uint8Array;
  /** NH_FLAG_* (the tunnel type of a TUNNEL). */
  readonly flags: number;
  /** TUNNEL: outer source and destination addresses (numbers, a<<24|…). */
  readonly sip: number;
  readonly dip: number;
  /** VRF_TRANSLATE (the VXLAN table's nexthops): the VRF the inner frame is bridged in. */
  readonly vrf: number;
  /** TUNNEL: when the datapath last asked the fabric for dip's MAC (monotonic ms), −∞ never. */
  arpAt: number;
}

export interface Route {
  readonly nh: number;
  readonly flags: number;
  /** The MPLS label (or VNI for a VXLAN tunnel) the route's tunnel carries; −1 for a local route. */
  readonly label: number;
  /**
   * The destination's own MAC when the route is stitched (a bridge entry knows it): ARP from a VM is
   * answered with it, and a routed frame sent over VXLAN carries it as the inner destination.
   */
  readonly mac: Uint8Array | null;
}

/** A bridge-table entry: a local vif, or (vif −1) a tunnel nexthop and its label / VNI. */
export interface BridgeEntry {
  readonly vif: number;
  readonly nh: number;
  readonly label: number;
}

export interface RouteTables {
  readonly nhs: (Nexthop | undefined)[];
  /** Per VRF: IP key word → route. */
  readonly routes: Map<number, Map<number, Route>>;
  /** Per VRF: MAC (48-bit number) → entry (the agent's bridge entries: its VMs, remote MACs). */
  readonly bridge: Map<number, Map<number, BridgeEntry>>;
  /** The incoming label map (vr_mpls_labels entries): label → nexthop id, −1 none. */
  readonly labels: Int32Array;
  /** The VXLAN table: VNI → nexthop id (a VRF_TRANSLATE nexthop naming the VRF). */
  readonly vxlan: Map<number, number>;
  /** TUNNEL nexthops by destination address, for ARP resolution. */
  readonly tunnels: Nexthop[];
}

/** A nexthop with only the fields most types use. */
export function nhMake(id: number, type: number, vif: number, dmac: Uint8Array, flags = 0, sip = 0, dip = 0, vrf = 0): Nexthop {
  return { id, type, vif, dmac, flags, sip, dip, vrf, arpAt: -Infinity };
}

export function routeTablesCreate(mplsLabels = 5120): RouteTables {
  // Nexthop 0 is the discard nexthop, as in the module.
  return {
    nhs: [nhMake(0, NH_DISCARD, -1, new Uint8Array(6))], routes: new Map(), bridge: new Map(),
    labels: new Int32Array(mplsLabels).fill(-1), vxlan: new Map(), tunnels: [],
  };
}

export function nhAdd(t: RouteTables, nh: Nexthop): void {
  const old = t.nhs[nh.id];
  if (old?.type === NH_TUNNEL) t.tunnels.splice(t.tunnels.indexOf(old), 1);
  t.nhs[nh.id] = nh;
  if (nh.type === NH_TUNNEL) t.tunnels.push(nh);
}

/** MPLS_ADD: label → nexthop (−1 removes). @returns false for a label outside the table. */
export function mplsAdd(t: RouteTables, label: number, nh: number): boolean {
  if (label < 0 || label >= t.labels.length) return false;
  t.labels[label] = nh;
  return true;
}

/** VXLAN_ADD: VNI → nexthop (−1 removes). */
export function vxlanAdd(t: RouteTables, vni: number, nh: number): void {
  if (nh < 0) t.vxlan.delete(vni);
  else t.vxlan.set(vni, nh);
}

export function rtAdd(t: RouteTables, vrf: number, ipWord: number, route: Route): void {
  let m = t.routes.get(vrf);
  if (!m) t.routes.set(vrf, (m = new Map()));
  m.set(ipWord | 0, route);
}

export function rtDelete(t: RouteTables, vrf: number, ipWord: number): void {
  t.routes.get(vrf)?.delete(ipWord | 0);
}

/** The route of a /32 (key word), or undefined. */
export function rtLookup(t: RouteTables, vrf: number, ipWord: number): Route | undefined {
  return t.routes.get(vrf)?.get(ipWord | 0);
}

/** A MAC in 6 bytes at `off` as one number (for Map keys). */
export function macKey(b: Uint8Array, off: number): number {
  return (b[off] * 2 ** 40) + (b[off + 1] * 2 ** 32) + ((b[off + 2] << 24) >>> 0) + (b[off + 3] << 16) + (b[off + 4] << 8) + b[off + 5];
}

/** A local MAC on `vif`, or with vif −1 a remote one behind tunnel nexthop `nh` with `label`; vif and nh −1 remove it. */
export function bridgeAdd(t: RouteTables, vrf: number, mac: Uint8Array, vif: number, nh = -1, label = -1): void {
  if (vif < 0 && nh < 0) {
    t.bridge.get(vrf)?.delete(macKey(mac, 0));
    return;
  }
  let m = t.bridge.get(vrf);
  if (!m) t.bridge.set(vrf, (m = new Map()));
  m.set(macKey(mac, 0), { vif, nh, label });
}

/** The local vif owning the MAC at b[off], or −1 (none, or a remote MAC). */
export function bridgeLookup(t: RouteTables, vrf: number, b: Uint8Array, off: number): number {
  const e = t.bridge.get(vrf)?.get(macKey(b, off));
  return e === undefined ? -1 : e.vif;
}

/** The bridge entry of the MAC at b[off], or undefined. */
export function bridgeEntry(t: RouteTables, vrf: number, b: Uint8Array, off: number): BridgeEntry | undefined {
  return t.bridge.get(vrf)?.get(macKey(b, off));
}
