/**
 * A consistent copy of a live flow table for `flow -l`, taken without pausing the datapath: the whole
 * table is copied, then every entry whose first 72 bytes (hentry, key, flags, stats) changed during the
 * copy is copied again until two reads agree (the check-copy-check the agent uses for one entry).
 * @module
 */
import { FE_SIZE, FE_USED_END, FlowTable, flowTableAttach } from '../dp/flow-table';

export function snapshotFlowTable(live: FlowTable): FlowTable {
  const copy = new Uint8Array(live.u8.length);
  copy.set(live.u8);
  const info = new Float64Array(live.info.length);
  info.set(live.info);
  const a = new Int32Array(copy.buffer);
  const l = live.i32;
  const W = FE_SIZE >> 2;
  const U = FE_USED_END >> 2;
  for (let i = 0; i < live.total; i++) {
    const b = i * W;
    for (let tries = 0; tries < 4; tries++) {
      let same = true;
      for (let k = 0; k < U; k++) {
        if (a[b + k] !== l[b + k]) {
          same = false;
          break;
        }
      }
      if (same) break;
      for (let k = 0; k < U; k++) a[b + k] = l[b + k];
    }
  }
  return flowTableAttach(copy.buffer, info.buffer, live.entries, live.oentries);
}
