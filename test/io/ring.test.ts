import test from 'ava';
import { Ring } from '../../src/io/ring';

test('the ring keeps working when its counters wrap past 2^31 and 2^32', (t) => {
  const r = Ring.create(8);
  // Start just before the int32 wrap.
  r.i32[0] = 0x7ffffffc;
  r.i32[1] = 0x7ffffffc;
  let seq = 0;
  let got = 0;
  for (let round = 0; round < 20; round++) {
    for (let k = 0; k < 8; k++) {
      const o = r.reserve();
      t.true(o >= 16, `offset ${o}`);
      r.i32[o] = ++seq;
      r.push();
    }
    t.is(r.reserve(), -1, 'full at capacity');
    for (let k = 0; k < 8; k++) {
      const o = r.peek();
      t.is(r.i32[o], ++got);
      r.pop();
    }
    t.is(r.peek(), -1, 'empty');
  }
  t.throws(() => Ring.create(6), { instanceOf: RangeError });
});
