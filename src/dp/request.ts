/**
 * What each agent request does to the datapath: the request handlers of the vRouter's dp-core
 * (vr_flow_req_process, vr_interface_add/delete, vr_nexthop_add, vr_route_add/delete, vr_bridge), which
 * the agent reaches through sandesh over netlink. Both ways in go through this one table: the datapath
 * thread (io/dp-worker.ts) decodes the ring's records (io/ring.ts) and calls it, and the in-thread
 * channel (agent/dp-channel.ts: replay, tests) calls it directly, so the two cannot drift apart.
 *
 * The host's part of a request (the fd a vif reads, the poll set) stays with the host; these functions
 * change only the router. Callers own the router (it has one writer: the thread the datapath runs in).
 * @module
 */
import { FlowReq, FlowResp, flowSet } from './flow';
import { VIFS_LEN, VIFS_RX_ERRORS, VIF_TYPE_HOST, VIF_TYPE_PHYSICAL, VIF_TYPE_VIRTUAL_VLAN, VLAN_ID_MAX, vifAdd, vifDelete, vifSetFatFlow } from './interface';
import { NH_TUNNEL, bridgeAdd, mplsAdd, nhAdd, nhMake, rtAdd, rtDelete, vxlanAdd } from './nexthop';
import { arpResolve } from './fabric';
import type { Router } from './router';

/** FLOW_SET (vr_flow_req_process). Fills and @returns `resp`. */
export function reqFlowSet(r: Router, q: FlowReq, resp: FlowResp): FlowResp {
  return flowSet(r, q, resp);
}

/**
 * VIF_ADD: a new vif, up, its counters zeroed. `mac` is copied (callers may reuse theirs). `ip`: the
 * fabric address of the physical vif and vhost0 (vifr_ip), which the datapath needs to tell tunnels
 * from the host's traffic.
 */
export function reqVifAdd(r: Router, idx: number, type: number, vrf: number, nh: number, flags: number, mtu: number, mac: Uint8Array, ip = 0): void {
  const old = r.vifs.vifs[idx];
  vifAdd(r.vifs, {
    idx, type, name: '', vrf, nh, flags, mtu, mac: Uint8Array.from(mac), up: true, ip: ip >>> 0,
    subVifs: type === VIF_TYPE_PHYSICAL ? old?.subVifs ?? null : null, // a re-added parent keeps its sub-interfaces
  });
  // The fabric NIC is the physical vif with the node's address (vhost0's peer); a physical vif without
  // one is vCenter mode's VMware NIC, the parent of the VMs' VLAN sub-interfaces.
  if (type === VIF_TYPE_PHYSICAL && ip !== 0) r.fabricVif = idx;
  if (type === VIF_TYPE_HOST) r.hostVif = idx;
}

/**
 * VIF_ADD of a VLAN sub-interface (vif --add … --vif PARENT --vlan I, vlan_sub_interface_init): frames
 * tagged `vlan` on `parent` become this vif's, and what it sends leaves on the parent tagged `ovlan`.
 * @returns 0, or −EINVAL (no such parent, a parent that is not a physical vif, VLAN out of range)
 * or −EEXIST (the parent's VLAN belongs to another sub-interface), as the module refuses them.
 */
export function reqSubVifAdd(r: Router, idx: number, parent: number, vlan: number, ovlan: number, vrf: number, nh: number, flags: number, mtu: number, mac: Uint8Array): number {
  const p = r.vifs.vifs[parent];
  // vlan_drv_add: only a physical vif's driver takes sub-interfaces.
  if (p === undefined || p.type !== VIF_TYPE_PHYSICAL || parent === idx) return -22;
  if (!(vlan >= 0 && vlan < VLAN_ID_MAX && ovlan >= 0 && ovlan < VLAN_ID_MAX)) return -22;
  const subs = p.subVifs ?? (p.subVifs = new Int16Array(VLAN_ID_MAX).fill(-1));
  if (subs[vlan] >= 0 && subs[vlan] !== idx) return -17;
  const old = r.vifs.vifs[idx];
  if (old && old.parent >= 0) r.vifs.vifs[old.parent]?.subVifs?.fill(-1, old.vlan, old.vlan + 1); // re-added on another VLAN
  vifAdd(r.vifs, { idx, type: VIF_TYPE_VIRTUAL_VLAN, name: '', vrf, nh, flags, mtu, mac: Uint8Array.from(mac), up: true, ip: 0, parent, vlan, ovlan, subVifs: null });
  subs[vlan] = idx;
  return 0;
}

/** VIF_DEL. A sub-interface leaves its parent's table; a parent's sub-interfaces stay (they go with their own VIF_DEL). */
export function reqVifDelete(r: Router, idx: number): void {
  const v = r.vifs.vifs[idx];
  const p = v && v.parent >= 0 ? r.vifs.vifs[v.parent] : undefined;
  if (v && p?.subVifs && p.subVifs[v.vlan] === idx) p.subVifs[v.vlan] = -1;
  vifDelete(r.vifs, idx);
  if (r.fabricVif === idx) r.fabricVif = -1;
  if (r.hostVif === idx) r.hostVif = -1;
}

/** VIF_ATTACH: the vif's OS interface is back; up again, counters kept. @returns false if there is no such vif. */
export function reqVifAttach(r: Router, idx: number): boolean {
  const vif = r.vifs.vifs[idx];
  if (vif === undefined) return false;
  vif.up = true;
  return true;
}

/** VIF_DETACH: the vif's OS interface is gone; the vif goes down, counted as a TAP's vanishing is (one RX error). */
export function reqVifDetach(r: Router, idx: number): void {
  const vif = r.vifs.vifs[idx];
  if (vif === undefined) return;
  if (vif.up) r.vifs.stats[idx * VIFS_LEN + VIFS_RX_ERRORS]++;
  vif.up = false;
}

/**
 * NH_ADD. `dmac` is copied. A TUNNEL's flags name its type and `sip`/`dip` its outer addresses (an
 * all-zero `dmac` is resolved by ARP on the fabric, asked for now); a VRF_TRANSLATE names `vrf`.
 */
export function reqNhAdd(r: Router, id: number, type: number, vif: number, dmac: Uint8Array, flags = 0, sip = 0, dip = 0, vrf = 0): void {
  const nh = nhMake(id, type, vif, Uint8Array.from(dmac), flags, sip >>> 0, dip >>> 0, vrf);
  nhAdd(r.rt, nh);
  if (type === NH_TUNNEL) arpResolve(r, nh);
}

/**
 * RT_ADD of a /32 (`ipWord`: the address's key word), with the label (or VNI) of a tunnel route and the
 * stitched MAC of a remote host known from the bridge table (copied), or −1 / null.
 */
export function reqRtAdd(r: Router, vrf: number, ipWord: number, nh: number, flags: number, label = -1, mac: Uint8Array | null = null): void {
  rtAdd(r.rt, vrf, ipWord, { nh, flags, label, mac: mac === null ? null : Uint8Array.from(mac) });
}

/** MPLS_ADD: the incoming label map (−1 removes). @returns false for a label beyond vr_mpls_labels. */
export function reqMplsAdd(r: Router, label: number, nh: number): boolean {
  return mplsAdd(r.rt, label, nh);
}

/** VXLAN_ADD: VNI → a VRF_TRANSLATE nexthop (−1 removes). */
export function reqVxlanAdd(r: Router, vni: number, nh: number): void {
  vxlanAdd(r.rt, vni, nh);
}

/** RT_DEL. */
export function reqRtDelete(r: Router, vrf: number, ipWord: number): void {
  rtDelete(r.rt, vrf, ipWord);
}

/** BRIDGE_ADD of a local MAC on `vif`, or (vif −1) a remote one behind tunnel `nh` with `label` (the table keeps a key made from `mac`, not `mac`). */
export function reqBridgeAdd(r: Router, vrf: number, mac: Uint8Array, vif: number, nh = -1, label = -1): void {
  bridgeAdd(r.rt, vrf, mac, vif, nh, label);
}

/** VIF_FAT: the vif's whole fat-flow rule set ((proto << 16) | port; copied), and the router's count of vifs with any. */
export function reqVifFatFlow(r: Router, idx: number, rules: ArrayLike<number>): void {
  r.fatFlowVifs += vifSetFatFlow(r.vifs, idx, rules);
}
