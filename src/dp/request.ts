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
import { VIFS_LEN, VIFS_RX_ERRORS, vifAdd, vifDelete, vifSetFatFlow } from './interface';
import { bridgeAdd, nhAdd, rtAdd, rtDelete } from './nexthop';
import type { Router } from './router';

/** FLOW_SET (vr_flow_req_process). Fills and @returns `resp`. */
export function reqFlowSet(r: Router, q: FlowReq, resp: FlowResp): FlowResp {
  return flowSet(r, q, resp);
}

/** VIF_ADD: a new vif, up, its counters zeroed. `mac` is copied (callers may reuse theirs). */
export function reqVifAdd(r: Router, idx: number, type: number, vrf: number, nh: number, flags: number, mtu: number, mac: Uint8Array): void {
  vifAdd(r.vifs, { idx, type, name: '', vrf, nh, flags, mtu, mac: Uint8Array.from(mac), up: true });
}

/** VIF_DEL. */
export function reqVifDelete(r: Router, idx: number): void {
  vifDelete(r.vifs, idx);
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

/** NH_ADD. `dmac` is copied. */
export function reqNhAdd(r: Router, id: number, type: number, vif: number, dmac: Uint8Array): void {
  nhAdd(r.rt, { id, type, vif, dmac: Uint8Array.from(dmac) });
}

/** RT_ADD of a /32 (`ipWord`: the address's key word). */
export function reqRtAdd(r: Router, vrf: number, ipWord: number, nh: number, flags: number): void {
  rtAdd(r.rt, vrf, ipWord, { nh, flags });
}

/** RT_DEL. */
export function reqRtDelete(r: Router, vrf: number, ipWord: number): void {
  rtDelete(r.rt, vrf, ipWord);
}

/** BRIDGE_ADD (the table keeps a key made from `mac`, not `mac`). */
export function reqBridgeAdd(r: Router, vrf: number, mac: Uint8Array, vif: number): void {
  bridgeAdd(r.rt, vrf, mac, vif);
}

/** VIF_FAT: the vif's whole fat-flow rule set ((proto << 16) | port; copied), and the router's count of vifs with any. */
export function reqVifFatFlow(r: Router, idx: number, rules: ArrayLike<number>): void {
  r.fatFlowVifs += vifSetFatFlow(r.vifs, idx, rules);
}
