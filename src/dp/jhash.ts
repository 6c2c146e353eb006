/**
 * Bob Jenkins' lookup3 hash as Linux `jhash()` computes it (include/linux/jhash.h), which is what the
 * vRouter's `vr_hash()` (include/vr_hash.h) is: three state words seeded 0xdeadbeef + length + initval,
 * 12-byte blocks read as little-endian u32 and mixed, a byte-wise tail, a final mix, result `c`.
 * The flow table places a key at bucket (jhash(key, 17, 0) mod N) & ~3 (reference §2.3), so these
 * functions must agree bit for bit with the C; test/dp/jhash.test.ts checks the published vectors.
 * Pure functions, no allocation.
 * @module
 */

const JHASH_INITVAL = 0xdeadbeef;

function rol32(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

// The mix step is written out in each function: it updates three words, and a helper would need a
// tuple or shared state on a path that runs per packet. The order of operations is lookup3's.

/**
 * `jhash(key, length, initval)` over `len` bytes of `buf` starting at `off`.
 * @returns the 32-bit hash as an unsigned number.
 */
export function jhash(buf: Uint8Array, off: number, len: number, initval: number): number {
  let a = (JHASH_INITVAL + len + initval) | 0;
  let b = a;
  let c = a;
  let k = off;
  let n = len;
  while (n > 12) {
    a = (a + (buf[k] | (buf[k + 1] << 8) | (buf[k + 2] << 16) | (buf[k + 3] << 24))) | 0;
    b = (b + (buf[k + 4] | (buf[k + 5] << 8) | (buf[k + 6] << 16) | (buf[k + 7] << 24))) | 0;
    c = (c + (buf[k + 8] | (buf[k + 9] << 8) | (buf[k + 10] << 16) | (buf[k + 11] << 24))) | 0;
    a = (a - c) | 0; a ^= rol32(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rol32(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 4); b = (b + a) | 0;
    n -= 12;
    k += 12;
  }
  if (n === 0) return c >>> 0;
  // The C tail is a fall-through switch; adding the bytes that exist gives the same sums.
  if (n >= 12) c = (c + (buf[k + 11] << 24)) | 0;
  if (n >= 11) c = (c + (buf[k + 10] << 16)) | 0;
  if (n >= 10) c = (c + (buf[k + 9] << 8)) | 0;
  if (n >= 9) c = (c + buf[k + 8]) | 0;
  if (n >= 8) b = (b + (buf[k + 7] << 24)) | 0;
  if (n >= 7) b = (b + (buf[k + 6] << 16)) | 0;
  if (n >= 6) b = (b + (buf[k + 5] << 8)) | 0;
  if (n >= 5) b = (b + buf[k + 4]) | 0;
  if (n >= 4) a = (a + (buf[k + 3] << 24)) | 0;
  if (n >= 3) a = (a + (buf[k + 2] << 16)) | 0;
  if (n >= 2) a = (a + (buf[k + 1] << 8)) | 0;
  a = (a + buf[k]) | 0;
  return jhashFinal(a, b, c) >>> 0;
}

/** lookup3's final mix; returns `c` as int32 (small enough for TurboFan to inline into every caller). */
function jhashFinal(a: number, b: number, c: number): number {
  c ^= b; c = (c - rol32(b, 14)) | 0;
  a ^= c; a = (a - rol32(c, 11)) | 0;
  b ^= a; b = (b - rol32(a, 25)) | 0;
  c ^= b; c = (c - rol32(b, 16)) | 0;
  a ^= c; a = (a - rol32(c, 4)) | 0;
  b ^= a; b = (b - rol32(a, 14)) | 0;
  c ^= b; c = (c - rol32(b, 24)) | 0;
  return c;
}

/**
 * `jhash()` of the 17-byte R2.22 flow key with initval 0, from the key as the hash reads it:
 * `k0..k3` are bytes 0-3 (sport, dport), 4-7 (sip), 8-11 (dip), 12-15 (nh_id) as little-endian u32,
 * `proto` is byte 16. Equal to `jhash(keyBytes, 0, 17, 0)`.
 */
export function jhashFlowKey(k0: number, k1: number, k2: number, k3: number, proto: number): number {
  return jhashFlowKeyI32(k0, k1, k2, k3, proto) >>> 0;
}

/**
 * jhashFlowKey as a signed 32-bit value (the same bits). The flow lookup uses this form: an int32 stays
 * an unboxed small integer through calls, where an unsigned value above 2^31 would be a heap number.
 */
export function jhashFlowKeyI32(k0: number, k1: number, k2: number, k3: number, proto: number): number {
  let a = (JHASH_INITVAL + 17) | 0;
  let b = (a + k1) | 0;
  let c = (a + k2) | 0;
  a = (a + k0) | 0;
  a = (a - c) | 0; a ^= rol32(c, 4); c = (c + b) | 0;
  b = (b - a) | 0; b ^= rol32(a, 6); a = (a + c) | 0;
  c = (c - b) | 0; c ^= rol32(b, 8); b = (b + a) | 0;
  a = (a - c) | 0; a ^= rol32(c, 16); c = (c + b) | 0;
  b = (b - a) | 0; b ^= rol32(a, 19); a = (a + c) | 0;
  c = (c - b) | 0; c ^= rol32(b, 4); b = (b + a) | 0;
  // Tail of 5 bytes: byte 16 into b, bytes 12-15 into a.
  b = (b + proto) | 0;
  a = (a + k3) | 0;
  return jhashFinal(a, b, c);
}

/** `jhash2()` over u32 words (include/linux/jhash.h), used for the flow's outer UDP source port. */
export function jhashWords(words: ArrayLike<number>, len: number, initval: number): number {
  let a = (JHASH_INITVAL + (len << 2) + initval) | 0;
  let b = a;
  let c = a;
  let k = 0;
  let n = len;
  while (n > 3) {
    a = (a + words[k]) | 0;
    b = (b + words[k + 1]) | 0;
    c = (c + words[k + 2]) | 0;
    a = (a - c) | 0; a ^= rol32(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rol32(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 4); b = (b + a) | 0;
    n -= 3;
    k += 3;
  }
  if (n === 0) return c >>> 0;
  if (n >= 3) c = (c + words[k + 2]) | 0;
  if (n >= 2) b = (b + words[k + 1]) | 0;
  a = (a + words[k]) | 0;
  return jhashFinal(a, b, c) >>> 0;
}
