/**
 * NAT of a packet by its flow (vr_inet_flow_nat in dp-core/vr_proto_ip.c, R2.22; reference §3.3): the new
 * addresses and ports come from the reverse flow's key — SNAT: source := reverse key's destination (only
 * when the packet's source is the flow key's), DNAT: destination := reverse key's source, SPAT/DPAT the
 * ports likewise. Checksums are updated incrementally (IP header, TCP/UDP with their pseudo-header); an
 * ICMP error has the header it quotes rewritten too (the mirror image), that header's checksum redone and
 * the ICMP checksum recomputed.
 * @module
 */
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, VR_FLOW_FLAG_DNAT, VR_FLOW_FLAG_DPAT, VR_FLOW_FLAG_SNAT, VR_FLOW_FLAG_SPAT } from './defs';
import { FE_FLAGS, FE_K0, FE_K1, FE_K2, FlowTable } from './flow-table';
import { FRAG_MORE, Pkt, rd16, rdLe32 } from './pkt';
import { csumFull, csumUpdate } from './csum';
import { icmpIsError } from './proto-ip';

/**
 * The transport checksum at `at` for changed data. For UDP a checksum of 0 means "none" and stays 0,
 * and a result of 0 is sent as 0xffff (RFC 768); for TCP 0 is an ordinary value.
 */
function l4Update(b: Uint8Array, at: number, oldWords: number, newWords: number, udp: boolean): void {
  if (udp && (b[at] | b[at + 1]) === 0) return;
  csumUpdate(b, at, oldWords, newWords);
  if (udp && (b[at] | b[at + 1]) === 0) {
    b[at] = 0xff;
    b[at + 1] = 0xff;
  }
}

/** The 16-bit one's-complement sum of a 32-bit value's two halves. */
function fold32(v: number): number {
  let s = (v >>> 16) + (v & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  return s;
}

/**
 * Replace 4 bytes at `off` (an address) with key word `w`, updating the IP header checksum at `csum1` and
 * the transport checksum at `csum2` (each when ≥ 0; `udp`: the transport is UDP).
 */
function setAddr(b: Uint8Array, off: number, w: number, csum1: number, csum2: number, udp: boolean): void {
  const old = ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
  b[off] = w & 0xff;
  b[off + 1] = (w >>> 8) & 0xff;
  b[off + 2] = (w >>> 16) & 0xff;
  b[off + 3] = (w >>> 24) & 0xff;
  const nw = ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
  const o = fold32(old);
  const n = fold32(nw);
  if (csum1 >= 0) csumUpdate(b, csum1, o, n);
  if (csum2 >= 0) l4Update(b, csum2, o, n, udp);
}

/** Replace a 16-bit port at `off`, updating the transport checksum at `csum` (≥ 0). */
function setPort(b: Uint8Array, off: number, port: number, csum: number, udp: boolean): void {
  const old = rd16(b, off);
  b[off] = port >>> 8;
  b[off + 1] = port & 0xff;
  if (csum >= 0) l4Update(b, csum, old, port, udp);
}

/** Offset of the transport checksum of `proto` at `l4`, or −1 (no checksum we keep). */
function l4Csum(proto: number, l4: number): number {
  if (proto === IPPROTO_TCP) return l4 + 16;
  if (proto === IPPROTO_UDP) return l4 + 6;
  return -1;
}

/**
 * Rewrite the packet by flow `i` (NAT flags set) with its reverse `rf`.
 */
export function flowNat(t: FlowTable, i: number, rf: number, pkt: Pkt): void {
  const f = t.u16[i * 64 + (FE_FLAGS >> 1)];
  const b = pkt.buf;
  const l3 = pkt.l3;
  const rk0 = t.u32[rf * 32 + (FE_K0 >> 2)];
  const rsip = t.i32[rf * 32 + (FE_K1 >> 2)];
  const rdip = t.i32[rf * 32 + (FE_K2 >> 2)];
  const ksip = t.i32[i * 32 + (FE_K1 >> 2)];
  const head = pkt.frag !== FRAG_MORE;
  const proto = pkt.proto;
  const l4 = pkt.l4;
  const tcsum = head && pkt.l4Len >= (proto === IPPROTO_TCP ? 18 : 8) ? l4Csum(proto, l4) : -1;
  const udp = proto === IPPROTO_UDP;
  const icmpErr = proto === IPPROTO_ICMP && head && pkt.l4Len >= 8 + 20 && icmpIsError(b[l4]);
  const in3 = l4 + 8;
  const inIhl = icmpErr ? (b[in3] & 0x0f) << 2 : 0;
  const inner = icmpErr && inIhl >= 20 && pkt.l4Len >= 8 + inIhl + 8;
  let oldSrc = 0;
  let oldDst = 0;
  if (f & VR_FLOW_FLAG_SNAT && rdLe32(b, l3 + 12) === ksip) {
    oldSrc = rdLe32(b, l3 + 12);
    setAddr(b, l3 + 12, rdip, l3 + 10, tcsum, udp);
  }
  if (f & VR_FLOW_FLAG_DNAT) {
    oldDst = rdLe32(b, l3 + 16);
    setAddr(b, l3 + 16, rsip, l3 + 10, tcsum, udp);
  }
  if (head && (proto === IPPROTO_TCP || proto === IPPROTO_UDP) && pkt.l4Len >= 4) {
    // SPAT: sport := the reverse key's dport; DPAT: dport := the reverse key's sport (network order).
    if (f & VR_FLOW_FLAG_SPAT) setPort(b, l4, ((rk0 >>> 16) & 0xff) << 8 | (rk0 >>> 24), tcsum, udp);
    if (f & VR_FLOW_FLAG_DPAT) setPort(b, l4 + 2, (rk0 & 0xff) << 8 | ((rk0 >>> 8) & 0xff), tcsum, udp);
  }
  if (inner) {
    // The quoted header travelled the other way: its destination was our source, its source our
    // destination. Its transport checksum (UDP's is within the 8 bytes quoted) follows the change.
    const inProto = b[in3 + 9];
    const inCsum = inProto === IPPROTO_UDP ? in3 + inIhl + 6 : -1;
    if (oldSrc !== 0 && rdLe32(b, in3 + 16) === oldSrc) setAddr(b, in3 + 16, rdip, -1, inCsum, true);
    if (oldDst !== 0 && rdLe32(b, in3 + 12) === oldDst) setAddr(b, in3 + 12, rsip, -1, inCsum, true);
    csumFull(b, in3, inIhl, in3 + 10);
    csumFull(b, l4, pkt.l4Len, l4 + 2);
  }
}
