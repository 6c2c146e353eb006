/**
 * The overlay's headers: what the module does to a frame that comes in on, or goes out of, the physical
 * (fabric) vif — dp-core/vr_mpls.c, vr_gre.c / vr_udp.c, vr_vxlan.c and the tunnel helpers of
 * vr_nexthop.c at R2.22. Header work only: datapath.ts decides what happens to the inner packet.
 *
 *   MPLSoGRE   outer Eth | IPv4 proto 47 | GRE (no options, proto 0x8847) | MPLS (label, S=1) | inner IPv4
 *   MPLSoUDP   outer Eth | IPv4 proto 17 | UDP (dport 6635)                | MPLS              | inner IPv4
 *   VXLAN      outer Eth | IPv4 proto 17 | UDP (dport 4789) | VXLAN (I flag, VNI)             | inner Ethernet
 *
 * The outer UDP source port is the flow's fe_udp_src_port (§3.4), or the same hash of the packet's own
 * header when it has no flow; the UDP checksum is 0 (allowed for IPv4; the module leaves it so). Outer
 * TTL 64, DF clear, the IP id counting up per router.
 *
 * Receive: a frame addressed to the fabric address with GRE/MPLS, UDP 6635 or UDP 4789 is a tunnel;
 * everything else goes to vhost0 (the host's own traffic, ARP included). Every malformed or unknown
 * tunnel frame is counted under its R2.22 drop-stat label and never forwarded:
 *   truncated outer/tunnel headers → Pull Fails; bad outer IPv4 header or GRE options/version → Invalid
 *   Packets; GRE protocol other than MPLS, MPLS payload that is not IPv4 → Invalid Protocol; an MPLS
 *   label out of range, unprogrammed or not bottom-of-stack → Invalid Label; a VXLAN header without the
 *   I flag or an unknown VNI → Invalid VNID; a fragmented tunnel packet → Fragment errors (the 2.22
 *   module does not reassemble the fabric's fragments).
 *
 * MTU: when the encapsulated packet exceeds the fabric vif's MTU, an IPv4 packet with DF set is answered
 * with ICMP "fragmentation needed" carrying the MTU left for the inner packet (2.22 traps it to the agent,
 * AGENT_TRAP_HANDLE_DF, which sends the same ICMP); without DF the inner packet is fragmented to fit.
 * TCP SYNs from VMs have their MSS lowered to fit the tunnel (the vr_from_vm_mss_adj sysctl, on by
 * default), so TCP does not depend on either.
 * @module
 */
import {
  ETH_HLEN,
  ETH_P_ARP,
  ETH_P_IP,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  VP_DROP_FRAGMENTS,
  VP_DROP_INVALID_LABEL,
  VP_DROP_INVALID_NH,
  VP_DROP_INVALID_PACKET,
  VP_DROP_INVALID_PROTOCOL,
  VP_DROP_INVALID_VNID,
  VP_DROP_NOWHERE_TO_GO,
  VP_DROP_PULL,
  VP_DROP_TTL_EXCEEDED,
  VR_VIF_MAC,
} from './defs';
import { macParse } from './interface';
import {
  NH_ENCAP,
  NH_RCV,
  NH_FLAG_TUNNEL_GRE,
  NH_FLAG_TUNNEL_UDP_MPLS,
  NH_FLAG_TUNNEL_VXLAN,
  NH_VRF_TRANSLATE,
  Nexthop,
} from './nexthop';
import { FE_SIZE, FE_UDP_SPORT } from './flow-table';
import { udpSrcPort } from './flow';
import { csumFull, csumUpdate } from './csum';
import { Pkt, rd16, rd32, rdLe32, wr16, wr32 } from './pkt';
import { keyIp } from './proto-ip';
import { Router, dropPkt, vifTx } from './router';

/** TunnelType, as flow records number it (underlay_proto): 0 none. */
export const TUN_NONE = 0;
export const TUN_MPLSOGRE = 1;
export const TUN_MPLSOUDP = 2;
export const TUN_VXLAN = 3;
export const TUN_NAMES = ['', 'MPLSoGRE', 'MPLSoUDP', 'VXLAN'] as const;

export const IPPROTO_GRE = 47;
export const GRE_PROTO_MPLS = 0x8847;
/** VR_MPLS_OVER_UDP_DST_PORT and the IANA VXLAN port (VR_VXLAN_UDP_DST_PORT). */
export const MPLSOUDP_PORT = 6635;
/** The 2.2x module's VR_MPLS_OVER_UDP_DST_PORT: received too, so a node of that release can send to this one. */
export const MPLSOUDP_OLD_PORT = 51234;
export const VXLAN_PORT = 4789;
const OUTER_TTL = 64;
/** VR_VXLAN_IBIT: the "VNI valid" flag in the first byte of the VXLAN header. */
const VXLAN_IBIT = 0x08;

/** Outer header bytes in front of the inner packet (the inner IPv4 header for MPLS, the inner Ethernet for VXLAN). */
export const ENCAP_HDR = [0, ETH_HLEN + 20 + 4 + 4, ETH_HLEN + 20 + 8 + 4, ETH_HLEN + 20 + 8 + 8] as const;

const VR_MAC = macParse(VR_VIF_MAC) as Uint8Array;

// fabricDecap's verdicts.
export const DECAP_XCONNECT = 0; // not a tunnel: to vhost0
export const DECAP_DROPPED = 1; // counted
export const DECAP_L3 = 2; // pkt is now the inner IPv4 packet behind a made-up Ethernet header; pkt.outNh is its label's nexthop
export const DECAP_L2 = 3; // pkt is now the inner Ethernet frame, to bridge in pkt.vrf

/** The tunnel type of a TUNNEL nexthop's flags, TUN_NONE if none. */
export function nhTunnel(nh: Nexthop): number {
  if (nh.flags & NH_FLAG_TUNNEL_GRE) return TUN_MPLSOGRE;
  if (nh.flags & NH_FLAG_TUNNEL_UDP_MPLS) return TUN_MPLSOUDP;
  if (nh.flags & NH_FLAG_TUNNEL_VXLAN) return TUN_VXLAN;
  return TUN_NONE;
}

// ---------------------------------------------------------------------------------------------------
// Receive

/**
 * Classify and strip a frame from the physical vif (vr_fabric_input → vr_l3_input → the tunnel
 * protocol handlers). On DECAP_L3 / DECAP_L2 the packet's window, VRF, key nexthop and tunnel fields
 * describe the inner packet.
 */
export function fabricDecap(r: Router, pkt: Pkt): number {
  const b = pkt.buf;
  const o = pkt.off;
  const et = rd16(b, o + 12);
  if (et === ETH_P_ARP) {
    arpSnoop(r, b, o, pkt.len);
    return DECAP_XCONNECT;
  }
  const fab = r.vifs.vifs[r.fabricVif];
  if (et !== ETH_P_IP || fab === undefined) return DECAP_XCONNECT;
  const l3 = o + ETH_HLEN;
  if (pkt.len < ETH_HLEN + 20) return decapDrop(r, VP_DROP_PULL);
  const ihl = (b[l3] & 0xf) << 2;
  if (b[l3] >> 4 !== 4 || ihl < 20) return decapDrop(r, VP_DROP_INVALID_PACKET);
  const tot = rd16(b, l3 + 2);
  if (tot < ihl || ETH_HLEN + tot > pkt.len) return decapDrop(r, VP_DROP_PULL);
  // Only what is addressed to the fabric address can be a tunnel; the rest is the host's.
  if (rd32(b, l3 + 16) !== fab.ip) return DECAP_XCONNECT;
  const proto = b[l3 + 9];
  const end = l3 + tot;
  let p = l3 + ihl;
  const frag = rd16(b, l3 + 6) & 0x3fff;
  let tun = TUN_NONE;
  if (proto === IPPROTO_GRE) {
    if (frag !== 0) return decapDrop(r, VP_DROP_FRAGMENTS);
    if (p + 4 > end) return decapDrop(r, VP_DROP_PULL);
    const gf = rd16(b, p);
    // Checksum, key and sequence options are skipped (vr_gre_input); a version other than 0 or the
    // routing bit is not GRE as the module takes it.
    if (gf & 0x4007) return decapDrop(r, VP_DROP_INVALID_PACKET);
    const hl = 4 + (gf & 0x8000 ? 4 : 0) + (gf & 0x2000 ? 4 : 0) + (gf & 0x1000 ? 4 : 0);
    if (p + hl > end) return decapDrop(r, VP_DROP_PULL);
    if (rd16(b, p + 2) !== GRE_PROTO_MPLS) return decapDrop(r, VP_DROP_INVALID_PROTOCOL);
    p += hl;
    tun = TUN_MPLSOGRE;
  } else if (proto === IPPROTO_UDP) {
    // A non-head fragment has no UDP header: it is the host's, or a tunnel's (refused at its head).
    if (frag & 0x1fff) return DECAP_XCONNECT;
    if (p + 8 > end) return decapDrop(r, VP_DROP_PULL);
    const dport = rd16(b, p + 2);
    if (dport === MPLSOUDP_PORT || dport === MPLSOUDP_OLD_PORT) tun = TUN_MPLSOUDP;
    else if (dport === VXLAN_PORT) tun = TUN_VXLAN;
    else return DECAP_XCONNECT;
    if (frag !== 0) return decapDrop(r, VP_DROP_FRAGMENTS);
    p += 8;
  } else {
    return DECAP_XCONNECT;
  }
  pkt.tun = tun;
  pkt.tunSip = rd32(b, l3 + 12);
  const rt = r.rt;
  if (tun === TUN_VXLAN) {
    if (p + 8 > end) return decapDrop(r, VP_DROP_PULL);
    if ((b[p] & VXLAN_IBIT) === 0) return decapDrop(r, VP_DROP_INVALID_VNID);
    const vni = rd32(b, p + 4) >>> 8;
    const nhId = rt.vxlan.get(vni);
    const nh = nhId === undefined ? undefined : rt.nhs[nhId];
    if (nh === undefined) return decapDrop(r, VP_DROP_INVALID_VNID);
    if (nh.type !== NH_VRF_TRANSLATE) return decapDrop(r, VP_DROP_INVALID_NH);
    p += 8;
    if (p + ETH_HLEN > end) return decapDrop(r, VP_DROP_PULL);
    pkt.label = vni;
    pkt.vrf = nh.vrf;
    pkt.off = p;
    pkt.len = end - p;
    pkt.outNh = -1;
    pkt.tunL2 = true;
    return DECAP_L2;
  }
  if (p + 4 > end) return decapDrop(r, VP_DROP_PULL);
  const w = rd32(b, p);
  const label = w >>> 12;
  // One label, bottom of stack: the module pops exactly one (vr_mpls_input).
  if ((w & 0x100) === 0 || label >= rt.labels.length || rt.labels[label] < 0) return decapDrop(r, VP_DROP_INVALID_LABEL);
  // The label's TTL is the inner packet's after the sender routed it (vr_mpls_input).
  if ((w & 0xff) <= 1) return decapDrop(r, VP_DROP_TTL_EXCEEDED);
  const nh = rt.nhs[rt.labels[label]];
  const out = nh === undefined ? undefined : r.vifs.vifs[nh.vif];
  // An L3 label names a VM's interface nexthop; the emulator has no L2 (bridged) MPLS labels.
  if (nh === undefined || nh.type !== NH_ENCAP || out === undefined) return decapDrop(r, VP_DROP_INVALID_NH);
  p += 4;
  if (p + 20 > end || b[p] >> 4 !== 4) return decapDrop(r, p + 20 > end ? VP_DROP_PULL : VP_DROP_INVALID_PROTOCOL);
  // The inner IPv4 packet gets an Ethernet header where the MPLS header was (the datapath's packets
  // start with one): to the vRouter MAC, from the sending node's MAC, as if routed to this node.
  b.copyWithin(p - 8, o + 6, o + 12);
  b.set(VR_MAC, p - ETH_HLEN);
  b[p - 2] = 0x08;
  b[p - 1] = 0x00;
  pkt.label = label;
  pkt.off = p - ETH_HLEN;
  pkt.len = end - p + ETH_HLEN;
  pkt.vrf = out.vrf;
  pkt.nh = out.nh;
  pkt.outNh = nh.id;
  pkt.tunL2 = false;
  return DECAP_L3;
}

function decapDrop(r: Router, reason: number): number {
  dropPkt(r, reason);
  return DECAP_DROPPED;
}

// ---------------------------------------------------------------------------------------------------
// ARP on the fabric: the MAC of each tunnel's destination

/**
 * Learn tunnel destinations' MACs from the ARP seen on the fabric (requests and replies alike). In 2.22
 * the agent resolves them (its ARP handler, from vhost0's address); here the datapath does it, with the
 * same requests (see arpResolve).
 */
function arpSnoop(r: Router, b: Uint8Array, o: number, len: number): void {
  if (len < ETH_HLEN + 28) return;
  const a = o + ETH_HLEN;
  if (rd16(b, a) !== 1 || rd16(b, a + 2) !== ETH_P_IP || b[a + 4] !== 6 || b[a + 5] !== 4) return;
  const spa = rd32(b, a + 14);
  const t = r.rt.tunnels;
  for (let k = 0; k < t.length; k++) {
    if (t[k].dip === spa) t[k].dmac.set(b.subarray(a + 8, a + 14));
  }
}

/** Whether a tunnel nexthop knows its destination's MAC. */
export function nhResolved(nh: Nexthop): boolean {
  const m = nh.dmac;
  return (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) !== 0;
}

/** Ask the fabric for a tunnel destination's MAC (at most once a second per nexthop). */
export function arpResolve(r: Router, nh: Nexthop): void {
  const fab = r.vifs.vifs[nh.vif];
  if (fab === undefined || !fab.up || fab.ip === 0) return;
  const now = r.host.monoMs();
  if (now - nh.arpAt < 1000) return;
  nh.arpAt = now;
  const b = r.encapBuf;
  b.fill(0, 0, 60);
  b.fill(0xff, 0, 6);
  b.set(fab.mac, 6);
  wr16(b, 12, ETH_P_ARP);
  wr16(b, 14, 1);
  wr16(b, 16, ETH_P_IP);
  b[18] = 6;
  b[19] = 4;
  wr16(b, 20, 1);
  b.set(fab.mac, 22);
  wr32(b, 28, fab.ip);
  wr32(b, 38, nh.dip);
  vifTx(r, nh.vif, b, 0, 60);
}

/**
 * Keep asking for the MACs of tunnel destinations that have not answered (a node that starts later, a
 * VTEP that was down); the host calls it from its loop, arpResolve paces it to once a second each.
 */
export function fabricTick(r: Router): void {
  const t = r.rt.tunnels;
  for (let k = 0; k < t.length; k++) if (!nhResolved(t[k])) arpResolve(r, t[k]);
}

// ---------------------------------------------------------------------------------------------------
// Transmit

/**
 * Send the packet through tunnel nexthop `nh` with `label` (MPLS label or VNI). `l2`: the frame is
 * bridged (VXLAN only) and goes as it is; otherwise it was routed: MPLS carries its IPv4 packet, VXLAN
 * its frame re-addressed to `innerMac` (the stitched MAC of the route) from the vRouter MAC.
 * @returns false if the packet was dropped or answered instead (counted).
 */
export function tunnelTx(r: Router, pkt: Pkt, nh: Nexthop, label: number, l2: boolean, innerMac: Uint8Array | null): boolean {
  const tun = nhTunnel(nh);
  const fab = r.vifs.vifs[nh.vif];
  if (tun === TUN_NONE || fab === undefined || label < 0) {
    dropPkt(r, VP_DROP_INVALID_NH);
    return false;
  }
  if (!nhResolved(nh)) {
    // No MAC for the destination yet: ask, and drop meanwhile (the nexthop is not yet valid).
    arpResolve(r, nh);
    dropPkt(r, VP_DROP_INVALID_NH);
    return false;
  }
  const b = pkt.buf;
  const isIp = rd16(b, pkt.off + 12) === ETH_P_IP && pkt.ipLen >= 20 && pkt.l3 === pkt.off + ETH_HLEN;
  if (tun !== TUN_VXLAN && !isIp) {
    dropPkt(r, VP_DROP_INVALID_NH); // MPLS here carries routed IPv4 only (L3 labels)
    return false;
  }
  if (tun === TUN_VXLAN && !l2 && innerMac !== null) {
    b.set(innerMac, pkt.off);
    b.set(VR_MAC, pkt.off + 6);
  }
  const hdr = ENCAP_HDR[tun];
  // Bytes of the outer IPv4 packet per byte of inner IPv4 packet: its headers, and for VXLAN the inner Ethernet.
  const over = hdr - ETH_HLEN + (tun === TUN_VXLAN ? ETH_HLEN : 0);
  const innerLen = isIp ? pkt.ipLen : pkt.len - ETH_HLEN;
  const room = fab.mtu - ETH_HLEN - over; // the largest inner IPv4 packet that fits (the vif MTU counts the Ethernet header)
  // MSS: what fits the tunnel, at most the physical MTU − 80 as the module clamps (vr_from_vm_mss_adj).
  if (isIp && pkt.tun === TUN_NONE && pkt.proto === IPPROTO_TCP) mssClamp(b, pkt, Math.min(room - 40, fab.mtu - ETH_HLEN - 80));
  const sport = tun === TUN_MPLSOGRE ? 0 : outerSport(r, pkt, isIp, tun);
  // The MPLS label's TTL: the inner packet's, as routed here (64 for a frame without one).
  const ttl = isIp && b[pkt.l3 + 8] > 0 ? b[pkt.l3 + 8] : OUTER_TTL;
  if (innerLen > room) {
    if (!isIp) {
      dropPkt(r, VP_DROP_NOWHERE_TO_GO); // an oversize L2 frame (vr_xmit's rule)
      return false;
    }
    if (b[pkt.l3 + 6] & 0x40) {
      fragNeeded(r, pkt, room);
      return false;
    }
    return fragmentTx(r, pkt, nh, tun, label, sport, ttl, room);
  }
  // The inner packet (VXLAN: with its Ethernet header) goes after the outer headers.
  const e = r.encapBuf;
  const start = tun === TUN_VXLAN ? pkt.off : pkt.l3;
  const n = innerLen + (tun === TUN_VXLAN ? ETH_HLEN : 0);
  e.set(b.subarray(start, start + n), hdr);
  encapHeaders(r, nh, fab.mac, tun, label, sport, ttl, n);
  vifTx(r, nh.vif, e, 0, hdr + n);
  return true;
}

/** VR_MPLS_OVER_UDP_SRC_PORT, VR_VXLAN_UDP_SRC_PORT: the source port of a frame that gives nothing to hash. */
const MPLSOUDP_SRC_PORT = 51000;
const VXLAN_SRC_PORT = 52000;

/**
 * The outer UDP source port: the flow's fe_udp_src_port; without a flow, the same hash over the inner
 * addresses and VRF (lh_get_udp_src_port hashes these three); a non-IP frame takes the default port.
 */
function outerSport(r: Router, pkt: Pkt, isIp: boolean, tun: number): number {
  if (pkt.flowIdx >= 0) {
    const sp = r.ft.u16[pkt.flowIdx * (FE_SIZE >> 1) + (FE_UDP_SPORT >> 1)];
    if (sp !== 0) return sp;
  }
  if (!isIp) return tun === TUN_VXLAN ? VXLAN_SRC_PORT : MPLSOUDP_SRC_PORT;
  const b = pkt.buf;
  const l3 = pkt.l3;
  return udpSrcPort(r, rdLe32(b, l3 + 12) >>> 0, rdLe32(b, l3 + 16) >>> 0, pkt.vrf, 0, 0);
}

/** vr_generate_unique_ip_id: one 16-bit counter per router, pre-incremented, never 0. */
function nextIpId(r: Router): number {
  r.ipId = (r.ipId + 1) & 0xffff;
  if (r.ipId === 0) r.ipId = 1;
  return r.ipId;
}

/**
 * Write the outer headers in front of the `payload` bytes already at r.encapBuf[ENCAP_HDR[tun]…] (the
 * inner IPv4 packet; for VXLAN the inner Ethernet frame).
 */
function encapHeaders(r: Router, nh: Nexthop, smac: Uint8Array, tun: number, label: number, sport: number, ttl: number, payload: number): void {
  const e = r.encapBuf;
  const hdr = ENCAP_HDR[tun];
  e.set(nh.dmac, 0);
  e.set(smac, 6);
  wr16(e, 12, ETH_P_IP);
  const ip = ETH_HLEN;
  const ipLen = hdr - ETH_HLEN + payload;
  e[ip] = 0x45;
  e[ip + 1] = 0;
  wr16(e, ip + 2, ipLen);
  wr16(e, ip + 4, nextIpId(r));
  wr16(e, ip + 6, 0);
  e[ip + 8] = OUTER_TTL;
  e[ip + 9] = tun === TUN_MPLSOGRE ? IPPROTO_GRE : IPPROTO_UDP;
  wr32(e, ip + 12, nh.sip);
  wr32(e, ip + 16, nh.dip);
  csumFull(e, ip, 20, ip + 10);
  let p = ip + 20;
  if (tun === TUN_MPLSOGRE) {
    wr16(e, p, 0);
    wr16(e, p + 2, GRE_PROTO_MPLS);
    p += 4;
  } else {
    wr16(e, p, sport);
    wr16(e, p + 2, tun === TUN_VXLAN ? VXLAN_PORT : MPLSOUDP_PORT);
    wr16(e, p + 4, ipLen - 20);
    wr16(e, p + 6, 0);
    p += 8;
  }
  if (tun === TUN_VXLAN) {
    wr32(e, p, VXLAN_IBIT << 24);
    wr32(e, p + 4, (label & 0xffffff) << 8);
  } else {
    // Label, EXP 0, bottom of stack, the inner TTL.
    wr32(e, p, ((label << 12) | 0x100 | (ttl & 0xff)) >>> 0);
  }
}

/**
 * Lower the MSS option of a TCP SYN to `mss` if it asks for more (the checksum updated for the changed
 * word, RFC 1624).
 */
function mssClamp(b: Uint8Array, pkt: Pkt, mss: number): void {
  if (pkt.frag !== 0 || pkt.l4Len < 20 || (b[pkt.l4 + 13] & 0x02) === 0) return;
  const doff = (b[pkt.l4 + 12] >> 4) << 2;
  const end = pkt.l4 + Math.min(doff, pkt.l4Len);
  for (let k = pkt.l4 + 20; k + 1 < end;) {
    const kind = b[k];
    if (kind === 0) return;
    if (kind === 1) {
      k++;
      continue;
    }
    const len = b[k + 1];
    if (len < 2 || k + len > end) return;
    if (kind === 2 && len === 4) {
      const old = rd16(b, k + 2);
      if (old <= mss) return;
      wr16(b, k + 2, mss);
      csumUpdate(b, pkt.l4 + 16, old, mss);
      return;
    }
    k += len;
  }
}

/** The address of the VRF's gateway (the /32 on the receive nexthop the agent installs), or 0. */
function vrfGateway(r: Router, vrf: number): number {
  const m = r.rt.routes.get(vrf);
  if (m === undefined) return 0;
  for (const [w, route] of m) {
    if (r.rt.nhs[route.nh]?.type === NH_RCV) return keyIp(w);
  }
  return 0;
}

/**
 * An IPv4 packet with DF that does not fit the tunnel: ICMP "fragmentation needed" (type 3, code 4,
 * next-hop MTU `mtu`) back to its sender on the vif it came from, from the VRF's gateway address, quoting
 * up to 128 bytes of the packet (the 2.22 agent's IcmpErrorHandler answers the AGENT_TRAP_HANDLE_DF trap so).
 */
function fragNeeded(r: Router, pkt: Pkt, mtu: number): void {
  const b = pkt.buf;
  const l3 = pkt.l3;
  const e = r.encapBuf;
  const quote = Math.min(128, pkt.ipLen);
  const v = r.vifs.vifs[pkt.vif];
  e.set(b.subarray(pkt.off + 6, pkt.off + 12), 0);
  e.set(v ? v.mac : VR_MAC, 6);
  wr16(e, 12, ETH_P_IP);
  const ip = ETH_HLEN;
  const len = 20 + 8 + quote;
  e[ip] = 0x45;
  e[ip + 1] = 0;
  wr16(e, ip + 2, len);
  wr16(e, ip + 4, nextIpId(r));
  wr16(e, ip + 6, 0);
  e[ip + 8] = 64;
  e[ip + 9] = IPPROTO_ICMP;
  const gw = vrfGateway(r, pkt.vrf);
  if (gw !== 0) wr32(e, ip + 12, gw);
  else e.set(b.subarray(l3 + 16, l3 + 20), ip + 12);
  e.set(b.subarray(l3 + 12, l3 + 16), ip + 16);
  csumFull(e, ip, 20, ip + 10);
  const ic = ip + 20;
  e[ic] = 3;
  e[ic + 1] = 4;
  wr16(e, ic + 2, 0);
  wr16(e, ic + 4, 0);
  wr16(e, ic + 6, mtu);
  e.set(b.subarray(l3, l3 + quote), ic + 8);
  csumFull(e, ic, 8 + quote, ic + 2);
  r.pmtuSent++;
  vifTx(r, pkt.vif, e, 0, ETH_HLEN + len);
}

/**
 * Fragment the inner IPv4 packet (DF clear) into pieces of at most `room` bytes and send each through
 * the tunnel: the receiving VM reassembles, as it would behind any router.
 */
function fragmentTx(r: Router, pkt: Pkt, nh: Nexthop, tun: number, label: number, sport: number, ttl: number, room: number): boolean {
  const b = pkt.buf;
  const l3 = pkt.l3;
  const ihl = pkt.ihl;
  const fab = r.vifs.vifs[nh.vif];
  if (fab === undefined) return false;
  const step = (room - ihl) & ~7;
  if (step <= 0) {
    dropPkt(r, VP_DROP_FRAGMENTS);
    return false;
  }
  const e = r.encapBuf;
  const hdr = ENCAP_HDR[tun];
  const inner = tun === TUN_VXLAN ? hdr + ETH_HLEN : hdr; // where the fragment's IPv4 header goes
  const ff = rd16(b, l3 + 6);
  const base = (ff & 0x1fff) << 3;
  const more = ff & 0x2000;
  const data = pkt.ipLen - ihl;
  for (let at = 0; at < data; at += step) {
    const n = Math.min(step, data - at);
    if (tun === TUN_VXLAN) e.set(b.subarray(pkt.off, pkt.off + ETH_HLEN), hdr);
    e.set(b.subarray(l3, l3 + ihl), inner);
    e.set(b.subarray(l3 + ihl + at, l3 + ihl + at + n), inner + ihl);
    wr16(e, inner + 2, ihl + n);
    wr16(e, inner + 6, (ff & 0x4000) | (at + n < data || more ? 0x2000 : 0) | (((base + at) >>> 3) & 0x1fff));
    csumFull(e, inner, ihl, inner + 10);
    encapHeaders(r, nh, fab.mac, tun, label, sport, ttl, inner - hdr + ihl + n);
    vifTx(r, nh.vif, e, 0, inner + ihl + n);
  }
  return true;
}
