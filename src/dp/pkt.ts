/**
 * The packet being processed and its forwarding metadata (vr_packet + vr_forwarding_md). One `Pkt` is
 * reused by the datapath for every frame (no allocation per packet); all fields are set in the
 * constructor so the object keeps one shape. A packet is (buf, off, len) inside the host's buffer.
 * @module
 */

export class Pkt {
  buf: Uint8Array = new Uint8Array(0);
  /** Start of the Ethernet header in `buf`. */
  off = 0;
  /** Frame length from `off`. */
  len = 0;
  /** Ingress vif index. */
  vif = -1;
  /** VRF of the ingress vif. */
  vrf = 0;
  /** Key nexthop id (the ingress vif's nexthop for packets from a VM). */
  nh = 0;

  // IPv4, set by ipParse()
  /** Offset of the IP header in `buf`. */
  l3 = 0;
  /** IP header length in bytes. */
  ihl = 0;
  /** IP total length (the frame may carry Ethernet padding after it). */
  ipLen = 0;
  /** Offset of the transport header (meaningless for non-head fragments). */
  l4 = 0;
  /** Transport bytes present (IP total length − IP header length). */
  l4Len = 0;
  proto = 0;
  /** Fragment: 0 = not a fragment, 1 = head fragment, 2 = non-head fragment. */
  frag = 0;

  // Flow key words as int32 (the table stores the same bits; see flow-table.ts).
  k0 = 0;
  k1 = 0;
  k2 = 0;
  k3 = 0;
  kproto = 0;

  /** fmd_flow_index: the flow entry the packet hit, −1 = none. */
  flowIdx = -1;
  /** The VRF to route in after the flow: the flow's dvrf with VRFT (NAT to another network), else −1. */
  fwdVrf = -1;
  // From the fabric (dp/fabric.ts): how the packet came in and where its label / VNI sends it.
  /** TUN_* it was decapsulated from (0: not from the fabric). */
  tun = 0;
  /** Outer source address (the sending node or VTEP). */
  tunSip = 0;
  /** The MPLS label or VNI it carried. */
  label = 0;
  /** The nexthop the label (or the bridge entry of a VXLAN frame) chose, −1 none: the output without a route lookup. */
  outNh = -1;
  /** Whether the inner frame is bridged as it is (VXLAN) rather than given a new Ethernet header. */
  tunL2 = false;

  /** Counters of a reused entry, reported in the FLOW_MISS trap (see flowLookup). */
  trapBytes = 0;
  trapPackets = 0;
  trapOflow = 0;
}

export const FRAG_NONE = 0;
export const FRAG_HEAD = 1;
export const FRAG_MORE = 2;

/** Read a big-endian u16. */
export function rd16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

/** Read a big-endian u32 as an unsigned number. */
export function rd32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/**
 * Read 4 bytes little-endian as a signed 32-bit value: how the flow key's words are hashed and compared
 * (int32 stays unboxed on the hot path; the table's u32 view reads the same bits unsigned).
 */
export function rdLe32(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
}

export function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

export function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}
