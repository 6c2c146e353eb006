/**
 * Dotted-quad IPv4 addresses in configuration files: parsed to a number (a<<24|…, unsigned) and back.
 * @module
 */

/** The address as a number, or −1 when `s` is not a dotted quad of 0..255. */
export function ipParse(s: unknown): number {
  if (typeof s !== 'string') return -1;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return -1;
  const p = m.slice(1).map(Number);
  if (p.some((x) => x > 255)) return -1;
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export function ipString(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}
