/**
 * Internet checksums (RFC 1071) written in place, and their incremental update (RFC 1624): used by NAT,
 * the TTL decrement, the overlay's outer headers, ICMP and MSS clamping.
 * @module
 */
import { rd16 } from './pkt';

/**
 * Update the checksum at `at` for changed data (RFC 1624 eq. 3: HC' = ~(~HC + ~m + m')); `oldWords` and
 * `newWords` are the folded 16-bit one's-complement sums of the data before and after.
 */
export function csumUpdate(b: Uint8Array, at: number, oldWords: number, newWords: number): void {
  let sum = (~rd16(b, at) & 0xffff) + (~oldWords & 0xffff) + newWords;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  b[at] = c >>> 8;
  b[at + 1] = c & 0xff;
}

/** The internet checksum of b[off, off+len), written at `at` (which must be zero while summing). */
export function csumFull(b: Uint8Array, off: number, len: number, at: number): void {
  b[at] = 0;
  b[at + 1] = 0;
  let sum = 0;
  for (let i = 0; i + 1 < len; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  if (len & 1) sum += b[off + len - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  b[at] = c >>> 8;
  b[at + 1] = c & 0xff;
}

