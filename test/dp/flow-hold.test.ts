/**
 * Hold queues at their own API (HoldPool, vr_flow_queue): three slots a queue, the fourth refused, slot 0
 * the trapping one, frames kept byte for byte (a jumbo frame in its own copy), queues reused after
 * release, the pool doubling when more flows are held than it has queues; and on the packet path, the
 * held frames released in arrival order when the agent answers, the excess counted under
 * "Flow Queue Limit Exceeded".
 */
import test from 'ava';
import { VP_DROP_FLOW_QUEUE_LIMIT_EXCEEDED, VR_MAX_FLOW_QUEUE_ENTRIES } from '../../src/dp/defs';
import { HoldPool } from '../../src/dp/flow-hold';
import { udpFrame } from '../../src/io/frame-build';
import { rx, testHost } from '../helpers/test-host';
import { VM1_TO_VM2, routedPair } from '../helpers/routed';

const frame = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
const held = (p: HoldPool, q: number, n: number, len: number): number[] => Array.from(p.frameBuf(q, n).subarray(p.frameOff(q, n), p.frameOff(q, n) + len));

test('three slots a queue: slots 0, 1, 2 in order, then −1; the frames and their vifs are kept', (t) => {
  t.is(VR_MAX_FLOW_QUEUE_ENTRIES, 3);
  const p = new HoldPool(4, 128);
  const q = p.alloc();
  t.deepEqual([1, 2, 3, 4].map((k) => p.enqueue(q, 10 + k, frame(60 + k, k), 0, 60 + k)), [0, 1, 2, -1]);
  t.is(p.count(q), 3, 'the refused frame is not counted');
  for (let n = 0; n < 3; n++) {
    t.is(p.lens[q * 3 + n], 61 + n);
    t.is(p.vifs[q * 3 + n], 11 + n);
    t.deepEqual(held(p, q, n, 61 + n), Array(61 + n).fill(n + 1));
  }
});

test('a frame longer than a slot is kept in its own copy; an offset into the source buffer is honoured', (t) => {
  const p = new HoldPool(1, 64);
  const q = p.alloc();
  const src = new Uint8Array(9100);
  src.fill(7, 100, 9100);
  t.is(p.enqueue(q, 3, src, 100, 9000), 0);
  t.not(p.frameBuf(q, 0), p.slab, 'not in the slab');
  t.is(p.frameOff(q, 0), 0);
  t.deepEqual(held(p, q, 0, 9000), Array(9000).fill(7));
  src.fill(0); // a copy, not a view of the caller's buffer
  t.is(p.frameBuf(q, 0)[0], 7);
});

test('queues are reused after release and start empty; the pool doubles when all are in use', (t) => {
  const p = new HoldPool(16, 64);
  t.is(p.capacity, 16);
  const qs = Array.from({ length: 16 }, () => p.alloc());
  t.is(new Set(qs).size, 16);
  for (const q of qs) p.enqueue(q, 1, frame(60, q), 0, 60);
  const extra = p.alloc();
  t.is(p.capacity, 32, 'doubled');
  t.false(qs.includes(extra));
  for (const q of qs) t.deepEqual(held(p, q, 0, 60), Array(60).fill(q), `queue ${q} kept its frame across the growth`);
  p.release(qs[3]);
  const again = p.alloc();
  t.is(again, qs[3], 'the released queue comes back');
  t.is(p.count(again), 0, 'empty');
  t.is(p.enqueue(again, 1, frame(60, 1), 0, 60), 0, 'its first frame is the trapping one again');
});

test('on the packet path: held frames go out in arrival order when the agent answers; the 4th is dropped as Flow Queue Limit Exceeded', (t) => {
  const { r, host, run } = routedPair(testHost());
  // Four packets of one new flow, told apart by their payload lengths.
  for (const len of [10, 20, 30, 40]) rx(r, udpFrame(VM1_TO_VM2, { sport: 1000, dport: 53, payload: len }), 3);
  t.is(host.traps.length, 1, 'only slot 0 traps');
  t.is(host.sent.length, 0, 'nothing goes out while held');
  t.is(r.drops[VP_DROP_FLOW_QUEUE_LIMIT_EXCEEDED], 1);
  run();
  t.deepEqual(host.sent.map((s) => [s.vif, s.data.length - 14 - 20 - 8]), [[4, 10], [4, 20], [4, 30]], 'released to vif0/4 in arrival order, the dropped one not');
  t.is(r.drops[VP_DROP_FLOW_QUEUE_LIMIT_EXCEEDED], 1, 'counted once');
});
