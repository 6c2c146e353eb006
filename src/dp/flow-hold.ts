/**
 * Hold queues: the packets of a flow in HOLD wait here until the agent decides (vr_flow_queue in
 * dp-core/vr_flow.c). Each queue has VR_MAX_FLOW_QUEUE_ENTRIES (3) slots; a slot is claimed by bumping the
 * queue's claim counter (the kernel's fetch-and-add), a 4th packet is refused, and only the packet that
 * claims slot 0 traps to the agent.
 *
 * Storage is preallocated: queue ids from a free stack, each slot a fixed window of a byte slab. The
 * pool starts small and doubles when more flows sit in HOLD than it has queues, which with
 * flow_hold_limit on (the R2.22 default) stops at 4097 queues (≈ 25 MB of slab). A frame longer than a slot is kept in its own copy (rare: only
 * jumbo frames). Owned by the datapath thread.
 * @module
 */
import { VR_MAX_FLOW_QUEUE_ENTRIES } from './defs';

const Q = VR_MAX_FLOW_QUEUE_ENTRIES;

export class HoldPool {
  /** Bytes per held frame kept in the slab. */
  readonly slotBytes: number;
  capacity = 0;
  /** Claims made on each queue (may exceed Q: the excess was dropped). */
  claims = new Uint8Array(0);
  /** Per slot: frame length and ingress vif. */
  lens = new Int32Array(0);
  vifs = new Int32Array(0);
  /**
   * Per slot, what a packet from the fabric needs to be forwarded again (the module's vr_packet_node:
   * VRF, label): its VRF, the nexthop its label chose (−1 none) and its TUN_* with bit 8 = bridged.
   */
  vrfs = new Int32Array(0);
  outNhs = new Int32Array(0);
  tuns = new Int32Array(0);
  slab = new Uint8Array(0);
  /** Frames longer than slotBytes, by slot. */
  big: (Uint8Array | undefined)[] = [];
  private free = new Int32Array(0);
  private nfree = 0;

  constructor(initialQueues: number, slotBytes: number) {
    this.slotBytes = slotBytes;
    this.grow(Math.max(initialQueues, 16));
  }

  private grow(cap: number): void {
    const old = this.capacity;
    const claims = new Uint8Array(cap);
    claims.set(this.claims);
    const lens = new Int32Array(cap * Q);
    lens.set(this.lens);
    const vifs = new Int32Array(cap * Q);
    vifs.set(this.vifs);
    const vrfs = new Int32Array(cap * Q);
    vrfs.set(this.vrfs);
    const outNhs = new Int32Array(cap * Q);
    outNhs.set(this.outNhs);
    const tuns = new Int32Array(cap * Q);
    tuns.set(this.tuns);
    const slab = new Uint8Array(cap * Q * this.slotBytes);
    slab.set(this.slab);
    const free = new Int32Array(cap);
    free.set(this.free.subarray(0, this.nfree));
    for (let q = cap - 1; q >= old; q--) free[this.nfree++] = q;
    this.claims = claims;
    this.lens = lens;
    this.vifs = vifs;
    this.vrfs = vrfs;
    this.outNhs = outNhs;
    this.tuns = tuns;
    this.slab = slab;
    this.free = free;
    this.capacity = cap;
  }

  /** A fresh queue id (vr_flow_get_hold_list / the pool's free stack). */
  alloc(): number {
    if (this.nfree === 0) this.grow(this.capacity * 2);
    const q = this.free[--this.nfree];
    this.claims[q] = 0;
    return q;
  }

  /** Return a queue to the pool (its frames are gone). */
  release(q: number): void {
    for (let s = q * Q; s < q * Q + Q; s++) this.big[s] = undefined;
    this.free[this.nfree++] = q;
  }

  /**
   * Claim the next slot of queue `q` and copy the frame into it.
   * @returns the slot number claimed (0 = the trapping packet), or −1 when all 3 are taken.
   */
  enqueue(q: number, vif: number, buf: Uint8Array, off: number, len: number): number {
    const n = this.claims[q];
    if (n >= Q) return -1;
    this.claims[q] = n + 1;
    const s = q * Q + n;
    this.lens[s] = len;
    this.vifs[s] = vif;
    if (len <= this.slotBytes) this.slab.set(buf.subarray(off, off + len), s * this.slotBytes);
    else this.big[s] = buf.slice(off, off + len);
    return n;
  }

  /** Record the forwarding metadata of slot `n` of queue `q` (see vrfs). */
  setMeta(q: number, n: number, vrf: number, outNh: number, tun: number): void {
    const s = q * Q + n;
    this.vrfs[s] = vrf;
    this.outNhs[s] = outNh;
    this.tuns[s] = tun;
  }

  /** Frames held in queue `q`. */
  count(q: number): number {
    const n = this.claims[q];
    return n < Q ? n : Q;
  }

  /** The buffer holding slot `n` of queue `q`, and where in it the frame starts. */
  frameBuf(q: number, n: number): Uint8Array {
    const s = q * Q + n;
    return this.big[s] ?? this.slab;
  }

  frameOff(q: number, n: number): number {
    const s = q * Q + n;
    return this.big[s] ? 0 : s * this.slotBytes;
  }
}
