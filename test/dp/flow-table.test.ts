/**
 * Flow-table geometry and htable invariants under random FLOW_SET add/delete sequences (fast-check).
 */
import test from 'ava';
import fc from 'fast-check';
import { flowReqNew, flowSet, routerDrainWork, EEXIST, ENOSPC, FlowResp } from '../../src/dp/flow';
import { FTI_ACTIVE, FTI_OFLOW_USED, flowBucket, flowBucketOf, flowFind, flowTableAttach, htNext, htValid } from '../../src/dp/flow-table';
import { VR_FLOW_ACTION_FORWARD, VR_FLOW_FLAG_ACTIVE, VR_HENTRY_FLAG_IN_FREE_LIST } from '../../src/dp/defs';
import { keyPorts } from '../../src/dp/proto-ip';
import { testRouter } from '../helpers/test-host';
import { freeList, invariants } from '../helpers/table-check';

type Key = [number, number, number, number, number];

function keyOf(n: number): Key {
  // A small key space: many collisions in a 16-entry table, sometimes the same key twice.
  return [keyPorts(1000 + n, 53), 0x0301010a, 0x0401010a, 16, 17];
}

test('the bucket of a hash is (hash mod N, unsigned) with the low two bits cleared, for N a power of two or not', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.constantFrom(4, 16, 20, 1024, 524288, 524292, 1048576, 3 * 2 ** 20), (h, n) => {
      const ft = flowTableAttach(new ArrayBuffer(0), new ArrayBuffer(0), n, 0);
      return flowBucketOf(ft, h) === (((h >>> 0) % n) & ~3);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('a fresh table links the overflow free list in ascending order', (t) => {
  const { r } = testRouter({ vr_flow_entries: 16, vr_oflow_entries: 4 });
  t.deepEqual(freeList(r.ft), [16, 17, 18, 19]);
  for (const i of [16, 17, 18, 19]) t.truthy(r.ft.i32[(i * 128) >> 2] & VR_HENTRY_FLAG_IN_FREE_LIST);
});

for (const [n, o] of [[16, 4], [16, 0], [64, 8], [20, 4]] as const) {
  test(`random add/delete sequences keep the htable invariants (${n} + ${o})`, (t) => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ del: fc.boolean(), k: fc.nat(40) }), { minLength: 1, maxLength: 300 }),
        (ops) => {
          const { r } = testRouter({ vr_flow_entries: n, vr_oflow_entries: o });
          const ft = r.ft;
          const q = flowReqNew();
          const resp: FlowResp = { err: 0, index: -1, bytes: 0, packets: 0 };
          const model = new Set<number>();
          for (const op of ops) {
            const [k0, k1, k2, k3, proto] = keyOf(op.k);
            Object.assign(q, { k0, k1, k2, k3, proto, action: VR_FLOW_ACTION_FORWARD });
            const at = flowFind(ft, k0, k1, k2, k3, proto);
            if (op.del) {
              if (at < 0) continue;
              Object.assign(q, { index: at, flags: 0 });
              flowSet(r, q, resp);
              if (resp.err !== 0) throw new Error(`delete failed ${resp.err}`);
              model.delete(op.k);
            } else {
              const start = flowBucket(ft, k0, k1, k2, k3, proto);
              let bucketFull = true;
              for (let s = start; s < start + 4; s++) if (!htValid(ft, s)) bucketFull = false;
              const noOverflow = ft.info[FTI_OFLOW_USED] === ft.oentries;
              Object.assign(q, { index: -1, flags: VR_FLOW_FLAG_ACTIVE });
              flowSet(r, q, resp);
              if (model.has(op.k)) {
                if (resp.err !== -EEXIST) throw new Error(`add of an existing key gave ${resp.err}`);
              } else if (bucketFull && noOverflow) {
                if (resp.err !== -ENOSPC) throw new Error(`add into a full bucket gave ${resp.err}`);
              } else {
                if (resp.err !== 0) throw new Error(`add failed ${resp.err}`);
                model.add(op.k);
              }
            }
            routerDrainWork(r);
            const bad = invariants(ft);
            if (bad) throw new Error(bad);
            if (ft.info[FTI_ACTIVE] !== model.size) throw new Error('active count differs from the model');
          }
          // Deleting everything returns every overflow entry to the free list.
          for (const k of model) {
            const [k0, k1, k2, k3, proto] = keyOf(k);
            Object.assign(q, { k0, k1, k2, k3, proto, index: flowFind(ft, k0, k1, k2, k3, proto), flags: 0 });
            flowSet(r, q, resp);
          }
          routerDrainWork(r);
          const fl = freeList(ft).sort((a, b) => a - b);
          const want = Array.from({ length: o }, (_, i) => n + i);
          if (JSON.stringify(fl) !== JSON.stringify(want)) throw new Error(`free list ${fl} after deleting all`);
          if (ft.info[FTI_OFLOW_USED] !== 0 || ft.info[FTI_ACTIVE] !== 0) throw new Error('counters not back to 0');
          return true;
        },
      ),
      { numRuns: 200 },
    );
    t.pass();
  });
}

test('overflow entries chain off the last slot of the bucket, newest first', (t) => {
  const { r } = testRouter({ vr_flow_entries: 16, vr_oflow_entries: 4 });
  const ft = r.ft;
  const q = flowReqNew();
  const resp: FlowResp = { err: 0, index: -1, bytes: 0, packets: 0 };
  // Find 6 keys of one bucket.
  const keys: Key[] = [];
  let target = -1;
  for (let n = 0; keys.length < 6 && n < 10000; n++) {
    const k = keyOf(n);
    const b = flowBucket(ft, ...k);
    if (target < 0) target = b;
    if (b === target) keys.push(k);
  }
  const idx: number[] = [];
  for (const [k0, k1, k2, k3, proto] of keys) {
    Object.assign(q, { k0, k1, k2, k3, proto, index: -1, flags: VR_FLOW_FLAG_ACTIVE, action: VR_FLOW_ACTION_FORWARD });
    flowSet(r, q, resp);
    t.is(resp.err, 0);
    idx.push(resp.index);
  }
  t.deepEqual(idx.slice(0, 4), [target, target + 1, target + 2, target + 3]);
  t.deepEqual(idx.slice(4), [16, 17]);
  t.is(htNext(ft, target + 3), 17); // newest first
  t.is(htNext(ft, 17), 16);
  t.is(htNext(ft, 16), -1);
  for (const [n, k] of keys.entries()) t.is(flowFind(ft, ...k), idx[n]);
});
