/**
 * TCP state tracking on flow entries (vr_flow_tcp_digest, vr_flow_tcp_rflow_set in dp-core/vr_flow.c,
 * R2.22; reference §5.2). Runs on every packet that hits an entry, HOLD included, and digests
 * handshakes and closes into fe_tcp_flags so that the agent can age closed sessions at once and the
 * datapath can evict them (flow-evict in flow.ts).
 *
 * fe = the entry the packet hit, rfe = its reverse (only when fe has RFLOW_VALID).
 * @module
 */
import {
  IPPROTO_TCP,
  VR_FLOW_FLAG_RFLOW_VALID,
  VR_FLOW_TCP_DEAD,
  VR_FLOW_TCP_ESTABLISHED,
  VR_FLOW_TCP_ESTABLISHED_R,
  VR_FLOW_TCP_FIN,
  VR_FLOW_TCP_FIN_R,
  VR_FLOW_TCP_HALF_CLOSE,
  VR_FLOW_TCP_RST,
  VR_FLOW_TCP_SYN,
  VR_FLOW_TCP_SYN_R,
} from './defs';
import { FE_FLAGS, FE_K0, FE_RFLOW, FE_TCP_FLAGS, FE_TCP_SEQ, FlowTable } from './flow-table';
import { FRAG_MORE, Pkt, rd32 } from './pkt';

const TH_FIN = 0x01;
const TH_SYN = 0x02;
const TH_RST = 0x04;
const TH_ACK = 0x10;

function tf(i: number): number {
  return i * 64 + (FE_TCP_FLAGS >> 1);
}

function seqIdx(i: number): number {
  return (i << 5) + (FE_TCP_SEQ >> 2);
}

/** The reverse entry of `i` if its RFLOW_VALID is set, else −1. */
function rflowOf(t: FlowTable, i: number): number {
  if ((t.u16[i * 64 + (FE_FLAGS >> 1)] & VR_FLOW_FLAG_RFLOW_VALID) === 0) return -1;
  const r = t.i32[(i << 5) + (FE_RFLOW >> 2)];
  return r >= 0 && r < t.total ? r : -1;
}

/** init_close: fe and (if it resolves) rfe become DEAD. */
function tcpInitClose(t: FlowTable, fe: number, rfe: number): void {
  t.u16[tf(fe)] |= VR_FLOW_TCP_DEAD;
  if (rfe >= 0) t.u16[tf(rfe)] |= VR_FLOW_TCP_DEAD;
}

/**
 * Digest one TCP packet into entry `fe`. Needs a complete TCP header; skipped for fat flows (a key
 * port of 0) and for non-head fragments.
 */
export function flowTcpDigest(t: FlowTable, fe: number, pkt: Pkt): void {
  if (pkt.proto !== IPPROTO_TCP || pkt.frag === FRAG_MORE || pkt.l4Len < 20) return;
  const k0 = t.u32[(fe << 5) + (FE_K0 >> 2)];
  if ((k0 & 0xffff) === 0 || k0 >>> 16 === 0) return; // fat flow: a port was zeroed
  const b = pkt.buf;
  const l4 = pkt.l4;
  const thOff = (b[l4 + 12] >> 4) << 2;
  if (thOff < 20 || thOff > pkt.l4Len) return;
  const th = b[l4 + 13];
  const seq = rd32(b, l4 + 4);
  const ack = rd32(b, l4 + 8);
  const u16 = t.u16;
  const rfe = rflowOf(t, fe);
  const fi = tf(fe);

  if (th & TH_RST) {
    u16[fi] |= VR_FLOW_TCP_RST;
    if (rfe >= 0) u16[tf(rfe)] |= VR_FLOW_TCP_RST;
    tcpInitClose(t, fe, rfe);
    return;
  }

  if (th & TH_SYN) {
    t.u32[seqIdx(fe)] = seq;
    u16[fi] |= VR_FLOW_TCP_SYN;
    if (rfe >= 0) {
      u16[tf(rfe)] |= VR_FLOW_TCP_SYN_R;
      // The SYN-ACK of a handshake whose SYN the reverse saw: the reverse direction is established.
      if (u16[fi] & VR_FLOW_TCP_SYN_R && th & TH_ACK && ack === ((t.u32[seqIdx(rfe)] + 1) >>> 0)) {
        u16[tf(rfe)] |= VR_FLOW_TCP_ESTABLISHED;
        u16[fi] |= VR_FLOW_TCP_ESTABLISHED_R;
      }
    }
  } else if (th & TH_FIN) {
    t.u32[seqIdx(fe)] = (seq + (pkt.l4Len - thOff)) >>> 0;
    u16[fi] |= VR_FLOW_TCP_FIN;
    if (rfe >= 0) u16[tf(rfe)] |= VR_FLOW_TCP_FIN_R;
  }

  if (th & TH_ACK && rfe >= 0) {
    const f = u16[fi];
    if (f & VR_FLOW_TCP_FIN_R || (f & (VR_FLOW_TCP_SYN_R | VR_FLOW_TCP_ESTABLISHED_R)) === VR_FLOW_TCP_SYN_R) {
      const rseq = t.u32[seqIdx(rfe)];
      if (f & VR_FLOW_TCP_FIN_R && ack === ((rseq + 1) >>> 0)) {
        // The peer's FIN is acknowledged: the peer's direction is half closed.
        u16[tf(rfe)] |= VR_FLOW_TCP_HALF_CLOSE;
        if (u16[fi] & VR_FLOW_TCP_HALF_CLOSE) tcpInitClose(t, fe, rfe);
      } else if (ack !== rseq && (f & VR_FLOW_TCP_ESTABLISHED_R) === 0) {
        // The third packet of the handshake.
        u16[tf(rfe)] |= VR_FLOW_TCP_ESTABLISHED;
        u16[fi] |= VR_FLOW_TCP_ESTABLISHED_R;
      }
    }
  }
}

/**
 * A new entry added by the agent with RFLOW_VALID takes the reverse's state, mirrored
 * (vr_flow_tcp_rflow_set): SYN→SYN_R, FIN→FIN_R, RST→RST, DEAD→DEAD, ESTABLISHED→ESTABLISHED|ESTABLISHED_R.
 */
export function flowTcpRflowSet(t: FlowTable, fe: number, rfe: number): void {
  const r = t.u16[tf(rfe)];
  let f = 0;
  if (r & VR_FLOW_TCP_SYN) f |= VR_FLOW_TCP_SYN_R;
  if (r & VR_FLOW_TCP_FIN) f |= VR_FLOW_TCP_FIN_R;
  if (r & VR_FLOW_TCP_RST) f |= VR_FLOW_TCP_RST;
  if (r & VR_FLOW_TCP_DEAD) f |= VR_FLOW_TCP_DEAD;
  if (r & VR_FLOW_TCP_ESTABLISHED) f |= VR_FLOW_TCP_ESTABLISHED | VR_FLOW_TCP_ESTABLISHED_R;
  t.u16[tf(fe)] |= f;
}
