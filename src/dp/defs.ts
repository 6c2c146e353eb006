/**
 * Constants that cross a boundary: flow-entry flags and actions, TCP bits, drop reasons, trap codes,
 * the agent_hdr layout. Names and values are R2.22's (include/vr_flow.h, include/vr_packet.h,
 * include/vr_defs.h on the Juniper/contrail-vrouter R2.22.x branch; reference/vrouter-datapath.md §3–§6),
 * so they can be checked against the C headers. Pure data: no state, no I/O.
 * @module
 */

// fe_action, include/vr_flow.h (§3.1).
export const VR_FLOW_ACTION_DROP = 0;
export const VR_FLOW_ACTION_HOLD = 1;
export const VR_FLOW_ACTION_FORWARD = 2;
export const VR_FLOW_ACTION_NAT = 3;
/** The letters `flow -l` shows for fe_action (utils/flow.c), indexed by the value. */
export const VR_FLOW_ACTION_LETTERS = ['D', 'H', 'F', 'N'] as const;

/** The `flow -l` letter of action `a`; U for a value without one. */
export function flowActionLetter(a: number): string {
  return VR_FLOW_ACTION_LETTERS[a] ?? 'U';
}

// fe_flags (u16), include/vr_flow.h at R2.22 (§3.2). Shared-memory ABI with the agent and the CLI.
export const VR_FLOW_FLAG_ACTIVE = 0x0001;
// NAT sub-flags, meaningful with VR_FLOW_ACTION_NAT.
export const VR_FLOW_FLAG_SNAT = 0x0002;
export const VR_FLOW_FLAG_SPAT = 0x0004;
export const VR_FLOW_FLAG_DNAT = 0x0008;
export const VR_FLOW_FLAG_DPAT = 0x0010;
export const VR_FLOW_FLAG_NAT_MASK = VR_FLOW_FLAG_SNAT | VR_FLOW_FLAG_SPAT | VR_FLOW_FLAG_DNAT | VR_FLOW_FLAG_DPAT;
export const VR_FLOW_FLAG_TRAP_ECMP = 0x0020;
export const VR_FLOW_FLAG_DELETE_MARKED = 0x0040;
// 0x0080 is free in R2.22 (BGP_SERVICE in later releases).
export const VR_FLOW_FLAG_MODIFIED = 0x0100;
export const VR_FLOW_FLAG_NEW_FLOW = 0x0200;
export const VR_FLOW_FLAG_EVICT_CANDIDATE = 0x0400;
export const VR_FLOW_FLAG_EVICTED = 0x0800;
export const VR_FLOW_FLAG_RFLOW_VALID = 0x1000;
export const VR_FLOW_FLAG_MIRROR = 0x2000;
export const VR_FLOW_FLAG_VRFT = 0x4000;
export const VR_FLOW_FLAG_LINK_LOCAL = 0x8000;
/** Bits the datapath owns and keeps across an agent FLOW_SET (R2.22: no MODIFIED here). */
export const VR_FLOW_FLAG_DP_BITS = VR_FLOW_FLAG_EVICT_CANDIDATE | VR_FLOW_FLAG_EVICTED | VR_FLOW_FLAG_NEW_FLOW;

// fe_tcp_flags (u16), include/vr_flow.h (§5.1). X = this direction sent X, X_R = the reverse did.
export const VR_FLOW_TCP_FIN = 0x0001;
export const VR_FLOW_TCP_HALF_CLOSE = 0x0002;
export const VR_FLOW_TCP_FIN_R = 0x0004;
export const VR_FLOW_TCP_SYN = 0x0008;
export const VR_FLOW_TCP_SYN_R = 0x0010;
export const VR_FLOW_TCP_ESTABLISHED = 0x0020;
export const VR_FLOW_TCP_ESTABLISHED_R = 0x0040;
export const VR_FLOW_TCP_RST = 0x0080;
// 0x0100-0x4000 are free.
export const VR_FLOW_TCP_DEAD = 0x8000;

// vr_hentry_t hentry_flags, include/vr_htable.h (§2.4).
export const VR_HENTRY_FLAG_VALID = 0x1;
export const VR_HENTRY_FLAG_DELETE_MARKED = 0x2;
export const VR_HENTRY_FLAG_DELETE_PROCESSED = 0x4;
export const VR_HENTRY_FLAG_IN_FREE_LIST = 0x8;

/** VR_HENTRIES_PER_BUCKET / VR_FLOW_ENTRIES_PER_BUCKET. */
export const VR_FLOW_ENTRIES_PER_BUCKET = 4;
/** VR_MAX_FLOW_QUEUE_ENTRIES: packets a HOLD entry queues (3 since d527507a, Nov 2014). */
export const VR_MAX_FLOW_QUEUE_ENTRIES = 3;
/** VR_MAX_FLOW_TABLE_HOLD_COUNT: entries in HOLD above which new flows are refused (flow_hold_limit on). */
export const VR_MAX_FLOW_TABLE_HOLD_COUNT = 4096;
/** VR_FLOW_MAX_CPUS: per-CPU hold counters reported. */
export const VR_FLOW_MAX_CPUS = 128;
/** R2.22 flow key: sport, dport, sip, dip, nh_id, proto (struct vr_inet_flow, packed). */
export const VR_FLOW_KEY_LEN = 17;
/** fe_type. */
export const VP_TYPE_NULL = 0;
export const VP_TYPE_IP = 2;
/** 255 = no mirror (VR_MAX_MIRROR_INDICES). */
export const VR_MAX_MIRROR_INDICES = 255;
/** VR_AGENT_MIN_PACKET_LEN: a trapped packet that has to be copied is cut to this. */
export const VR_AGENT_MIN_PACKET_LEN = 128;
/** The agent's "vrrp_mac", used as the vif MAC of every VM interface (agent/cmn/agent.cc). */
export const VR_VIF_MAC = '00:00:5e:00:01:00';

// fe_drop_reason, R2.22 include/vr_flow.h VR_FLOW_DR_* (§3.4). Index = value; the string is what
// `flow -l` prints. Only append.
export const VR_FLOW_DR_NAMES = [
  'Unknown', 'IntfErr', 'Ipv4Dis', 'VrfErr', 'NoSrcRt', 'NoDstRt', 'Audit', 'VrfChange', 'NoRevFlow',
  'RevFlowChng', 'NatChng', 'FlowLim', 'LinkSrcNatErr', 'Policy', 'OutPolicy', 'SG', 'OutSG', 'RevSG', 'RevOutSG',
] as const;
export const VR_FLOW_DR_UNKNOWN = 0;
export const VR_FLOW_DR_NO_DST_ROUTE = 5;
export const VR_FLOW_DR_AUDIT_ENTRY = 6;
export const VR_FLOW_DR_NO_REVERSE_FLOW = 8;
export const VR_FLOW_DR_FLOW_LIMIT = 11;
export const VR_FLOW_DR_POLICY = 13;
export const VR_FLOW_DR_OUT_POLICY = 14;

// Trap codes, include/vr_defs.h at R2.22 (§4.4). 15 was AGENT_TRAP_SESSION_CLOSE in Jun-Aug 2015.
export const AGENT_TRAP_SWITCH = 0;
export const AGENT_TRAP_ROUTE = 1;
export const AGENT_TRAP_ARP = 2;
export const AGENT_TRAP_L2_PROTOCOLS = 3;
export const AGENT_TRAP_NEXTHOP = 4;
export const AGENT_TRAP_RESOLVE = 5;
export const AGENT_TRAP_FLOW_MISS = 6;
export const AGENT_TRAP_L3_PROTOCOLS = 7;
export const AGENT_TRAP_DIAG = 8;
export const AGENT_TRAP_ECMP_RESOLVE = 9;
export const AGENT_TRAP_SOURCE_MISMATCH = 10;
export const AGENT_TRAP_HANDLE_DF = 11;
export const AGENT_TRAP_ZERO_TTL = 12;
export const AGENT_TRAP_ICMP_ERROR = 13;
export const AGENT_TRAP_TOR_CONTROL_PKT = 14;
export const AGENT_TRAP_FLOW_ACTION_HOLD = 15;

// struct agent_hdr (packed, network order on the wire), after a 14-byte Ethernet header on pkt0.
export const AH_IFINDEX = 0; // u16
export const AH_VRF = 2; // u16
export const AH_CMD = 4; // u16
export const AH_CMD_PARAM = 6; // u32: flow index for flow traps
export const AH_CMD_PARAM_1 = 10; // u32: key nexthop id
export const AH_CMD_PARAM_2 = 14; // u32: bytes
export const AH_CMD_PARAM_3 = 18; // u32: packets
export const AH_CMD_PARAM_4 = 22; // u32: bytes_oflow | packets_oflow << 16
export const AGENT_HDR_LEN = 26;
export const ETH_HLEN = 14;

// VP_DROP_*, include/vr_packet.h at R2.22 (§6). Index = value. Only append.
export const VP_DROP_NAMES = [
  'VP_DROP_DISCARD', 'VP_DROP_PULL', 'VP_DROP_INVALID_IF', 'VP_DROP_ARP_NO_WHERE_TO_GO', 'VP_DROP_GARP_FROM_VM',
  'VP_DROP_INVALID_ARP', 'VP_DROP_TRAP_NO_IF', 'VP_DROP_NOWHERE_TO_GO', 'VP_DROP_FLOW_QUEUE_LIMIT_EXCEEDED',
  'VP_DROP_FLOW_NO_MEMORY', 'VP_DROP_FLOW_INVALID_PROTOCOL', 'VP_DROP_FLOW_NAT_NO_RFLOW', 'VP_DROP_FLOW_ACTION_DROP',
  'VP_DROP_FLOW_ACTION_INVALID', 'VP_DROP_FLOW_UNUSABLE', 'VP_DROP_FLOW_TABLE_FULL', 'VP_DROP_INTERFACE_TX_DISCARD',
  'VP_DROP_INTERFACE_DROP', 'VP_DROP_DUPLICATED', 'VP_DROP_PUSH', 'VP_DROP_TTL_EXCEEDED', 'VP_DROP_INVALID_NH',
  'VP_DROP_INVALID_LABEL', 'VP_DROP_INVALID_PROTOCOL', 'VP_DROP_INTERFACE_RX_DISCARD', 'VP_DROP_INVALID_MCAST_SOURCE',
  'VP_DROP_HEAD_ALLOC_FAIL', 'VP_DROP_HEAD_SPACE_RESERVE_FAIL', 'VP_DROP_PCOW_FAIL', 'VP_DROP_MCAST_DF_BIT',
  'VP_DROP_MCAST_CLONE_FAIL', 'VP_DROP_NO_MEMORY', 'VP_DROP_REWRITE_FAIL', 'VP_DROP_MISC', 'VP_DROP_INVALID_PACKET',
  'VP_DROP_CKSUM_ERR', 'VP_DROP_UNUSED_36', 'VP_DROP_NO_FMD', 'VP_DROP_CLONED_ORIGINAL', 'VP_DROP_INVALID_VNID',
  'VP_DROP_FRAGMENTS', 'VP_DROP_INVALID_SOURCE', 'VP_DROP_ARP_NO_ROUTE', 'VP_DROP_L2_NO_ROUTE',
  'VP_DROP_FRAGMENT_QUEUE_FAIL',
] as const;
export const VP_DROP_MAX = VP_DROP_NAMES.length; // 45
export const VP_DROP_DISCARD = 0;
export const VP_DROP_PULL = 1;
export const VP_DROP_INVALID_IF = 2;
export const VP_DROP_ARP_NO_WHERE_TO_GO = 3;
export const VP_DROP_GARP_FROM_VM = 4;
export const VP_DROP_INVALID_ARP = 5;
export const VP_DROP_TRAP_NO_IF = 6;
export const VP_DROP_NOWHERE_TO_GO = 7;
export const VP_DROP_FLOW_QUEUE_LIMIT_EXCEEDED = 8;
export const VP_DROP_FLOW_NO_MEMORY = 9;
export const VP_DROP_FLOW_INVALID_PROTOCOL = 10;
export const VP_DROP_FLOW_NAT_NO_RFLOW = 11;
export const VP_DROP_FLOW_ACTION_DROP = 12;
export const VP_DROP_FLOW_ACTION_INVALID = 13;
export const VP_DROP_FLOW_UNUSABLE = 14;
export const VP_DROP_FLOW_TABLE_FULL = 15;
export const VP_DROP_INTERFACE_TX_DISCARD = 16;
export const VP_DROP_INTERFACE_DROP = 17;
export const VP_DROP_TTL_EXCEEDED = 20;
export const VP_DROP_INVALID_NH = 21;
export const VP_DROP_INVALID_LABEL = 22;
export const VP_DROP_INVALID_PROTOCOL = 23;
export const VP_DROP_INTERFACE_RX_DISCARD = 24;
export const VP_DROP_NO_MEMORY = 31;
export const VP_DROP_MISC = 33;
export const VP_DROP_INVALID_PACKET = 34;
export const VP_DROP_CKSUM_ERR = 35;
export const VP_DROP_INVALID_VNID = 39;
export const VP_DROP_FRAGMENTS = 40;
export const VP_DROP_INVALID_SOURCE = 41;
export const VP_DROP_ARP_NO_ROUTE = 42;
export const VP_DROP_L2_NO_ROUTE = 43;
export const VP_DROP_FRAGMENT_QUEUE_FAIL = 44;

// IP protocol numbers used by the key builder.
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_SCTP = 132;

export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;
export const ETH_P_8021Q = 0x8100;
