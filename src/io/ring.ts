/**
 * A single-producer single-consumer ring of fixed-size int32 records in a SharedArrayBuffer: how the
 * agent (main thread) hands requests to the datapath thread, which blocks in poll() and so never runs
 * its own event loop. Head and tail are updated with Atomics (release/acquire); records are plain.
 * @module
 */

export const RING_RECORD = 32; // int32 words per record
const HDR = 16; // words of header (head, tail, padding to keep records off the header's cache line)

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
    const head = Atomics.load(this.i32, 0);
    const tail = Atomics.load(this.i32, 1);
    if (((tail - head) | 0) >= this.capacity) return -1;
    return HDR + (tail & this.mask) * RING_RECORD;
  }

  push(): void {
    Atomics.add(this.i32, 1, 1);
  }

  /** Consumer: the offset of the oldest record, or −1 when empty. Release it with pop(). */
  peek(): number {
    const head = Atomics.load(this.i32, 0);
    const tail = Atomics.load(this.i32, 1);
    if (head === tail) return -1;
    return HDR + (head & this.mask) * RING_RECORD;
  }

  pop(): void {
    Atomics.add(this.i32, 0, 1);
  }
}

// Request records (agent → datapath). Word 0 is the op, word 1 a sequence number echoed in replies.
export const OP_FLOW_SET = 1; // 2 index, 3 rindex, 4 action, 5 flags, 6-9 key words, 10 proto, 11 vrf, 12 dvrf,
//                               13 mir, 14 sec mir, 15 ecmp, 16 src nh, 17 drop reason
export const OP_VIF_ADD = 2; // 2 idx, 3 fd, 4 type, 5 vrf, 6 nh, 7 flags, 8 mtu, 9-14 mac, 15 io (VIF_IO_*)
export const OP_VIF_DEL = 3; // 1 seq (acknowledged: the fd is no longer used), 2 idx
export const OP_NH_ADD = 4; // 2 id, 3 type, 4 vif, 5-10 dmac
export const OP_RT_ADD = 5; // 2 vrf, 3 ip key word, 4 nh, 5 flags
export const OP_RT_DEL = 6; // 2 vrf, 3 ip key word
export const OP_BRIDGE_ADD = 7; // 2 vrf, 3-8 mac, 9 vif
export const OP_STOP = 8;
export const OP_VIF_ATTACH = 10; // 2 idx, 3 fd, 4 io: the vif's OS interface is back (counters kept)
export const OP_VIF_DETACH = 11; // 1 seq (acknowledged), 2 idx: the OS interface is gone; the vif goes down
export const OP_VIF_FAT = 9; // 2 idx, 3 count, 4.. rules ((proto << 16) | port), at most 28

/** How the datapath thread reads and writes a vif's fd. */
export const VIF_IO_TAP = 0; // a TAP the emulator owns: read()/write() of plain frames
export const VIF_IO_PACKET = 1; // a packet socket on an interface it attached to: recvmmsg/sendmmsg with a virtio-net header
