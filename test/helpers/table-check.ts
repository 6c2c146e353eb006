/**
 * Invariants of a flow table that tests check after every step: the htable (every valid entry in its
 * bucket or on its bucket's chain, no key twice, the bucket tags and chain copies in step, the active
 * count) and the hold accounting.
 */
import {
  FE_BUCKET_CHAIN, FE_BUCKET_TAGS, FE_HBUCKET, FTI_ACTIVE, FTI_FREE_HEAD, FlowTable, feAction, feKeyLen, feKeyWord, feProto,
  flowBucket, flowHash, flowHoldEntries, htNext, htValid,
} from '../../src/dp/flow-table';
import { VR_FLOW_ACTION_HOLD } from '../../src/dp/defs';

/** @returns the first broken invariant, or null. */
export function invariants(t: FlowTable): string | null {
  const seen = new Map<string, number>();
  let valid = 0;
  for (let i = 0; i < t.total; i++) {
    if (!htValid(t, i)) continue;
    valid++;
    if (feKeyLen(t, i) !== 17) return `valid entry ${i} has no key`;
    const k = [0, 1, 2, 3].map((w) => feKeyWord(t, i, w as 0 | 1 | 2 | 3)).concat(feProto(t, i));
    const id = k.join(',');
    if (seen.has(id)) return `key ${id} is in entries ${seen.get(id)} and ${i}`;
    seen.set(id, i);
    const start = flowBucket(t, k[0], k[1], k[2], k[3], k[4]);
    if (i < t.entries) {
      if (i < start || i > start + 3) return `entry ${i} is outside its bucket ${start}`;
    } else {
      let o = htNext(t, start + 3);
      let found = false;
      while (o >= 0) {
        if (o === i) found = true;
        o = htNext(t, o);
      }
      if (!found) return `overflow entry ${i} is not on bucket ${start}'s chain`;
      if (t.i32[(i * 128 + FE_HBUCKET) >> 2] !== start + 3) return `overflow entry ${i} names the wrong bucket`;
    }
  }
  // The bucket tags mirror the hentries: a valid slot carries jhash|1 of its key, a free one 0, and the
  // chain-head copy equals the last slot's next index.
  for (let b = 0; b < t.entries; b += 4) {
    for (let k = 0; k < 4; k++) {
      const tag = t.i32[(b << 5) + (FE_BUCKET_TAGS >> 2) + k];
      const i = b + k;
      if (!htValid(t, i)) {
        if (tag !== 0) return `free slot ${i} has tag ${tag}`;
        continue;
      }
      const h = flowHash(feKeyWord(t, i, 0), feKeyWord(t, i, 1), feKeyWord(t, i, 2), feKeyWord(t, i, 3), feProto(t, i));
      if (tag !== (h | 1)) return `slot ${i} has a stale tag`;
    }
    if (t.i32[(b << 5) + (FE_BUCKET_CHAIN >> 2)] !== htNext(t, b + 3)) return `bucket ${b}'s chain copy is stale`;
  }
  if (valid > t.total) return 'more valid entries than the table holds';
  if (valid !== t.info[FTI_ACTIVE]) return `active count ${t.info[FTI_ACTIVE]} but ${valid} valid entries`;
  return null;
}

/** The overflow free list, from its head. */
export function freeList(t: FlowTable): number[] {
  const out: number[] = [];
  let o = t.info[FTI_FREE_HEAD];
  while (o >= 0 && out.length <= t.oentries) {
    out.push(o);
    o = htNext(t, o);
  }
  return out;
}

/** Entries in HOLD by Created − Processed equal the valid entries whose action is HOLD. */
export function holdAccounting(t: FlowTable): string | null {
  let held = 0;
  for (let i = 0; i < t.total; i++) if (htValid(t, i) && feAction(t, i) === VR_FLOW_ACTION_HOLD) held++;
  const counted = flowHoldEntries(t);
  return held === counted ? null : `${held} entries in HOLD, Created − Processed says ${counted}`;
}
