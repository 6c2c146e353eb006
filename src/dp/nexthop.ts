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

// Route label flags (include/vr_defs.h VR_RT_*_FLAG).
export const VR_RT_ARP_PROXY_FLAG = 0x2;
export const VR_RT_ARP_TRAP_FLAG = 0x4;
export const VR_RT_ARP_FLOOD_FLAG = 0x8;

export interface Nexthop {
  readonly id: number;
  readonly type: number;
  /** Output vif (ENCAP). */
  readonly vif: number;
  /** Destination MAC of the rewrite (the VM's MAC for an interface NH). */
  readonly dmac: Uint8Array;
}

export interface Route {
  readonly nh: number;
  readonly flags: number;
}

export interface RouteTables {
  readonly nhs: (Nexthop | undefined)[];
  /** Per VRF: IP key word → route. */
  readonly routes: Map<number, Map<number, Route>>;
  /** Per VRF: MAC (48-bit number) → vif (the agent's bridge entries for its VMs). */
  readonly bridge: Map<number, Map<number, number>>;
}

export function routeTablesCreate(): RouteTables {
  // Nexthop 0 is the discard nexthop, as in the module.
  return { nhs: [{ id: 0, type: NH_DISCARD, vif: -1, dmac: new Uint8Array(6) }], routes: new Map(), bridge: new Map() };
}

export function nhAdd(t: RouteTables, nh: Nexthop): void {
  t.nhs[nh.id] = nh;
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

export function bridgeAdd(t: RouteTables, vrf: number, mac: Uint8Array, vif: number): void {
  let m = t.bridge.get(vrf);
  if (!m) t.bridge.set(vrf, (m = new Map()));
  m.set(macKey(mac, 0), vif);
}

export function bridgeLookup(t: RouteTables, vrf: number, b: Uint8Array, off: number): number {
  const v = t.bridge.get(vrf)?.get(macKey(b, off));
  return v === undefined ? -1 : v;
}
