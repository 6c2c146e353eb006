/**
 * xorshift32 (Marsaglia): the seedable random source the hosts give the datapath (HostOs.random32)
 * so that runs, replays and tests can be reproduced. Not for anything cryptographic.
 * @module
 */

/** A generator of 32 random bits; seed 0 is replaced by a fixed non-zero one. */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
