/**
 * Random (version 4) UUIDs kept as 16 bytes in a shared array — one per flow index, no string per flow
 * until one is shown.
 * @module
 */

/** Fill b[at, at+16) with a version-4 UUID from 32-bit random numbers. */
export function fillUuid4(b: Uint8Array, at: number, random: () => number): void {
  for (let k = 0; k < 16; k += 4) {
    const x = random();
    b[at + k] = x;
    b[at + k + 1] = x >>> 8;
    b[at + k + 2] = x >>> 16;
    b[at + k + 3] = x >>> 24;
  }
  b[at + 6] = (b[at + 6] & 0x0f) | 0x40; // version 4
  b[at + 8] = (b[at + 8] & 0x3f) | 0x80; // variant 1
}

/** The UUID at b[at, at+16) as 8-4-4-4-12 hex. */
export function uuidString(b: Uint8Array, at: number): string {
  let h = '';
  for (let k = 0; k < 16; k++) h += b[at + k].toString(16).padStart(2, '0');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
