import test from 'ava';
import { jhash, jhashFlowKey, jhashWords } from '../../src/dp/jhash';
import fc from 'fast-check';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

// Published lookup3 vectors (hashlittle, from lookup3.c's driver5) — the same function as Linux jhash().
test('jhash matches the lookup3 test vectors', (t) => {
  t.is(jhash(new Uint8Array(0), 0, 0, 0), 0xdeadbeef);
  t.is(jhash(enc('Four score and seven years ago'), 0, 30, 0), 0x17770551);
  t.is(jhash(enc('Four score and seven years ago'), 0, 30, 1), 0xcd628161);
});

test('jhashFlowKey equals jhash over the 17 key bytes', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 17, maxLength: 17 }), (k) => {
      const dv = new DataView(k.buffer, k.byteOffset, 17);
      const h = jhashFlowKey(dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true), dv.getUint32(12, true), k[16]);
      return h === jhash(k, 0, 17, 0);
    }),
  );
  t.pass();
});

test('jhashWords (jhash2) equals jhash over the little-endian bytes', (t) => {
  fc.assert(
    fc.property(fc.array(fc.nat(0xffffffff), { minLength: 1, maxLength: 9 }), fc.nat(0xffffffff), (w, seed) => {
      const b = new Uint8Array(w.length * 4);
      const dv = new DataView(b.buffer);
      w.forEach((x, i) => dv.setUint32(i * 4, x, true));
      return jhashWords(w, w.length, seed) === jhash(b, 0, b.length, seed);
    }),
  );
  t.pass();
});
