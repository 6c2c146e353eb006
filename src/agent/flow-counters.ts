/**
 * The agent's reads of a flow's kernel counters (the 2.22 agent's KSyncFlowMemory::GetKFlowStats and
 * FlowStatsCollector's 64-bit extension; reference vrouter-datapath.md §1.8, vrouter-agent.md §2.3):
 * a consistent read of the 48-bit bytes / 40-bit packets while the datapath thread counts, their
 * extension to 64 bits across wraps, and the rule that tells a wrap from a counter reset.
 *
 * Every read writes one scratch object, `out` (no allocation per read): the caller takes the values
 * from it before the next read. The agent's copies (FlowState.lastBytes/lastPackets) are the caller's
 * to update. Part of the flow manager (flow-mgr.ts); reads the table, writes `out` and the entry copies.
 * @module
 */
import { FE_BYTES, FE_BYTES_OFLOW, FE_PACKETS, FE_PACKETS_OFLOW, FE_SIZE, FlowTable } from '../dp/flow-table';
import type { FlowMgrStats, FlowState } from './flow-state';

/** Kernel counter widths (§1.8): the agent extends them to 64 bits across wraps. */
export const BYTES_WRAP = 2 ** 48;
export const PACKETS_WRAP = 2 ** 40;
/**
 * Reads of a counter pair the datapath is changing (its overflow word moved, or its low word wrapped
 * and the carry into the overflow word is not stored yet) that are retried before the value is taken.
 */
export const COUNTER_READ_RETRIES = 64;

/** The result of the last read: the kernel's counters, or (after extend) the flow's 64-bit counters. */
export interface CounterRead {
  bytes: number;
  packets: number;
}

export class FlowCounters {
  /** The one scratch every read writes. */
  readonly out: CounterRead = { bytes: 0, packets: 0 };

  constructor(
    private readonly t: FlowTable,
    private readonly fs: FlowState,
    private readonly stats: FlowMgrStats,
  ) {}

  /**
   * The kernel counters of flow `i` into `out`, extended past the agent's copy (see extend). The entry
   * must hold the flow (its key, checked before and after the read), or be the flow's slot as eviction
   * left it (EVICTED, key cleared, counters kept for the next FLOW_MISS trap). While the key matches,
   * the entry's action, drop reason and TCP state are copied too.
   * @returns false when the entry is not this flow any more (`out` is then undefined).
   */
  read(i: number): boolean {
    const fs = this.fs;
    const keyed = fs.keyEqualsKernel(i);
    if (!keyed && !fs.evictedSlot(i)) return false;
    this.readKernel(i);
    if (keyed ? !fs.keyEqualsKernel(i) : !fs.evictedSlot(i)) return false;
    if (keyed) fs.copyEntry(i);
    this.extend(i, this.out.bytes, this.out.packets);
    return true;
  }

  /**
   * Entry `i`'s 48-bit bytes and 40-bit packets into `out`, consistently while the datapath thread
   * counts: each counter is a low word and an overflow word, and the datapath stores the wrapped low
   * word before it increments the overflow (flow.ts flowStatsAdd). So the overflow is read before and
   * after the low word and the read is retried while it moved; and a low word below the agent's copy
   * under the same overflow (a wrap whose carry is not stored yet) is read again too. After
   * COUNTER_READ_RETRIES the last values are taken: extend does not take a decrease that is no wrap
   * for one.
   */
  private readKernel(i: number): void {
    const t = this.t;
    const bi = (i * FE_SIZE + FE_BYTES) >> 2;
    const boi = (i * FE_SIZE + FE_BYTES_OFLOW) >> 1;
    const pi = (i * FE_SIZE + FE_PACKETS) >> 2;
    const poi = i * FE_SIZE + FE_PACKETS_OFLOW;
    const lb = this.fs.lastBytes[i] % BYTES_WRAP;
    const lp = this.fs.lastPackets[i] % PACKETS_WRAP;
    let bo = 0;
    let bl = 0;
    let po = 0;
    let pl = 0;
    for (let k = 0; k <= COUNTER_READ_RETRIES; k++) {
      bo = Atomics.load(t.u16, boi);
      bl = Atomics.load(t.u32, bi);
      const bo2 = Atomics.load(t.u16, boi);
      po = Atomics.load(t.u8, poi);
      pl = Atomics.load(t.u32, pi);
      const po2 = Atomics.load(t.u8, poi);
      if (bo !== bo2 || po !== po2) continue;
      const carryPending = (bo === Math.floor(lb / 0x100000000) && bl < lb % 0x100000000) ||
        (po === Math.floor(lp / 0x100000000) && pl < lp % 0x100000000);
      if (!carryPending) break;
    }
    this.out.bytes = bo * 0x100000000 + bl;
    this.out.packets = po * 0x100000000 + pl;
  }

  /**
   * The kernel's 48-bit bytes `b` and 40-bit packets `p` of flow `i`, extended to 64 bits past the
   * agent's copy, into `out` (§1.8). A value below the copy's low bits is a wrap only when it can be
   * one (the copy in the upper half of the range, the new value in the lower half); any other decrease
   * means the counters restarted under the flow (its slot was cleared for a new flow): no change is
   * taken (`out` gets the copy, so a delta after that is still against it), and it is counted in
   * counterResets.
   */
  extend(i: number, b: number, p: number): void {
    const lb = this.fs.lastBytes[i];
    const lp = this.fs.lastPackets[i];
    const lowB = lb % BYTES_WRAP;
    const lowP = lp % PACKETS_WRAP;
    const wrapB = b < lowB;
    const wrapP = p < lowP;
    if ((wrapB && !(lowB >= BYTES_WRAP / 2 && b < BYTES_WRAP / 2)) || (wrapP && !(lowP >= PACKETS_WRAP / 2 && p < PACKETS_WRAP / 2))) {
      this.stats.counterResets++;
      this.out.bytes = lb;
      this.out.packets = lp;
      return;
    }
    this.out.bytes = lb - lowB + b + (wrapB ? BYTES_WRAP : 0);
    this.out.packets = lp - lowP + p + (wrapP ? PACKETS_WRAP : 0);
  }
}
