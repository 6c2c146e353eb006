/**
 * The agent → datapath request ring and its record codec. A single-producer single-consumer ring of
 * fixed-size int32 records in a SharedArrayBuffer: how the agent (main thread, io/dp-thread.ts) hands
 * requests to the datapath thread (io/dp-worker.ts), which blocks in poll() and so never runs its own
 * event loop. Head and tail are updated with Atomics (release/acquire); records are plain.
 *
 * The layout of every record and of the replies that come back lives here, once, as named word offsets
 * and a put/get pair per op; both threads use them. The datapath applies a decoded request through
 * dp/request.ts, the table the in-thread channel (agent/dp-channel.ts) uses too.
 *
 * Owner: the producer writes records between reserve() and push(), the consumer reads them between
 * peek() and pop(). Offsets are this module's ABI with itself only (both threads load the same build).
 * @module
 */
import type { FlowReq } from '../dp/flow';

export const RING_RECORD = 32; // int32 words per record
const HDR = 16; // words of header (head, tail, padding to keep records off the header's cache line)
const HDR_HEAD = 0; // consumer's counter: records popped
const HDR_TAIL = 1; // producer's counter: records pushed

export class Ring {
  readonly i32: Int32Array;
  readonly capacity: number;

  private readonly mask: number;

  constructor(readonly sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab);
    this.capacity = (this.i32.length - HDR) / RING_RECORD;
    this.mask = this.capacity - 1;
  }

  /** A ring of `capacity` records (a power of two: the counters wrap at 2^32 and are masked). */
  static create(capacity: number): Ring {
    if (capacity <= 0 || (capacity & (capacity - 1)) !== 0) throw new RangeError(`ring capacity ${capacity} is not a power of two`);
    return new Ring(new SharedArrayBuffer((HDR + capacity * RING_RECORD) * 4));
  }

  /** Producer: the offset of a free record to fill, or −1 when full. Publish it with push(). */
  reserve(): number {
    const head = Atomics.load(this.i32, HDR_HEAD);
    const tail = Atomics.load(this.i32, HDR_TAIL);
    if (((tail - head) | 0) >= this.capacity) return -1;
    return HDR + (tail & this.mask) * RING_RECORD;
  }

  push(): void {
    Atomics.add(this.i32, HDR_TAIL, 1);
  }

  /** Consumer: the offset of the oldest record, or −1 when empty. Release it with pop(). */
  peek(): number {
    const head = Atomics.load(this.i32, HDR_HEAD);
    const tail = Atomics.load(this.i32, HDR_TAIL);
    if (head === tail) return -1;
    return HDR + (head & this.mask) * RING_RECORD;
  }

  pop(): void {
    Atomics.add(this.i32, HDR_HEAD, 1);
  }
}

// ---------------------------------------------------------------------------------------------------
// Records. Every record starts with the op and a sequence number: the datapath echoes a non-zero seq in
// a reply, so the agent can match replies (FLOW_SET) and acknowledgements (VIF_DEL, VIF_DETACH) to the
// request. A record always fills one whole slot (a slot never holds two records and a record never
// spans the ring's wrap), so an offset into the ring plus a field offset is always inside the buffer.
// Words a record does not use are left as they were: no get reads past its op's *_END.

export const REC_OP = 0;
export const REC_SEQ = 1;
const REC_BODY = 2;

export const OP_FLOW_SET = 1;
export const OP_VIF_ADD = 2;
export const OP_VIF_DEL = 3; // acknowledged: the fd is no longer used
export const OP_NH_ADD = 4;
export const OP_RT_ADD = 5;
export const OP_RT_DEL = 6;
export const OP_BRIDGE_ADD = 7;
export const OP_STOP = 8;
export const OP_VIF_FAT = 9;
export const OP_VIF_ATTACH = 10; // the vif's OS interface is back (counters kept)
export const OP_VIF_DETACH = 11; // acknowledged: the OS interface is gone; the vif goes down
export const OP_MPLS_ADD = 12;
export const OP_VXLAN_ADD = 13;
export const OP_PORT_SET = 14; // an emulated ESXi switch port (fd −1: removed, acknowledged)

/** How the datapath thread reads and writes a vif's fd. */
export const VIF_IO_TAP = 0; // a TAP the emulator owns: read()/write() of plain frames
export const VIF_IO_PACKET = 1; // a packet socket on an interface it attached to: recvmmsg/sendmmsg with a virtio-net header
export const VIF_IO_SWITCH = 2; // no fd: the trunk of the emulated ESXi switch in the same thread (esxi/dvswitch.ts)

// A MAC takes one word per byte: a record has room to spare, and every field stays a plain word read
// (no shifting or byte views over the shared words).
const MAC_WORDS = 6;

// FLOW_SET: the FlowReq fields in vr_flow_req order, the key as the table's four words (see
// dp/flow-table.ts) so the datapath compares them without re-packing.
const FS_INDEX = REC_BODY;
const FS_RINDEX = FS_INDEX + 1;
const FS_ACTION = FS_RINDEX + 1;
const FS_FLAGS = FS_ACTION + 1;
const FS_K0 = FS_FLAGS + 1;
const FS_K1 = FS_K0 + 1;
const FS_K2 = FS_K1 + 1;
const FS_K3 = FS_K2 + 1;
const FS_PROTO = FS_K3 + 1;
const FS_VRF = FS_PROTO + 1;
const FS_DVRF = FS_VRF + 1;
const FS_MIR = FS_DVRF + 1;
const FS_SEC_MIR = FS_MIR + 1;
const FS_ECMP = FS_SEC_MIR + 1;
const FS_SRC_NH = FS_ECMP + 1;
const FS_DROP = FS_SRC_NH + 1;
const FS_END = FS_DROP + 1;

// VIF_ADD
const VA_IDX = REC_BODY;
const VA_FD = VA_IDX + 1;
const VA_TYPE = VA_FD + 1;
const VA_VRF = VA_TYPE + 1;
const VA_NH = VA_VRF + 1;
const VA_FLAGS = VA_NH + 1;
const VA_MTU = VA_FLAGS + 1;
const VA_MAC = VA_MTU + 1;
const VA_IO = VA_MAC + MAC_WORDS;
const VA_IP = VA_IO + 1;
const VA_PARENT = VA_IP + 1; // a VLAN sub-interface's parent, vlan and ovlan (−1 for other vifs)
const VA_VLAN = VA_PARENT + 1;
const VA_OVLAN = VA_VLAN + 1;
const VA_END = VA_OVLAN + 1;

// PORT_SET: an ESXi switch port — the VM NIC's TAP fd, the port group's VLAN, the trunk vif it tags onto
const PS_VLAN = REC_BODY;
const PS_FD = PS_VLAN + 1;
const PS_TRUNK = PS_FD + 1;
const PS_IO = PS_TRUNK + 1; // VIF_IO_TAP (a namespace VM's TAP) or VIF_IO_PACKET (a qemu guest's tap)
const PS_END = PS_IO + 1;

// VIF_ATTACH
const VT_IDX = REC_BODY;
const VT_FD = VT_IDX + 1;
const VT_IO = VT_FD + 1;
const VT_END = VT_IO + 1;

// VIF_DEL, VIF_DETACH
const VD_IDX = REC_BODY;
const VD_END = VD_IDX + 1;

// NH_ADD
const NA_ID = REC_BODY;
const NA_TYPE = NA_ID + 1;
const NA_VIF = NA_TYPE + 1;
const NA_DMAC = NA_VIF + 1;
const NA_FLAGS = NA_DMAC + MAC_WORDS;
const NA_SIP = NA_FLAGS + 1;
const NA_DIP = NA_SIP + 1;
const NA_VRF = NA_DIP + 1;
const NA_END = NA_VRF + 1;

// RT_ADD, RT_DEL (which uses vrf and ip only)
const RT_VRF = REC_BODY;
const RT_IP = RT_VRF + 1;
const RT_NH = RT_IP + 1;
const RT_FLAGS = RT_NH + 1;
const RT_LABEL = RT_FLAGS + 1;
const RT_HAS_MAC = RT_LABEL + 1;
const RT_MAC = RT_HAS_MAC + 1;
const RT_END = RT_MAC + MAC_WORDS;

// BRIDGE_ADD
const BA_VRF = REC_BODY;
const BA_MAC = BA_VRF + 1;
const BA_VIF = BA_MAC + MAC_WORDS;
const BA_NH = BA_VIF + 1;
const BA_LABEL = BA_NH + 1;
const BA_END = BA_LABEL + 1;

// MPLS_ADD, VXLAN_ADD: a key (label or VNI) and its nexthop
const MX_KEY = REC_BODY;
const MX_NH = MX_KEY + 1;
const MX_END = MX_NH + 1;

// VIF_FAT: the rules ((proto << 16) | port) fill the rest of the record, so a vif's whole rule set
// changes in one request (the datapath never sees half of it).
const FAT_IDX = REC_BODY;
const FAT_COUNT = FAT_IDX + 1;
const FAT_RULES = FAT_COUNT + 1;
/** Fat-flow rules one record holds: 28 (R2.22's MAX_FAT_FLOW_ENTRIES, which the configuration parser enforces, fits). */
export const RING_FAT_MAX = RING_RECORD - FAT_RULES;

// Check the layout once at load (BUILD_ASSERT_DECL): every record fits its slot.
for (const end of [FS_END, VA_END, PS_END, VT_END, VD_END, NA_END, RT_END, BA_END, MX_END]) {
  if (end > RING_RECORD) throw new Error(`ring record layout: ${end} words do not fit a ${RING_RECORD}-word record`);
}

/** The op of the record at `o`. */
export function ringOp(a: Int32Array, o: number): number {
  return a[o + REC_OP];
}

/** The sequence number of the record at `o` (0: no reply wanted). */
export function ringSeq(a: Int32Array, o: number): number {
  return a[o + REC_SEQ];
}

function putHead(a: Int32Array, o: number, op: number, seq: number): void {
  a[o + REC_OP] = op;
  a[o + REC_SEQ] = seq;
}

function putMac(a: Int32Array, at: number, mac: Uint8Array): void {
  for (let k = 0; k < MAC_WORDS; k++) a[at + k] = mac[k];
}

function getMac(a: Int32Array, at: number, mac: Uint8Array): void {
  for (let k = 0; k < MAC_WORDS; k++) mac[k] = a[at + k];
}

/** Write a FLOW_SET request for `q` at `o`. */
export function ringPutFlowSet(a: Int32Array, o: number, seq: number, q: FlowReq): void {
  putHead(a, o, OP_FLOW_SET, seq);
  a[o + FS_INDEX] = q.index;
  a[o + FS_RINDEX] = q.rindex;
  a[o + FS_ACTION] = q.action;
  a[o + FS_FLAGS] = q.flags;
  a[o + FS_K0] = q.k0;
  a[o + FS_K1] = q.k1;
  a[o + FS_K2] = q.k2;
  a[o + FS_K3] = q.k3;
  a[o + FS_PROTO] = q.proto;
  a[o + FS_VRF] = q.vrf;
  a[o + FS_DVRF] = q.dvrf;
  a[o + FS_MIR] = q.mirId;
  a[o + FS_SEC_MIR] = q.secMirId;
  a[o + FS_ECMP] = q.ecmpNhIndex;
  a[o + FS_SRC_NH] = q.srcNhIndex;
  a[o + FS_DROP] = q.dropReason;
}

/** Read the FLOW_SET request at `o` into `q` (reused: no allocation). */
export function ringGetFlowSet(a: Int32Array, o: number, q: FlowReq): void {
  q.index = a[o + FS_INDEX];
  q.rindex = a[o + FS_RINDEX];
  q.action = a[o + FS_ACTION];
  q.flags = a[o + FS_FLAGS];
  q.k0 = a[o + FS_K0];
  q.k1 = a[o + FS_K1];
  q.k2 = a[o + FS_K2];
  q.k3 = a[o + FS_K3];
  q.proto = a[o + FS_PROTO];
  q.vrf = a[o + FS_VRF];
  q.dvrf = a[o + FS_DVRF];
  q.mirId = a[o + FS_MIR];
  q.secMirId = a[o + FS_SEC_MIR];
  q.ecmpNhIndex = a[o + FS_ECMP];
  q.srcNhIndex = a[o + FS_SRC_NH];
  q.dropReason = a[o + FS_DROP];
}

/** A decoded VIF_ADD (the vifr_* fields the datapath keeps, plus the fd and how to use it). */
export interface VifAddRec {
  idx: number;
  fd: number;
  type: number;
  vrf: number;
  nh: number;
  flags: number;
  mtu: number;
  /** 6 bytes, overwritten by each get. */
  mac: Uint8Array;
  /** VIF_IO_*. */
  io: number;
  /** vifr_ip (the fabric address of the physical vif and vhost0), as an int32. */
  ip: number;
  /** A VLAN sub-interface's parent vif and its VLANs (vifr_parent_vif_idx, vifr_vlan_id, vifr_ovlan_id); −1 elsewhere. */
  parent: number;
  vlan: number;
  ovlan: number;
}

export function ringPutVifAdd(
  a: Int32Array, o: number, idx: number, fd: number, type: number, vrf: number, nh: number, flags: number, mtu: number,
  mac: Uint8Array, io: number, ip = 0, parent = -1, vlan = -1, ovlan = -1,
): void {
  putHead(a, o, OP_VIF_ADD, 0);
  a[o + VA_PARENT] = parent;
  a[o + VA_VLAN] = vlan;
  a[o + VA_OVLAN] = ovlan;
  a[o + VA_IDX] = idx;
  a[o + VA_FD] = fd;
  a[o + VA_TYPE] = type;
  a[o + VA_VRF] = vrf;
  a[o + VA_NH] = nh;
  a[o + VA_FLAGS] = flags;
  a[o + VA_MTU] = mtu;
  putMac(a, o + VA_MAC, mac);
  a[o + VA_IO] = io;
  a[o + VA_IP] = ip | 0;
}

export function ringGetVifAdd(a: Int32Array, o: number, v: VifAddRec): void {
  v.idx = a[o + VA_IDX];
  v.fd = a[o + VA_FD];
  v.type = a[o + VA_TYPE];
  v.vrf = a[o + VA_VRF];
  v.nh = a[o + VA_NH];
  v.flags = a[o + VA_FLAGS];
  v.mtu = a[o + VA_MTU];
  getMac(a, o + VA_MAC, v.mac);
  v.io = a[o + VA_IO];
  v.ip = a[o + VA_IP];
  v.parent = a[o + VA_PARENT];
  v.vlan = a[o + VA_VLAN];
  v.ovlan = a[o + VA_OVLAN];
}

/** A decoded PORT_SET. */
export interface PortSetRec {
  vlan: number;
  fd: number;
  trunk: number;
  io: number;
}

/** Write a PORT_SET: the switch port of `vlan` reads and writes `fd` (−1: removed; the datapath acknowledges a non-zero `seq`). */
export function ringPutPortSet(a: Int32Array, o: number, seq: number, vlan: number, fd: number, trunk: number, io = VIF_IO_TAP): void {
  putHead(a, o, OP_PORT_SET, seq);
  a[o + PS_VLAN] = vlan;
  a[o + PS_FD] = fd;
  a[o + PS_TRUNK] = trunk;
  a[o + PS_IO] = io;
}

export function ringGetPortSet(a: Int32Array, o: number, p: PortSetRec): void {
  p.vlan = a[o + PS_VLAN];
  p.fd = a[o + PS_FD];
  p.trunk = a[o + PS_TRUNK];
  p.io = a[o + PS_IO];
}

/** A decoded VIF_ATTACH: the vif's new fd and how to use it. */
export interface VifAttachRec {
  idx: number;
  fd: number;
  io: number;
}

export function ringPutVifAttach(a: Int32Array, o: number, idx: number, fd: number, io: number): void {
  putHead(a, o, OP_VIF_ATTACH, 0);
  a[o + VT_IDX] = idx;
  a[o + VT_FD] = fd;
  a[o + VT_IO] = io;
}

export function ringGetVifAttach(a: Int32Array, o: number, v: VifAttachRec): void {
  v.idx = a[o + VT_IDX];
  v.fd = a[o + VT_FD];
  v.io = a[o + VT_IO];
}

/** Write a VIF_DEL or VIF_DETACH (`op`) of vif `idx`; the datapath acknowledges a non-zero `seq`. */
export function ringPutVifRelease(a: Int32Array, o: number, op: typeof OP_VIF_DEL | typeof OP_VIF_DETACH, seq: number, idx: number): void {
  putHead(a, o, op, seq);
  a[o + VD_IDX] = idx;
}

/** The vif of a VIF_DEL or VIF_DETACH. */
export function ringGetVifRelease(a: Int32Array, o: number): number {
  return a[o + VD_IDX];
}

/** A decoded NH_ADD. */
export interface NhAddRec {
  id: number;
  type: number;
  vif: number;
  /** 6 bytes, overwritten by each get. */
  dmac: Uint8Array;
  /** NH_FLAG_*, and a tunnel's outer addresses (int32) or a VRF_TRANSLATE's VRF. */
  flags: number;
  sip: number;
  dip: number;
  vrf: number;
}

export function ringPutNhAdd(
  a: Int32Array, o: number, id: number, type: number, vif: number, dmac: Uint8Array, flags = 0, sip = 0, dip = 0, vrf = 0,
): void {
  putHead(a, o, OP_NH_ADD, 0);
  a[o + NA_ID] = id;
  a[o + NA_TYPE] = type;
  a[o + NA_VIF] = vif;
  putMac(a, o + NA_DMAC, dmac);
  a[o + NA_FLAGS] = flags;
  a[o + NA_SIP] = sip | 0;
  a[o + NA_DIP] = dip | 0;
  a[o + NA_VRF] = vrf;
}

export function ringGetNhAdd(a: Int32Array, o: number, n: NhAddRec): void {
  n.id = a[o + NA_ID];
  n.type = a[o + NA_TYPE];
  n.vif = a[o + NA_VIF];
  getMac(a, o + NA_DMAC, n.dmac);
  n.flags = a[o + NA_FLAGS];
  n.sip = a[o + NA_SIP];
  n.dip = a[o + NA_DIP];
  n.vrf = a[o + NA_VRF];
}

/** A decoded RT_ADD or RT_DEL (nh and flags: RT_ADD only). `ip` is the /32's key word. */
export interface RtRec {
  vrf: number;
  ip: number;
  nh: number;
  flags: number;
  /** The tunnel label or VNI, −1 none. */
  label: number;
  /** The stitched MAC (6 bytes, overwritten by each get), when hasMac. */
  hasMac: boolean;
  mac: Uint8Array;
}

export function ringPutRtAdd(a: Int32Array, o: number, vrf: number, ipWord: number, nh: number, flags: number, label = -1, mac: Uint8Array | null = null): void {
  putHead(a, o, OP_RT_ADD, 0);
  a[o + RT_VRF] = vrf;
  a[o + RT_IP] = ipWord;
  a[o + RT_NH] = nh;
  a[o + RT_FLAGS] = flags;
  a[o + RT_LABEL] = label;
  a[o + RT_HAS_MAC] = mac === null ? 0 : 1;
  if (mac !== null) putMac(a, o + RT_MAC, mac);
}

export function ringPutRtDel(a: Int32Array, o: number, vrf: number, ipWord: number): void {
  putHead(a, o, OP_RT_DEL, 0);
  a[o + RT_VRF] = vrf;
  a[o + RT_IP] = ipWord;
}

/** Read an RT_ADD, or the vrf and ip of an RT_DEL (its nh and flags are then whatever the slot held). */
export function ringGetRt(a: Int32Array, o: number, rt: RtRec): void {
  rt.vrf = a[o + RT_VRF];
  rt.ip = a[o + RT_IP];
  rt.nh = a[o + RT_NH];
  rt.flags = a[o + RT_FLAGS];
  rt.label = a[o + RT_LABEL];
  rt.hasMac = a[o + RT_HAS_MAC] === 1;
  if (rt.hasMac) getMac(a, o + RT_MAC, rt.mac);
}

/** A decoded BRIDGE_ADD. */
export interface BridgeAddRec {
  vrf: number;
  /** 6 bytes, overwritten by each get. */
  mac: Uint8Array;
  vif: number;
  /** A remote MAC (vif −1): its tunnel nexthop and label / VNI. */
  nh: number;
  label: number;
}

export function ringPutBridgeAdd(a: Int32Array, o: number, vrf: number, mac: Uint8Array, vif: number, nh = -1, label = -1): void {
  putHead(a, o, OP_BRIDGE_ADD, 0);
  a[o + BA_VRF] = vrf;
  putMac(a, o + BA_MAC, mac);
  a[o + BA_VIF] = vif;
  a[o + BA_NH] = nh;
  a[o + BA_LABEL] = label;
}

export function ringGetBridgeAdd(a: Int32Array, o: number, b: BridgeAddRec): void {
  b.vrf = a[o + BA_VRF];
  getMac(a, o + BA_MAC, b.mac);
  b.vif = a[o + BA_VIF];
  b.nh = a[o + BA_NH];
  b.label = a[o + BA_LABEL];
}

/** Write an MPLS_ADD or VXLAN_ADD (`op`): label or VNI `key` → nexthop `nh` (−1 removes). */
export function ringPutMapAdd(a: Int32Array, o: number, op: typeof OP_MPLS_ADD | typeof OP_VXLAN_ADD, key: number, nh: number): void {
  putHead(a, o, op, 0);
  a[o + MX_KEY] = key;
  a[o + MX_NH] = nh;
}

/** The key (label or VNI) and the nexthop of an MPLS_ADD or VXLAN_ADD. */
export function ringGetMapKey(a: Int32Array, o: number): number {
  return a[o + MX_KEY];
}

export function ringGetMapNh(a: Int32Array, o: number): number {
  return a[o + MX_NH];
}

/** Write a VIF_FAT of vif `idx`. @throws RangeError if the rules do not fit one record (RING_FAT_MAX). */
export function ringPutVifFat(a: Int32Array, o: number, idx: number, rules: ArrayLike<number>): void {
  if (rules.length > RING_FAT_MAX) throw new RangeError(`vif ${idx}: ${rules.length} fat-flow rules do not fit a record`);
  putHead(a, o, OP_VIF_FAT, 0);
  a[o + FAT_IDX] = idx;
  a[o + FAT_COUNT] = rules.length;
  for (let k = 0; k < rules.length; k++) a[o + FAT_RULES + k] = rules[k];
}

/** The vif of a VIF_FAT. */
export function ringGetVifFatIdx(a: Int32Array, o: number): number {
  return a[o + FAT_IDX];
}

/** The rules of a VIF_FAT: a view of the record's words (valid until the record is popped). */
export function ringGetVifFatRules(a: Int32Array, o: number): Int32Array {
  return a.subarray(o + FAT_RULES, o + FAT_RULES + Math.min(a[o + FAT_COUNT], RING_FAT_MAX));
}

export function ringPutStop(a: Int32Array, o: number): void {
  putHead(a, o, OP_STOP, 0);
}

// ---------------------------------------------------------------------------------------------------
// Replies (datapath → agent), packed back to back in one Int32Array per burst: the request's seq, then
// FLOW_SET's vr_response code, index and the entry's stats (acknowledgements carry 0, idx, 0, 0).
// Fixed-size, so the agent walks them without lengths and the datapath appends without allocating.

const RP_SEQ = 0;
const RP_ERR = 1;
const RP_INDEX = 2;
const RP_BYTES = 3;
const RP_PACKETS = 4;
/** Words per reply. */
export const RING_REPLY = 5;

/** The part of a reply after its seq (a FlowResp's fields). */
export interface ReplyRec {
  err: number;
  index: number;
  bytes: number;
  packets: number;
}

/** Write a reply at word `k` of `b` (the caller keeps `k + RING_REPLY <= b.length`). */
export function ringPutReply(b: Int32Array, k: number, seq: number, err: number, index: number, bytes: number, packets: number): void {
  b[k + RP_SEQ] = seq;
  b[k + RP_ERR] = err;
  b[k + RP_INDEX] = index;
  b[k + RP_BYTES] = bytes;
  b[k + RP_PACKETS] = packets;
}

/** The seq of the reply at word `k`. */
export function ringReplySeq(b: Int32Array, k: number): number {
  return b[k + RP_SEQ];
}

/** Read the reply at word `k` into `out`. @returns `out` */
export function ringGetReply<T extends ReplyRec>(b: Int32Array, k: number, out: T): T {
  out.err = b[k + RP_ERR];
  out.index = b[k + RP_INDEX];
  out.bytes = b[k + RP_BYTES];
  out.packets = b[k + RP_PACKETS];
  return out;
}
