/**
 * IPv4 parsing and the R2.22 flow key (dp-core/vr_proto_ip.c: vr_inet_proto_flow, vr_inet_form_flow,
 * the fragment table). Fills `Pkt` fields; returns drop codes, never throws.
 *
 * Key fields by protocol (reference §2.2):
 *  - TCP/UDP: the real ports;
 *  - ICMP echo request/reply: sport = identifier, dport = 0 (both directions share the port pair);
 *  - other ICMP: sport 0, dport = type (stored in host order, so listed as type × 256);
 *  - ICMP errors: built from the embedded header (one level), then swapped: IPs swapped, ports swapped
 *    except for ICMP, so the key is the flow of the direction the error travels; an error quoting an
 *    ICMP error is dropped (Flow Invalid Protocol);
 *  - an IPv4 header with IHL < 5 (or another version) is Invalid Protocol, one cut short is Pull Fails;
 *  - other protocols: ports 0.
 * Fragments: the head fragment records its ports in a fragment table keyed by (vrf, sip, dip, id); later
 * fragments take their ports from there and may look flows up but never create one.
 * @module
 */
import {
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  VP_DROP_FLOW_INVALID_PROTOCOL,
  VP_DROP_FRAGMENTS,
  VP_DROP_INVALID_PROTOCOL,
  VP_DROP_PULL,
} from './defs';
import { FRAG_HEAD, FRAG_MORE, FRAG_NONE, Pkt, rd16, rdLe32 } from './pkt';

export const KEY_OK = -1;

const ICMP_ECHOREPLY = 0;
const ICMP_ECHO = 8;

/** ICMP types whose payload carries the offending packet's header (vr_icmp_error). */
export function icmpIsError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/**
 * Parse the IPv4 header at `pkt.l3` (ihl, total length, protocol, fragment state).
 * @returns KEY_OK, or the VP_DROP_* reason: a header or total length beyond the frame → Pull Fails (the
 * host layer's pull); an IHL below 5, another version or a total length shorter than the header →
 * Invalid Protocol (vr_ip_input's corrupt-packet path).
 */
export function ipParse(pkt: Pkt): number {
  const b = pkt.buf;
  const l3 = pkt.l3;
  const avail = pkt.off + pkt.len - l3;
  if (avail < 20) return VP_DROP_PULL;
  const vihl = b[l3];
  const ihl = (vihl & 0x0f) << 2;
  if (vihl >> 4 !== 4 || ihl < 20) return VP_DROP_INVALID_PROTOCOL;
  if (avail < ihl) return VP_DROP_PULL;
  const ipLen = rd16(b, l3 + 2);
  if (ipLen < ihl) return VP_DROP_INVALID_PROTOCOL;
  if (ipLen > avail) return VP_DROP_PULL;
  pkt.ihl = ihl;
  pkt.ipLen = ipLen;
  pkt.proto = b[l3 + 9];
  pkt.l4 = l3 + ihl;
  pkt.l4Len = ipLen - ihl;
  const fragWord = rd16(b, l3 + 6);
  const more = fragWord & 0x2000;
  const offset = fragWord & 0x1fff;
  pkt.frag = offset !== 0 ? FRAG_MORE : more !== 0 ? FRAG_HEAD : FRAG_NONE;
  return KEY_OK;
}

/** Fragment table: direct-mapped, a head fragment's ports by (vrf, sip, dip, ip id). */
export class FragTable {
  static readonly SIZE = 4096;
  /** A head fragment's record is good for this long (the kernel's fragment entries time out too). */
  static readonly TTL_MS = 5000;
  readonly sip = new Int32Array(FragTable.SIZE);
  readonly dip = new Int32Array(FragTable.SIZE);
  readonly idVrf = new Uint32Array(FragTable.SIZE);
  readonly proto = new Uint8Array(FragTable.SIZE);
  readonly ports = new Uint32Array(FragTable.SIZE);
  readonly time = new Float64Array(FragTable.SIZE).fill(-Infinity);

  slot(sip: number, dip: number, idVrf: number): number {
    return ((sip ^ dip ^ Math.imul(idVrf, 0x9e3779b1)) >>> 0) % FragTable.SIZE;
  }
}

function fragKeyIdVrf(pkt: Pkt): number {
  return ((rd16(pkt.buf, pkt.l3 + 4) << 16) | (pkt.vrf & 0xffff)) >>> 0;
}

/**
 * Key of an ICMP error from the header it carries: the embedded IP header and the first 8 bytes of its
 * transport header, IPs swapped and ports swapped except for ICMP (one level only, §2.2).
 * @returns KEY_OK, or the drop reason: an error about an ICMP error, or an embedded header that is not
 * IPv4, cannot form a key (Flow Invalid Protocol); one cut short is Pull Fails.
 */
function icmpInnerKey(pkt: Pkt): number {
  const b = pkt.buf;
  const in3 = pkt.l4 + 8;
  const inAvail = pkt.l4Len - 8;
  if (inAvail < 20) return VP_DROP_PULL;
  const inIhl = (b[in3] & 0x0f) << 2;
  if (b[in3] >> 4 !== 4 || inIhl < 20) return VP_DROP_FLOW_INVALID_PROTOCOL;
  if (inAvail < inIhl + 8) return VP_DROP_PULL;
  const inProto = b[in3 + 9];
  const in4 = in3 + inIhl;
  let ports = 0;
  if (inProto === IPPROTO_TCP || inProto === IPPROTO_UDP) {
    // swapped: sport = inner dport, dport = inner sport
    ports = b[in4 + 2] | (b[in4 + 3] << 8) | (b[in4] << 16) | (b[in4 + 1] << 24);
  } else if (inProto === IPPROTO_ICMP) {
    const inType = b[in4];
    if (icmpIsError(inType)) return VP_DROP_FLOW_INVALID_PROTOCOL;
    ports = inType === ICMP_ECHO || inType === ICMP_ECHOREPLY ? b[in4 + 4] | (b[in4 + 5] << 8) : inType << 16;
  }
  pkt.k0 = ports | 0;
  pkt.k1 = rdLe32(b, in3 + 16);
  pkt.k2 = rdLe32(b, in3 + 12);
  pkt.k3 = pkt.nh | 0;
  pkt.kproto = inProto;
  return KEY_OK;
}

/**
 * Build the flow key of an IPv4 packet already parsed by ipParse(), into pkt.k0..k3/kproto.
 * `nowMs` ages the fragment table.
 * @returns KEY_OK or a VP_DROP_* reason.
 */
export function flowKeyBuild(pkt: Pkt, frags: FragTable, nowMs: number): number {
  const b = pkt.buf;
  const l3 = pkt.l3;
  const proto = pkt.proto;
  let ports = 0;
  const sip = rdLe32(b, l3 + 12);
  const dip = rdLe32(b, l3 + 16);

  if (pkt.frag === FRAG_MORE) {
    // A non-head fragment carries no transport header: its ports come from the head's record.
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_ICMP) {
      const idVrf = fragKeyIdVrf(pkt);
      const s = frags.slot(sip, dip, idVrf);
      if (
        frags.sip[s] !== sip || frags.dip[s] !== dip || frags.idVrf[s] !== idVrf || frags.proto[s] !== proto ||
        nowMs - frags.time[s] > FragTable.TTL_MS
      ) {
        return VP_DROP_FRAGMENTS;
      }
      ports = frags.ports[s];
    }
  } else {
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
      if (pkt.l4Len < 4) return VP_DROP_PULL;
      ports = rdLe32(b, pkt.l4);
    } else if (proto === IPPROTO_ICMP) {
      if (pkt.l4Len < 8) return VP_DROP_PULL;
      const l4 = pkt.l4;
      const type = b[l4];
      if (type === ICMP_ECHO || type === ICMP_ECHOREPLY) {
        ports = b[l4 + 4] | (b[l4 + 5] << 8); // sport = id (wire order), dport = 0
      } else if (icmpIsError(type) && pkt.frag === FRAG_NONE) {
        // The key is the embedded packet's, swapped.
        return icmpInnerKey(pkt);
      } else {
        // sport 0, dport = the type stored in host order, as the module does: `flow -l` (ntohs) shows
        // type × 256 for these flows on x86, e.g. 3328 for a timestamp request.
        ports = type << 16;
      }
    }
    if (pkt.frag === FRAG_HEAD) {
      const idVrf = fragKeyIdVrf(pkt);
      const s = frags.slot(sip, dip, idVrf);
      frags.sip[s] = sip;
      frags.dip[s] = dip;
      frags.idVrf[s] = idVrf;
      frags.proto[s] = proto;
      frags.ports[s] = ports;
      frags.time[s] = nowMs;
    }
  }
  pkt.k0 = ports | 0;
  pkt.k1 = sip;
  pkt.k2 = dip;
  pkt.k3 = pkt.nh | 0;
  pkt.kproto = proto;
  return KEY_OK;
}

// Helpers to build and read key words from host-order numbers (agent, CLI, tests).

/** Swap the bytes of a u32: a numeric IPv4 address (a<<24|…|d) ⇄ its key word. */
export function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

function bswap16(v: number): number {
  return ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
}

/** Key word 0 from host-order ports. */
export function keyPorts(sport: number, dport: number): number {
  return (bswap16(sport) | (bswap16(dport) << 16)) >>> 0;
}

/** Host-order source port of key word 0. */
export function keySport(k0: number): number {
  return bswap16(k0 & 0xffff);
}

/** Host-order destination port of key word 0. */
export function keyDport(k0: number): number {
  return bswap16(k0 >>> 16);
}

/** Host-order IPv4 (a<<24|…|d) of a key IP word (its bytes in network order, read little-endian), u32. */
export function keyIp(w: number): number {
  return bswap32(w);
}

/**
 * Key word 0 of the reverse flow (the replies' key, §2.2): ports swapped, except for ICMP, whose
 * identifier (echo) or type stays where it is for both directions. u32.
 */
export function keyReversePorts(k0: number, proto: number): number {
  return proto === IPPROTO_ICMP ? k0 >>> 0 : ((k0 >>> 16) | (k0 << 16)) >>> 0;
}

/** Dotted quad of a key IP word. */
export function keyIpString(w: number): string {
  return `${w & 0xff}.${(w >>> 8) & 0xff}.${(w >>> 16) & 0xff}.${w >>> 24}`;
}

/**
 * Fat flow (vif_fat_flow_lookup, and the agent's PktFlowInfo::CalculatePort; reference vrouter-agent.md
 * §5.2): when (proto, port) of the key is in a fat-flow list, the other port — the client's — is zeroed,
 * so every client port of a server shares one flow. The configured port is the server port: with
 * sport < dport the source port is tried first, else the destination port; ICMP matches on port 0 and so
 * zeroes its identifier (echo) or type. `primary` is the ingress interface's list; `secondary`, the
 * destination interface's, is used when the primary list has no match. Lists hold (proto << 16) | port.
 * @returns key word 0 with the client port zeroed (or unchanged), as int32.
 */
export function fatFlowReduce(k0: number, proto: number, primary: ArrayLike<number>, secondary: ArrayLike<number>): number {
  const r = fatFlowReduceWith(k0, proto, primary);
  return r !== (k0 | 0) || secondary.length === 0 ? r : fatFlowReduceWith(k0, proto, secondary);
}

function fatFlowReduceWith(k0: number, proto: number, list: ArrayLike<number>): number {
  if (list.length === 0) return k0 | 0;
  let sport = keySport(k0);
  let dport = keyDport(k0);
  const m = proto === IPPROTO_ICMP ? 0 : sport;
  const has = (port: number): boolean => {
    const want = (proto << 16) | port;
    for (let i = 0; i < list.length; i++) if (list[i] === want) return true;
    return false;
  };
  if (sport < dport) {
    if (has(m)) dport = 0;
    else if (has(dport)) sport = 0;
  } else if (has(dport)) sport = 0;
  else if (has(m)) dport = 0;
  return keyPorts(sport, dport) | 0;
}
