/**
 * The flow table: N main + O overflow entries at a fixed 128-byte stride in one SharedArrayBuffer,
 * indices 0..N-1 main (4-entry hash buckets), N..N+O-1 overflow, exactly the index space of the
 * module's /dev/flow mapping. Emulates dp-core/vr_htable.c (buckets, per-bucket overflow chains,
 * overflow free list) and the entry storage of dp-core/vr_flow.c at R2.22 (reference §2).
 *
 * Layout of one entry (byte offsets inside the 128-byte stride). The fields and their widths are the
 * R2.22 `struct vr_flow_entry` (+ `vr_hentry_t`), but naturally aligned so that typed arrays and
 * Atomics can reach them; the C struct is packed with the key at offset 21 (§2.7). Offsets are ABI
 * between the datapath, the agent and the CLI readers: never move one, append in the reserved tail.
 *
 *   off size field            writer   C name
 *     0  i32 hentry flags     dp       hentry_flags (VALID, DELETE_MARKED, …, IN_FREE_LIST)
 *     4  i32 bucket index     dp       hentry_bucket_index: overflow entry -> its bucket's last slot
 *     8  i32 next index       dp       hentry_next_index: chain / free-list link, -1 = none
 *    12  u32 key word 0       dp       key bytes 0-3: sport, dport (network order, read LE)
 *    16  u32 key word 1       dp       key bytes 4-7: sip (network order, read LE)
 *    20  u32 key word 2       dp       key bytes 8-11: dip
 *    24  u32 key word 3       dp       key bytes 12-15: nh_id (host order)
 *    28  u8  proto            dp       key byte 16
 *    29  u8  key_len          dp       17 when a key is present, 0 after reset
 *    30  u16 tcp_flags        dp       fe_tcp_flags
 *    32  u32 tcp_seq          dp       fe_tcp_seq
 *    36  u16 action           dp       fe_action (agent changes it only through FLOW_SET)
 *    38  u16 flags            dp       fe_flags (state changes with Atomics on this word)
 *    40  i32 rflow            dp       fe_rflow
 *    44  u16 vrf, 46 u16 dvrf dp       fe_vrf, fe_dvrf
 *    48  u16 src_nh_index     dp       fe_src_nh_index
 *    50  u8  mirror_id, 51 u8 sec_mirror_id
 *    52  u32 bytes, 56 u32 packets     fe_stats.flow_bytes / flow_packets
 *    60  u16 bytes_oflow, 62 u8 packets_oflow   (48-bit bytes, 40-bit packets)
 *    63  i8  ecmp_nh_index    dp       fe_ecmp_nh_index
 *    64  u8  drop_reason, 65 u8 type, 66 u16 udp_src_port
 *    68  i32 hold queue id    dp       fe_hold_list (an id into the hold pool, -1 = none)
 *    72..127 reserved (zero), except in the first entry of each bucket:
 *    72  i32[4] slot tags     dp       emulator: jhash|1 of the key in each of the bucket's 4 slots, 0 = free
 *    88  i32 chain head       dp       emulator: copy of the last slot's next index (the overflow chain)
 *
 * The bucket tags are a lookup aid of the emulator, not a vRouter field (TF master keeps a per-bucket
 * lock in the first entry the same way): a lookup reads one cache line of the bucket's first entry and
 * touches an entry only when its tag matches, instead of the 4 slots' 4 cache lines. They change with
 * the hentries (htAlloc/htRelease) and never with the flow fields.
 *
 * Writers: only the datapath thread writes entries (the kernel module is the only writer of the real
 * table). The agent and the CLI read it directly; a reader checks an entry (flags, key), copies what it
 * needs and checks again, as the agent's GetKFlowAndStats does. @module
 */
import {
  VR_FLOW_ENTRIES_PER_BUCKET,
  VR_FLOW_FLAG_ACTIVE,
  VR_FLOW_FLAG_DELETE_MARKED,
  VR_FLOW_KEY_LEN,
  VR_HENTRY_FLAG_IN_FREE_LIST,
  VR_HENTRY_FLAG_VALID,
  VR_FLOW_MAX_CPUS,
} from './defs';
import { jhashFlowKey, jhashFlowKeyI32 } from './jhash';

export const FE_SIZE = 128;

// Byte offsets (see the layout above).
export const FE_HFLAGS = 0;
export const FE_HBUCKET = 4;
export const FE_HNEXT = 8;
export const FE_K0 = 12;
export const FE_K1 = 16;
export const FE_K2 = 20;
export const FE_K3 = 24;
export const FE_PROTO = 28;
export const FE_KEY_LEN = 29;
export const FE_TCP_FLAGS = 30;
export const FE_TCP_SEQ = 32;
export const FE_ACTION = 36;
export const FE_FLAGS = 38;
export const FE_RFLOW = 40;
export const FE_VRF = 44;
export const FE_DVRF = 46;
export const FE_SRC_NH = 48;
export const FE_MIRROR = 50;
export const FE_SEC_MIRROR = 51;
export const FE_BYTES = 52;
export const FE_PACKETS = 56;
export const FE_BYTES_OFLOW = 60;
export const FE_PACKETS_OFLOW = 62;
export const FE_ECMP = 63;
export const FE_DROP_REASON = 64;
export const FE_TYPE = 65;
export const FE_UDP_SPORT = 66;
export const FE_HOLD = 68;
/** End of the per-entry fields; a reset clears up to here. */
export const FE_USED_END = 72;
/** Bucket metadata in the first entry of each bucket (see above). */
export const FE_BUCKET_TAGS = 72;
export const FE_BUCKET_CHAIN = 88;
const BT = FE_BUCKET_TAGS >> 2; // u32 word of the tags within an entry
const BC = FE_BUCKET_CHAIN >> 2;

if (FE_PROTO !== 28 || FE_KEY_LEN !== 29 || FE_FLAGS !== 38 || FE_K0 !== 12 || FE_USED_END > FE_BUCKET_TAGS || FE_BUCKET_CHAIN + 4 > FE_SIZE || FE_SIZE !== 128) throw new Error('flow entry layout overflows its stride');

// Flow table info (vr_flow_table_info), one Float64Array in its own SharedArrayBuffer so that readers
// in other threads see it. Single writer: the datapath thread. Float64 holds the u64 counters exactly
// up to 2^53.
export const FTI_ACTION_COUNT = 0; // vfti_action_count: entries that left HOLD ("Processed")
export const FTI_ADDED = 1; // vfti_added: entries the agent created ("Added")
export const FTI_OFLOWS = 2; // vfti_oflows: wraps of a per-CPU hold counter
export const FTI_OFLOW_USED = 3; // fr_oflow_entries: overflow entries in use
export const FTI_ACTIVE = 4; // entries holding a flow (hentry VALID)
export const FTI_ACTIVE_PEAK = 5;
export const FTI_OFLOW_PEAK = 6;
export const FTI_FREE_HEAD = 7; // head of the overflow free list, -1 = empty
export const FTI_CPUS = 8; // datapath CPUs reporting hold counts
export const FTI_HOLD_COUNT = 16; // vfti_hold_count[cpu], u32 semantics, VR_FLOW_MAX_CPUS of them
export const FTI_LEN = FTI_HOLD_COUNT + VR_FLOW_MAX_CPUS;

/** A flow table: views over the shared entry array and the shared info block. */
export interface FlowTable {
  /** Main entries N (vr_flow_entries after rounding up to a multiple of 4). */
  readonly entries: number;
  /** Overflow entries O (vr_oflow_entries). */
  readonly oentries: number;
  /** N + O. */
  readonly total: number;
  /** N − 1 when N is a power of two (hash mod N is then hash & (N − 1)), else −1. */
  readonly pow2Mask: number;
  readonly sab: SharedArrayBuffer;
  readonly infoSab: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly i8: Int8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly info: Float64Array;
}

/** Size in bytes of the table for `entries` main and `oentries` overflow entries. */
export function flowTableBytes(entries: number, oentries: number): number {
  return (entries + oentries) * FE_SIZE;
}

/**
 * Allocate and initialise a table: every entry zero with rflow −1, hentries invalid, overflow entries
 * linked on the free list in ascending index order (vr_htable_create).
 * @throws RangeError when the host cannot allocate the SharedArrayBuffer (callers turn it into a user error).
 */
export function flowTableCreate(entries: number, oentries: number, cpus = 1): FlowTable {
  const sab = new SharedArrayBuffer(flowTableBytes(entries, oentries));
  const infoSab = new SharedArrayBuffer(FTI_LEN * 8);
  const t = flowTableAttach(sab, infoSab, entries, oentries);
  const total = entries + oentries;
  // Word indices (i * 32) stay below 2^31 for the largest table resolveParams allows (2^25 entries).
  for (let i = 0; i < total; i++) {
    const w = i * 32;
    t.i32[w + (FE_HBUCKET >> 2)] = -1;
    t.i32[w + (FE_HNEXT >> 2)] = -1;
    t.i32[w + (FE_RFLOW >> 2)] = -1;
    t.i32[w + (FE_HOLD >> 2)] = -1;
    if (i < entries && (i & 3) === 0) t.i32[w + BC] = -1;
  }
  // Free list: LIFO, linked in ascending order at start, so the first overflow entry handed out is N.
  for (let i = entries; i < total; i++) {
    const w = i * 32;
    t.i32[w + (FE_HFLAGS >> 2)] = VR_HENTRY_FLAG_IN_FREE_LIST;
    t.i32[w + (FE_HNEXT >> 2)] = i + 1 < total ? i + 1 : -1;
  }
  t.info[FTI_FREE_HEAD] = oentries > 0 ? entries : -1;
  t.info[FTI_CPUS] = cpus;
  return t;
}

/** Views over an existing table (another thread's, or a snapshot copy). */
export function flowTableAttach(
  sab: SharedArrayBuffer | ArrayBuffer,
  infoSab: SharedArrayBuffer | ArrayBuffer,
  entries: number,
  oentries: number,
): FlowTable {
  return {
    entries,
    oentries,
    total: entries + oentries,
    pow2Mask: (entries & (entries - 1)) === 0 ? entries - 1 : -1,
    sab: sab as SharedArrayBuffer,
    infoSab: infoSab as SharedArrayBuffer,
    u8: new Uint8Array(sab),
    i8: new Int8Array(sab),
    u16: new Uint16Array(sab),
    u32: new Uint32Array(sab),
    i32: new Int32Array(sab),
    info: new Float64Array(infoSab),
  };
}

/** The key's hash, jhash over the 17-byte key with initval 0 (§2.3), as a signed 32-bit value. */
export function flowHash(k0: number, k1: number, k2: number, k3: number, proto: number): number {
  return jhashFlowKeyI32(k0, k1, k2, k3, proto);
}

/**
 * First slot of the bucket of a hash: (hash mod N, unsigned) with the low two bits cleared. The default
 * sizes are powers of two, where the mod is a mask: the unsigned mod of a hash above 2^31 otherwise
 * costs a division V8 does not always keep in integers.
 */
export function flowBucketOf(t: FlowTable, h: number): number {
  const m = t.pow2Mask;
  return (m >= 0 ? h & m : (h >>> 0) % t.entries) & ~(VR_FLOW_ENTRIES_PER_BUCKET - 1);
}

/** First slot of the bucket a key hashes to. */
export function flowBucket(t: FlowTable, k0: number, k1: number, k2: number, k3: number, proto: number): number {
  return flowBucketOf(t, jhashFlowKey(k0, k1, k2, k3, proto));
}

/**
 * Whether entry `idx` holds the key and is live (ACTIVE, not DELETE_MARKED). Key words are compared as
 * int32 (`| 0`) through the i32 view: int32 values stay unboxed in optimized code, u32 values above 2^31
 * would not. Word 7 is proto | key_len << 8 | tcp_flags << 16; word 9 is action | flags << 16.
 */
function keyMatches(i32: Int32Array, idx: number, k0: number, k1: number, k2: number, k3: number, proto: number): boolean {
  const w = idx << 5; // < 2^31: tables are at most 2^25 entries
  return (
    i32[w + 4] === k1 && // sip first: the most discriminating word
    i32[w + 5] === k2 &&
    i32[w + 3] === k0 &&
    i32[w + 6] === k3 &&
    (i32[w + 7] & 0xffff) === (proto | (VR_FLOW_KEY_LEN << 8)) &&
    ((i32[w + 9] >>> 16) & (VR_FLOW_FLAG_ACTIVE | VR_FLOW_FLAG_DELETE_MARKED)) === VR_FLOW_FLAG_ACTIVE
  );
}

/**
 * Look a key up: the 4 bucket slots, then the chain hanging off the bucket's last slot (vr_htable
 * find). A slot matches when its hentry is VALID, the entry ACTIVE and not DELETE_MARKED and the key equal.
 * @returns the entry index, or −1.
 */
export function flowFind(t: FlowTable, k0: number, k1: number, k2: number, k3: number, proto: number): number {
  return flowFindHashed(t, jhashFlowKeyI32(k0, k1, k2, k3, proto), k0, k1, k2, k3, proto);
}

/** flowFind with the key's hash (flowHash) already computed. Key words may be given as u32 or int32. */
export function flowFindHashed(t: FlowTable, h: number, k0: number, k1: number, k2: number, k3: number, proto: number): number {
  const start = flowBucketOf(t, h);
  const tag = h | 1;
  const i32 = t.i32;
  const m = start << 5;
  const a = k0 | 0;
  const b = k1 | 0;
  const c = k2 | 0;
  const d = k3 | 0;
  // Only slots whose tag matches are read (a valid slot always carries its key's tag).
  if (i32[m + BT] === tag && keyMatches(i32, start, a, b, c, d, proto)) return start;
  if (i32[m + BT + 1] === tag && keyMatches(i32, start + 1, a, b, c, d, proto)) return start + 1;
  if (i32[m + BT + 2] === tag && keyMatches(i32, start + 2, a, b, c, d, proto)) return start + 2;
  if (i32[m + BT + 3] === tag && keyMatches(i32, start + 3, a, b, c, d, proto)) return start + 3;
  let o = i32[m + BC];
  while (o >= 0) {
    if ((i32[o << 5] & VR_HENTRY_FLAG_VALID) !== 0 && keyMatches(i32, o, a, b, c, d, proto)) return o;
    o = i32[(o << 5) + (FE_HNEXT >> 2)];
  }
  return -1;
}

/**
 * Claim a slot for a key of hash `h` (vr_htable find-free + the overflow free list): the first bucket
 * slot whose hentry is not VALID; else the head of the overflow free list, linked at the head of the
 * chain of the bucket's last slot (newest first). Only the hentry (and the bucket's tags) are touched;
 * the flow layer initialises the entry.
 * @returns the index, or −1 when the bucket and the overflow are full.
 */
export function htAlloc(t: FlowTable, h: number): number {
  const start = flowBucketOf(t, h);
  const i32 = t.i32;
  const info = t.info;
  const m = start << 5;
  for (let i = start; i < start + VR_FLOW_ENTRIES_PER_BUCKET; i++) {
    if ((i32[i << 5] & VR_HENTRY_FLAG_VALID) === 0) {
      i32[i << 5] = VR_HENTRY_FLAG_VALID;
      i32[m + BT + (i - start)] = h | 1;
      countActive(info, 1);
      return i;
    }
  }
  const o = info[FTI_FREE_HEAD];
  if (o < 0) return -1;
  const ow = o << 5;
  const last = (start + VR_FLOW_ENTRIES_PER_BUCKET - 1) << 5;
  info[FTI_FREE_HEAD] = i32[ow + (FE_HNEXT >> 2)];
  i32[ow + (FE_HBUCKET >> 2)] = start + VR_FLOW_ENTRIES_PER_BUCKET - 1;
  i32[ow + (FE_HNEXT >> 2)] = i32[last + (FE_HNEXT >> 2)];
  i32[last + (FE_HNEXT >> 2)] = o;
  i32[m + BC] = o;
  i32[ow] = VR_HENTRY_FLAG_VALID;
  countActive(info, 1);
  const used = ++info[FTI_OFLOW_USED];
  if (used > info[FTI_OFLOW_PEAK]) info[FTI_OFLOW_PEAK] = used;
  return o;
}

function countActive(info: Float64Array, d: number): void {
  const n = (info[FTI_ACTIVE] += d);
  if (n > info[FTI_ACTIVE_PEAK]) info[FTI_ACTIVE_PEAK] = n;
}

/**
 * Release a slot's hentry (vr_htable_release): a main slot is marked not VALID; an overflow entry is
 * unlinked from its bucket's chain and pushed back on the free list. The kernel defers the unlink to a
 * per-bucket work item and an RCU grace period; the emulator's datapath is the table's only writer, so
 * it does both at once. The flow entry body is left to the caller.
 */
export function htRelease(t: FlowTable, idx: number): void {
  const i32 = t.i32;
  const w = idx << 5;
  if ((i32[w] & VR_HENTRY_FLAG_VALID) === 0) return;
  countActive(t.info, -1);
  if (idx < t.entries) {
    i32[w] = 0;
    i32[((idx & ~3) << 5) + BT + (idx & 3)] = 0;
    return;
  }
  const head = i32[w + (FE_HBUCKET >> 2)];
  let prev = head;
  let cur = i32[(head << 5) + (FE_HNEXT >> 2)];
  while (cur >= 0 && cur !== idx) {
    prev = cur;
    cur = i32[(cur << 5) + (FE_HNEXT >> 2)];
  }
  if (cur === idx) {
    i32[(prev << 5) + (FE_HNEXT >> 2)] = i32[w + (FE_HNEXT >> 2)];
    if (prev === head) i32[((head & ~3) << 5) + BC] = i32[w + (FE_HNEXT >> 2)];
  }
  i32[w + (FE_HBUCKET >> 2)] = -1;
  i32[w + (FE_HNEXT >> 2)] = t.info[FTI_FREE_HEAD];
  i32[w] = VR_HENTRY_FLAG_IN_FREE_LIST;
  t.info[FTI_FREE_HEAD] = idx;
  t.info[FTI_OFLOW_USED]--;
}

/** Whether the entry's hentry is VALID (the slot holds a key). */
export function htValid(t: FlowTable, idx: number): boolean {
  return (t.i32[idx << 5] & VR_HENTRY_FLAG_VALID) !== 0;
}

/** Next index on the chain hanging off `idx` (−1 = none). */
export function htNext(t: FlowTable, idx: number): number {
  return t.i32[(idx << 5) + (FE_HNEXT >> 2)];
}

// Field accessors for readers outside the hot path (agent, CLI, tests). Hot paths index the views.
export const feFlags = (t: FlowTable, i: number): number => Atomics.load(t.u16, i * 64 + (FE_FLAGS >> 1));
export const feAction = (t: FlowTable, i: number): number => t.u16[i * 64 + (FE_ACTION >> 1)];
export const feRflow = (t: FlowTable, i: number): number => t.i32[i * 32 + (FE_RFLOW >> 2)];
export const feTcpFlags = (t: FlowTable, i: number): number => t.u16[i * 64 + (FE_TCP_FLAGS >> 1)];
export const feVrf = (t: FlowTable, i: number): number => t.u16[i * 64 + (FE_VRF >> 1)];
export const feDvrf = (t: FlowTable, i: number): number => t.u16[i * 64 + (FE_DVRF >> 1)];
export const feSrcNh = (t: FlowTable, i: number): number => t.u16[i * 64 + (FE_SRC_NH >> 1)];
export const feDropReason = (t: FlowTable, i: number): number => t.u8[i * FE_SIZE + FE_DROP_REASON];
export const feEcmp = (t: FlowTable, i: number): number => t.i8[i * FE_SIZE + FE_ECMP];
export const feMirror = (t: FlowTable, i: number): number => t.u8[i * FE_SIZE + FE_MIRROR];
export const feSecMirror = (t: FlowTable, i: number): number => t.u8[i * FE_SIZE + FE_SEC_MIRROR];
export const feUdpSport = (t: FlowTable, i: number): number => t.u16[i * 64 + (FE_UDP_SPORT >> 1)];
export const feProto = (t: FlowTable, i: number): number => t.u8[i * FE_SIZE + FE_PROTO];
export const feKeyLen = (t: FlowTable, i: number): number => t.u8[i * FE_SIZE + FE_KEY_LEN];
export const feKeyWord = (t: FlowTable, i: number, word: 0 | 1 | 2 | 3): number => t.u32[(i << 5) + 3 + word];
/** 48-bit byte counter: u32 + (u16 oflow << 32). */
export const feBytes = (t: FlowTable, i: number): number =>
  t.u32[i * 32 + (FE_BYTES >> 2)] + t.u16[i * 64 + (FE_BYTES_OFLOW >> 1)] * 0x100000000;
/** 40-bit packet counter: u32 + (u8 oflow << 32). */
export const fePackets = (t: FlowTable, i: number): number =>
  t.u32[i * 32 + (FE_PACKETS >> 2)] + t.u8[i * FE_SIZE + FE_PACKETS_OFLOW] * 0x100000000;

/** Entries the datapath put in HOLD ("Created"): Σ per-CPU hold counts, with their wraps (§3.5). */
export function flowCreatedCount(t: FlowTable): number {
  let created = t.info[FTI_OFLOWS] * 0x100000000;
  const cpus = t.info[FTI_CPUS];
  for (let c = 0; c < cpus; c++) created += t.info[FTI_HOLD_COUNT + c];
  return created;
}

/** Entries currently in HOLD: Created − Processed, never negative (§3.5). */
export function flowHoldEntries(t: FlowTable): number {
  const n = flowCreatedCount(t) - t.info[FTI_ACTION_COUNT];
  return n > 0 ? n : 0;
}
