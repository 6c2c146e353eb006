/**
 * The packet path of a VM interface (dp-core/vr_datapath.c vr_virtual_input, vr_proto_ip.c, vr_bridge.c
 * at R2.22; reference §4.1, §9):
 *
 *   vif rx → Ethernet → ARP: proxy for the gateway and the VMs, else flood (vm_arp_request)
 *                    → IPv4 unicast: flow lookup on policy-enabled vifs → action → L3 (dst MAC = vRouter
 *                      MAC: /32 route → TTL − 1 → rewrite → tx) or bridge (dst MAC = a VM's)
 *                    → IPv4 multicast/broadcast, IPv6, other ethertypes: bridged without flows (IPv6 has no
 *                      flows in R2.22): flood or the VM owning the destination MAC
 *
 * The offline replay runs with `routing` off: after the flow stage the packet is only counted.
 * @module
 */
import {
  ETH_HLEN,
  IPPROTO_ICMP,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  ETH_P_8021Q,
  ETH_P_ARP,
  ETH_P_IP,
  VP_DROP_ARP_NO_WHERE_TO_GO,
  VP_DROP_DISCARD,
  VP_DROP_INTERFACE_DROP,
  VP_DROP_INVALID_ARP,
  VP_DROP_INVALID_IF,
  VP_DROP_INVALID_NH,
  VP_DROP_L2_NO_ROUTE,
  VP_DROP_NOWHERE_TO_GO,
  VP_DROP_TTL_EXCEEDED,
} from './defs';
import { FLOW_FORWARD, flowLookup, routerDrainWork } from './flow';
import {
  VIFS_RX_BYTES,
  VIFS_RX_ERRORS,
  VIFS_RX_PACKETS,
  VIFS_LEN,
  VIF_FLAG_POLICY_ENABLED,
  VIF_TYPE_GATEWAY,
  VIF_TYPE_HOST,
  VIF_TYPE_PHYSICAL,
  VIF_TYPE_VIRTUAL,
  VIF_TYPE_VIRTUAL_VLAN,
  Vif,
} from './interface';
import { NH_ENCAP, NH_FLAG_TUNNEL_VXLAN, NH_TUNNEL, VR_RT_ARP_PROXY_FLAG, bridgeEntry, bridgeLookup, rtLookup } from './nexthop';
import { DECAP_DROPPED, DECAP_L3, DECAP_XCONNECT, fabricDecap, tunnelTx } from './fabric';
import { csumUpdate } from './csum';
import { Pkt, rd16, rdLe32 } from './pkt';
import { KEY_OK, fatFlowReduce, flowKeyBuild, ipParse } from './proto-ip';
import { DpConfig, HostOs, RES_FORWARDED, RES_NO_FLOW, Router, RouterShared, createRouter, dropPkt, vifTx } from './router';
import type { ModuleParams } from '../params/module-params';

/** Create a router whose forwarding stage is the datapath's (vrouter_init + the datapath's module init). */
export function createDatapath(host: HostOs, params: ModuleParams, cfg: Partial<DpConfig> = {}, shared?: RouterShared): Router {
  const r = createRouter(host, params, cfg, shared);
  r.reinject = r.cfg.routing ? dpForward : dpCount;
  return r;
}

/** The forwarding stage of a host without routes (offline replay): count the packet. */
function dpCount(r: Router, _pkt: Pkt): void {
  r.results[RES_FORWARDED]++;
}

export { vifTx };

/** Copy a frame to every other up VM interface of the VRF (L2 flood). @returns how many got it. */
function dpFlood(r: Router, pkt: Pkt): number {
  let n = 0;
  const vifs = r.vifs.vifs;
  for (let i = 0; i < vifs.length; i++) {
    const v = vifs[i];
    if (v === undefined || i === pkt.vif || v.vrf !== pkt.vrf || (v.type !== VIF_TYPE_VIRTUAL && v.type !== VIF_TYPE_VIRTUAL_VLAN && v.type !== VIF_TYPE_GATEWAY) || !v.up) continue;
    vifTx(r, i, pkt.buf, pkt.off, pkt.len);
    n++;
  }
  return n;
}

/** Bridge a frame by its destination MAC (vr_bridge_input): flood broadcast/multicast, else the owner. */
function dpBridge(r: Router, pkt: Pkt): void {
  const b = pkt.buf;
  if (b[pkt.off] & 1) {
    dpFlood(r, pkt);
    r.results[RES_FORWARDED]++;
    return;
  }
  const e = bridgeEntry(r.rt, pkt.vrf, b, pkt.off);
  if (e !== undefined && e.vif < 0 && pkt.tun === 0) {
    // A remote MAC: bridged through its tunnel (VXLAN) with the network's VNI.
    const nh = r.rt.nhs[e.nh];
    if (nh === undefined) dropPkt(r, VP_DROP_INVALID_NH);
    else if (tunnelTx(r, pkt, nh, e.label, true, null)) r.results[RES_FORWARDED]++;
    return;
  }
  const to = e === undefined ? -1 : e.vif;
  if (to < 0 || to === pkt.vif) {
    dropPkt(r, VP_DROP_L2_NO_ROUTE);
    return;
  }
  vifTx(r, to, b, pkt.off, pkt.len);
  r.results[RES_FORWARDED]++;
}

/** Whether the frame's destination MAC is the ingress vif's own (the vRouter MAC): L3 then. */
function toRouterMac(pkt: Pkt, v: Vif): boolean {
  const b = pkt.buf;
  const o = pkt.off;
  const m = v.mac;
  return b[o] === m[0] && b[o + 1] === m[1] && b[o + 2] === m[2] && b[o + 3] === m[3] && b[o + 4] === m[4] && b[o + 5] === m[5];
}

/**
 * The forwarding stage after the flow said FORWARD (or for packets without flows): L3 for frames to the
 * vRouter MAC — the /32 route in the packet's VRF, TTL decremented with an incremental checksum, the
 * Ethernet header rewritten (vRouter MAC → the VM's MAC), sent on the nexthop's vif — else bridged.
 */
function dpForward(r: Router, pkt: Pkt): void {
  if (pkt.outNh >= 0) {
    fabricDeliver(r, pkt);
    return;
  }
  const v = r.vifs.vifs[pkt.vif] as Vif;
  // A flow with VRFT routes in its destination VRF whatever the MAC ("to me").
  if (pkt.fwdVrf < 0 && !toRouterMac(pkt, v)) {
    dpBridge(r, pkt);
    return;
  }
  const b = pkt.buf;
  const l3 = pkt.off + ETH_HLEN;
  const route = rtLookup(r.rt, pkt.fwdVrf >= 0 ? pkt.fwdVrf : pkt.vrf, rdLe32(b, l3 + 16));
  if (route === undefined) {
    dropPkt(r, VP_DROP_DISCARD);
    return;
  }
  const nh = r.rt.nhs[route.nh];
  if (nh === undefined || (nh.type !== NH_ENCAP && nh.type !== NH_TUNNEL)) {
    dropPkt(r, nh === undefined ? VP_DROP_INVALID_NH : VP_DROP_DISCARD);
    return;
  }
  const ttl = b[l3 + 8];
  if (ttl <= 1) {
    dropPkt(r, VP_DROP_TTL_EXCEEDED);
    return;
  }
  // TTL − 1 and the header checksum updated for the changed word (RFC 1624).
  b[l3 + 8] = ttl - 1;
  csumUpdate(b, l3 + 10, ttl << 8, (ttl - 1) << 8);
  if (nh.type === NH_TUNNEL) {
    // A remote destination: MPLS with the route's label, or VXLAN re-addressed to its stitched MAC.
    if (tunnelTx(r, pkt, nh, route.label, false, route.mac)) r.results[RES_FORWARDED]++;
    return;
  }
  const out = r.vifs.vifs[nh.vif];
  b.set(nh.dmac, pkt.off);
  b.set(out ? out.mac : v.mac, pkt.off + 6);
  vifTx(r, nh.vif, b, pkt.off, pkt.len);
  r.results[RES_FORWARDED]++;
}

/** An Ethernet/IPv4 ARP packet (htype 1, ptype IPv4, lengths 6 and 4) of full length. */
function arpValid(pkt: Pkt): boolean {
  const b = pkt.buf;
  const a = pkt.off + ETH_HLEN;
  return pkt.len >= ETH_HLEN + 28 && rd16(b, a) === 1 && rd16(b, a + 2) === ETH_P_IP && b[a + 4] === 6 && b[a + 5] === 4;
}

/**
 * Turn an ARP request into its reply in place: Ethernet dst = the requester, src = `mac`; ARP op 2,
 * sha = `mac`, spa = the asked address (`tpa`, as a key word), tha/tpa = the requester.
 */
function arpReplyInPlace(pkt: Pkt, mac: Uint8Array, tpa: number): void {
  const b = pkt.buf;
  const a = pkt.off + ETH_HLEN;
  b.copyWithin(pkt.off, a + 8, a + 14); // eth dst = sha
  b.set(mac, pkt.off + 6);
  b[a + 7] = 2;
  b.copyWithin(a + 18, a + 8, a + 18); // tha/tpa = sha/spa
  b.set(mac, a + 8);
  b[a + 14] = tpa & 0xff;
  b[a + 15] = (tpa >>> 8) & 0xff;
  b[a + 16] = (tpa >>> 16) & 0xff;
  b[a + 17] = tpa >>> 24;
}

/**
 * ARP from a VM (vm_arp_request): a request for an address whose route carries the proxy flag (the
 * gateway, the VMs) is answered in place with the vif's MAC (00:00:5e:00:01:00); a gratuitous ARP or a
 * request for anything else is flooded to the VRF's other VMs; a reply goes to the VM whose MAC it names.
 */
function arpInput(r: Router, pkt: Pkt, v: Vif): void {
  const b = pkt.buf;
  const a = pkt.off + ETH_HLEN;
  if (!arpValid(pkt)) {
    dropPkt(r, VP_DROP_INVALID_ARP);
    return;
  }
  const op = rd16(b, a + 6);
  const spa = rdLe32(b, a + 14);
  const tpa = rdLe32(b, a + 24);
  if (op === 1) {
    if (spa === tpa) {
      dpFlood(r, pkt); // gratuitous ARP
      r.results[RES_NO_FLOW]++;
      return;
    }
    const route = rtLookup(r.rt, v.vrf, tpa);
    if (route === undefined || (route.flags & VR_RT_ARP_PROXY_FLAG) === 0) {
      dpFlood(r, pkt);
      r.results[RES_NO_FLOW]++;
      return;
    }
    // The reply, built in place: Ethernet dst = requester, src = the answer; ARP op 2, sha = the
    // answer, spa = the asked address, tha/tpa = the requester. The answer is the vif MAC, or for a
    // stitched route (a remote host reached by VXLAN) that host's own MAC.
    arpReplyInPlace(pkt, route.mac ?? v.mac, tpa);
    vifTx(r, pkt.vif, b, pkt.off, pkt.len);
    r.results[RES_NO_FLOW]++;
    return;
  }
  if (op === 2) {
    const to = bridgeLookup(r.rt, v.vrf, b, pkt.off);
    if (to < 0 || to === pkt.vif) {
      dropPkt(r, VP_DROP_ARP_NO_WHERE_TO_GO);
      return;
    }
    vifTx(r, to, b, pkt.off, pkt.len);
    r.results[RES_NO_FLOW]++;
    return;
  }
  dropPkt(r, VP_DROP_INVALID_ARP);
}

/**
 * Receive one Ethernet frame on vif `vifIdx` (vif_rx → vr_virtual_input).
 * The frame is processed to completion (or held); `buf` may be reused once the burst ends.
 */
export function dpRx(r: Router, vifIdx: number, buf: Uint8Array, off: number, len: number): void {
  const v = r.vifs.vifs[vifIdx];
  if (v === undefined || !v.up) {
    dropPkt(r, VP_DROP_INVALID_IF);
    return;
  }
  if (v.subVifs !== null && len >= ETH_HLEN + 4 && rd16(buf, off + 12) === ETH_P_8021Q) {
    // A parent (trunk) vif: a frame tagged with a sub-interface's VLAN is that sub-interface's, untagged
    // (vm_rx → vif_sub_interfaces[vlan]->vif_rx). The MACs move over the tag, in place.
    const sub = v.subVifs[rd16(buf, off + 14) & 0xfff];
    if (sub >= 0) {
      buf.copyWithin(off + 4, off, off + 12);
      dpRx(r, sub, buf, off + 4, len - 4);
      return;
    }
  }
  const st = r.vifs.stats;
  const sb = vifIdx * VIFS_LEN;
  st[sb + VIFS_RX_PACKETS]++;
  st[sb + VIFS_RX_BYTES] += len;
  if (v.type === VIF_TYPE_PHYSICAL && vifIdx !== r.fabricVif) {
    // vCenter mode's VMware NIC (a physical vif without vhost0 as its peer): what no sub-interface
    // claimed — untagged, or a VLAN no port has — takes the fabric path in the module and, having no
    // vhost to be cross-connected to, ends there (vif_xconnect → vif_drop_pkt).
    st[sb + VIFS_RX_ERRORS]++;
    dropPkt(r, VP_DROP_INTERFACE_DROP);
    return;
  }
  if (len < ETH_HLEN) {
    // vr_pkt_type fails on a frame shorter than an Ethernet header: vif_drop_pkt.
    st[sb + VIFS_RX_ERRORS]++;
    dropPkt(r, VP_DROP_INTERFACE_DROP);
    return;
  }
  const pkt = r.pkt;
  pkt.buf = buf;
  pkt.off = off;
  pkt.len = len;
  pkt.vif = vifIdx;
  pkt.vrf = v.vrf;
  pkt.nh = v.nh;
  pkt.flowIdx = -1;
  pkt.fwdVrf = -1;
  pkt.k1 = 0;
  pkt.tun = 0;
  pkt.outNh = -1;
  pkt.tunL2 = false;
  if (v.type === VIF_TYPE_PHYSICAL) {
    fabricRx(r, pkt);
    return;
  }
  if (v.type === VIF_TYPE_HOST) {
    // vhost0 → the physical NIC (vif_xconnect): the host's own traffic on the fabric.
    r.results[RES_NO_FLOW]++;
    if (r.fabricVif >= 0) vifTx(r, r.fabricVif, buf, off, len);
    else dropPkt(r, VP_DROP_INVALID_IF);
    return;
  }
  const ethType = rd16(buf, off + 12);
  if (ethType === ETH_P_8021Q) {
    if (len < ETH_HLEN + 4) {
      st[sb + VIFS_RX_ERRORS]++;
      dropPkt(r, VP_DROP_INTERFACE_DROP);
      return;
    }
    // Tagged frames on a VM vif that is not a service interface take the bridge path, without flows.
    r.results[RES_NO_FLOW]++;
    if (r.cfg.routing) dpBridge(r, pkt);
    return;
  }
  if (ethType === ETH_P_ARP && r.cfg.routing) {
    arpInput(r, pkt, v);
    return;
  }
  if (ethType !== ETH_P_IP) {
    // IPv6 (no flows for IPv6 in R2.22), ARP offline and other ethertypes: bridged without flows.
    r.results[RES_NO_FLOW]++;
    if (r.cfg.routing) dpBridge(r, pkt);
    return;
  }
  ipInput(r, pkt, (v.flags & VIF_FLAG_POLICY_ENABLED) !== 0);
}

/**
 * IPv4 unicast (vr_ip_input → vr_flow_inet_input): the flow stage when `policy` (the vif, or for a
 * packet from the fabric the interface its label chose, has policy enabled), then forwarding.
 */
function ipInput(r: Router, pkt: Pkt, policy: boolean): void {
  const buf = pkt.buf;
  pkt.l3 = pkt.off + ETH_HLEN;
  const perr = ipParse(pkt);
  if (perr !== KEY_OK) {
    dropPkt(r, perr);
    return;
  }
  if (buf[pkt.l3 + 16] >= 224 || !policy) {
    // Multicast/broadcast destinations skip the flow lookup, and so does a vif without policy.
    r.results[RES_NO_FLOW]++;
    if (r.cfg.routing) {
      if (buf[pkt.l3 + 16] >= 224) dpBridge(r, pkt);
      else r.reinject(r, pkt);
    }
    return;
  }
  const kerr = flowKeyBuild(pkt, r.frags, r.host.monoMs());
  if (kerr !== KEY_OK) {
    dropPkt(r, kerr);
    return;
  }
  if (r.fatFlowVifs > 0) dpFatFlow(r, pkt, r.vifs.vifs[pkt.vif] as Vif);
  if (flowLookup(r, pkt) === FLOW_FORWARD) r.reinject(r, pkt);
}

// ---------------------------------------------------------------------------------------------------
// From the fabric (the physical vif): tunnels in, the host's traffic to vhost0.

/** vhost0's part of the physical vif (vif_xconnect): what is not a tunnel goes to the host's stack. */
function toVhost(r: Router, pkt: Pkt): void {
  r.results[RES_NO_FLOW]++;
  if (r.hostVif >= 0) vifTx(r, r.hostVif, pkt.buf, pkt.off, pkt.len);
  else dropPkt(r, VP_DROP_NOWHERE_TO_GO);
}

function fabricRx(r: Router, pkt: Pkt): void {
  const verdict = fabricDecap(r, pkt);
  if (verdict === DECAP_XCONNECT) {
    toVhost(r, pkt);
    return;
  }
  if (verdict === DECAP_DROPPED) return;
  if (verdict === DECAP_L3) {
    // An L3 label: the interface it names has policy → flows, keyed with that interface's nexthop.
    const nh = r.rt.nhs[pkt.outNh];
    const out = nh === undefined ? undefined : r.vifs.vifs[nh.vif];
    ipInput(r, pkt, out !== undefined && (out.flags & VIF_FLAG_POLICY_ENABLED) !== 0);
    return;
  }
  // VXLAN: the inner frame is bridged in the VNI's VRF (vr_bridge_input from the fabric).
  const b = pkt.buf;
  const o = pkt.off;
  const et = rd16(b, o + 12);
  if (et === ETH_P_ARP) {
    fabricArp(r, pkt);
    return;
  }
  if (b[o] & 1) {
    // Broadcast and multicast go to the VRF's VMs on this node (no multicast tree here).
    dpFlood(r, pkt);
    r.results[RES_NO_FLOW]++;
    return;
  }
  const e = bridgeEntry(r.rt, pkt.vrf, b, o);
  let target = e !== undefined && e.vif >= 0 ? r.vifs.vifs[e.vif] : undefined;
  if (target === undefined && toVrMac(b, o) && et === ETH_P_IP && pkt.len >= ETH_HLEN + 20) {
    // To the vRouter MAC: routed to the VM the inner destination names (L2_RCV → L3), rewritten.
    const route = rtLookup(r.rt, pkt.vrf, rdLe32(b, o + ETH_HLEN + 16));
    const nh = route === undefined ? undefined : r.rt.nhs[route.nh];
    if (nh !== undefined && nh.type === NH_ENCAP) {
      target = r.vifs.vifs[nh.vif];
      pkt.tunL2 = false;
    }
  }
  if (target === undefined || target.type === VIF_TYPE_PHYSICAL) {
    dropPkt(r, VP_DROP_L2_NO_ROUTE);
    return;
  }
  // The target's interface nexthop is where the packet goes and what keys its flow.
  pkt.outNh = target.nh;
  pkt.nh = target.nh;
  if (et !== ETH_P_IP) {
    r.results[RES_NO_FLOW]++;
    fabricDeliver(r, pkt);
    return;
  }
  ipInput(r, pkt, (target.flags & VIF_FLAG_POLICY_ENABLED) !== 0);
}

function toVrMac(b: Uint8Array, o: number): boolean {
  return b[o] === 0x00 && b[o + 1] === 0x00 && b[o + 2] === 0x5e && b[o + 3] === 0x00 && b[o + 4] === 0x01 && b[o + 5] === 0x00;
}

/**
 * Out of the nexthop a packet from the fabric was given (its label's, or its bridge entry's): a VM's
 * interface, rewritten (from the vRouter MAC to the VM's) unless bridged as it came.
 */
function fabricDeliver(r: Router, pkt: Pkt): void {
  const nh = r.rt.nhs[pkt.outNh];
  const out = nh === undefined ? undefined : r.vifs.vifs[nh.vif];
  if (nh === undefined || nh.type !== NH_ENCAP || out === undefined) {
    dropPkt(r, VP_DROP_INVALID_NH);
    return;
  }
  if (!pkt.tunL2) {
    pkt.buf.set(nh.dmac, pkt.off);
    pkt.buf.set(out.mac, pkt.off + 6);
  }
  vifTx(r, nh.vif, pkt.buf, pkt.off, pkt.len);
  r.results[RES_FORWARDED]++;
}

/**
 * ARP inside VXLAN (vr_arp_input from the fabric, §9.1): a request for a VM of this node is answered with
 * the VM's own MAC and sent back through the requester's tunnel; other requests are flooded to the VRF's
 * VMs here; requests for the gateway are not answered from the fabric; a reply goes to its VM.
 */
function fabricArp(r: Router, pkt: Pkt): void {
  const b = pkt.buf;
  const a = pkt.off + ETH_HLEN;
  if (!arpValid(pkt)) {
    dropPkt(r, VP_DROP_INVALID_ARP);
    return;
  }
  const op = rd16(b, a + 6);
  if (op === 2) {
    const to = bridgeLookup(r.rt, pkt.vrf, b, pkt.off);
    if (to < 0) {
      dropPkt(r, VP_DROP_ARP_NO_WHERE_TO_GO);
      return;
    }
    vifTx(r, to, b, pkt.off, pkt.len);
    r.results[RES_NO_FLOW]++;
    return;
  }
  if (op !== 1) {
    dropPkt(r, VP_DROP_INVALID_ARP);
    return;
  }
  const tpa = rdLe32(b, a + 24);
  const route = rtLookup(r.rt, pkt.vrf, tpa);
  const nh = route === undefined ? undefined : r.rt.nhs[route.nh];
  const vm = nh !== undefined && nh.type === NH_ENCAP ? r.vifs.vifs[nh.vif] : undefined;
  if (vm === undefined || vm.type === VIF_TYPE_PHYSICAL || nh === undefined) {
    if (nh !== undefined && nh.type !== NH_ENCAP && nh.type !== NH_TUNNEL) {
      dropPkt(r, VP_DROP_ARP_NO_WHERE_TO_GO); // the gateway: not answered to the fabric
      return;
    }
    dpFlood(r, pkt);
    r.results[RES_NO_FLOW]++;
    return;
  }
  // The requester's tunnel: its bridge entry, else the VXLAN nexthop towards the sender.
  const req = bridgeEntry(r.rt, pkt.vrf, b, a + 8);
  let tnh = req !== undefined && req.vif < 0 ? r.rt.nhs[req.nh] : undefined;
  if (tnh === undefined) tnh = r.rt.tunnels.find((t) => t.dip === pkt.tunSip && (t.flags & NH_FLAG_TUNNEL_VXLAN) !== 0);
  if (tnh === undefined) {
    dropPkt(r, VP_DROP_ARP_NO_WHERE_TO_GO);
    return;
  }
  arpReplyInPlace(pkt, nh.dmac, tpa);
  pkt.tun = 0; // sent as a frame of this node's
  if (tunnelTx(r, pkt, tnh, pkt.label, true, null)) r.results[RES_NO_FLOW]++;
}

/**
 * Fat flow on the key: the ingress interface's list, else the destination interface's (found by the
 * destination's route), so a server VMI's entry collapses its clients whether they come from another
 * interface of this node or from the outside.
 */
function dpFatFlow(r: Router, pkt: Pkt, v: Vif): void {
  const p = pkt.kproto;
  if (p !== IPPROTO_TCP && p !== IPPROTO_UDP && p !== IPPROTO_ICMP && p !== IPPROTO_SCTP) return;
  const own: ArrayLike<number> = v.fatFlow ?? EMPTY;
  let other: ArrayLike<number> = EMPTY;
  const route = rtLookup(r.rt, pkt.vrf, pkt.k2);
  if (route !== undefined) {
    const nh = r.rt.nhs[route.nh];
    const dv = nh && nh.type === NH_ENCAP ? r.vifs.vifs[nh.vif] : undefined;
    if (dv?.fatFlow) other = dv.fatFlow;
  }
  pkt.k0 = fatFlowReduce(pkt.k0, p, own, other);
}

const EMPTY = new Int32Array(0);

/** End of a burst: run the deferred work (hold flushes, deletes, evictions). */
export function dpBurstEnd(r: Router): void {
  routerDrainWork(r);
}
