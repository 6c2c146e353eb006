/**
 * Building Ethernet/IPv4 frames with correct checksums: TCP, UDP, ICMP (echo, errors), fragments, ARP.
 * Used by the tests, the example capture and the benchmarks' traffic; not by the datapath.
 * @module
 */

export interface IpOpts {
  src: string;
  dst: string;
  srcMac?: string;
  dstMac?: string;
  ttl?: number;
  id?: number;
  /** More-fragments flag. */
  mf?: boolean;
  /** Fragment offset in 8-byte units. */
  fragOffset?: number;
}

export interface TcpOpts {
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  /** Flag letters: S, A, F, R, P, U. */
  flags?: string;
  payload?: Uint8Array | number;
}

export interface UdpOpts {
  sport: number;
  dport: number;
  payload?: Uint8Array | number;
}

export const MAC_A = '02:00:00:00:00:01';
export const MAC_B = '02:00:00:00:00:02';

export function ipToBytes(s: string): number[] {
  const p = s.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !(x >= 0 && x <= 255))) throw new Error(`bad IPv4 address ${s}`);
  return p;
}

function macBytes(s: string): number[] {
  return s.split(':').map((x) => parseInt(x, 16));
}

/** Internet checksum over `b` with an initial sum. */
export function inetChecksum(b: Uint8Array, off: number, len: number, init = 0): number {
  let sum = init;
  for (let i = 0; i + 1 < len; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  if (len & 1) sum += b[off + len - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function payloadBytes(p: Uint8Array | number | undefined): Uint8Array {
  if (p === undefined) return new Uint8Array(0);
  if (typeof p === 'number') return new Uint8Array(p).map((_, i) => (i * 7) & 0xff);
  return p;
}

/** An Ethernet + IPv4 frame around transport bytes `l4` (its checksum already set, if any). */
export function ethIpv4(ip: IpOpts, proto: number, l4: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + 20 + l4.length);
  f.set(macBytes(ip.dstMac ?? MAC_B), 0);
  f.set(macBytes(ip.srcMac ?? MAC_A), 6);
  f[12] = 0x08;
  f[13] = 0x00;
  const h = 14;
  f[h] = 0x45;
  const tot = 20 + l4.length;
  f[h + 2] = tot >> 8;
  f[h + 3] = tot & 0xff;
  const id = ip.id ?? 0;
  f[h + 4] = id >> 8;
  f[h + 5] = id & 0xff;
  const fw = (ip.mf ? 0x2000 : 0) | ((ip.fragOffset ?? 0) & 0x1fff);
  f[h + 6] = fw >> 8;
  f[h + 7] = fw & 0xff;
  f[h + 8] = ip.ttl ?? 64;
  f[h + 9] = proto;
  f.set(ipToBytes(ip.src), h + 12);
  f.set(ipToBytes(ip.dst), h + 16);
  const c = inetChecksum(f, h, 20);
  f[h + 10] = c >> 8;
  f[h + 11] = c & 0xff;
  f.set(l4, h + 20);
  return f;
}

function pseudoSum(ip: IpOpts, proto: number, len: number): number {
  const s = ipToBytes(ip.src);
  const d = ipToBytes(ip.dst);
  return ((s[0] << 8) | s[1]) + ((s[2] << 8) | s[3]) + ((d[0] << 8) | d[1]) + ((d[2] << 8) | d[3]) + proto + len;
}

/** A TCP segment in a frame. */
export function tcpFrame(ip: IpOpts, t: TcpOpts): Uint8Array {
  const pl = payloadBytes(t.payload);
  const l4 = new Uint8Array(20 + pl.length);
  const dv = new DataView(l4.buffer);
  dv.setUint16(0, t.sport);
  dv.setUint16(2, t.dport);
  dv.setUint32(4, (t.seq ?? 0) >>> 0);
  dv.setUint32(8, (t.ack ?? 0) >>> 0);
  l4[12] = 5 << 4;
  let fl = 0;
  for (const ch of t.flags ?? '') fl |= { F: 0x01, S: 0x02, R: 0x04, P: 0x08, A: 0x10, U: 0x20 }[ch] ?? 0;
  l4[13] = fl;
  dv.setUint16(14, 65535);
  l4.set(pl, 20);
  dv.setUint16(16, inetChecksum(l4, 0, l4.length, pseudoSum(ip, 6, l4.length)));
  return ethIpv4(ip, 6, l4);
}

/** A UDP datagram in a frame. */
export function udpFrame(ip: IpOpts, u: UdpOpts): Uint8Array {
  const pl = payloadBytes(u.payload);
  const l4 = new Uint8Array(8 + pl.length);
  const dv = new DataView(l4.buffer);
  dv.setUint16(0, u.sport);
  dv.setUint16(2, u.dport);
  dv.setUint16(4, l4.length);
  l4.set(pl, 8);
  dv.setUint16(6, inetChecksum(l4, 0, l4.length, pseudoSum(ip, 17, l4.length)) || 0xffff);
  return ethIpv4(ip, 17, l4);
}

/** An ICMP message: `rest` is the 4 bytes after type/code/checksum (id/seq for echo), then `body`. */
export function icmpFrame(ip: IpOpts, type: number, code: number, rest: number, body?: Uint8Array | number): Uint8Array {
  const pl = payloadBytes(body);
  const l4 = new Uint8Array(8 + pl.length);
  const dv = new DataView(l4.buffer);
  l4[0] = type;
  l4[1] = code;
  dv.setUint32(4, rest >>> 0);
  l4.set(pl, 8);
  dv.setUint16(2, inetChecksum(l4, 0, l4.length));
  return ethIpv4(ip, 1, l4);
}

/** ICMP echo request (type 8) or reply (type 0). */
export function icmpEcho(ip: IpOpts, reply: boolean, id: number, seq: number, payload: number | Uint8Array = 56): Uint8Array {
  return icmpFrame(ip, reply ? 0 : 8, 0, ((id & 0xffff) << 16) | (seq & 0xffff), payload);
}

/** An ICMP error (e.g. type 3 code 3, port unreachable) quoting `offending`'s IP header + 8 bytes. */
export function icmpError(ip: IpOpts, type: number, code: number, offending: Uint8Array): Uint8Array {
  const inner = offending.subarray(14, 14 + 28);
  return icmpFrame(ip, type, code, 0, inner);
}

/** An ARP request from `sender` for `target`. */
export function arpRequest(senderMac: string, senderIp: string, targetIp: string): Uint8Array {
  const f = new Uint8Array(42);
  f.fill(0xff, 0, 6);
  f.set(macBytes(senderMac), 6);
  f[12] = 0x08;
  f[13] = 0x06;
  const a = 14;
  f.set([0, 1, 8, 0, 6, 4, 0, 1], a);
  f.set(macBytes(senderMac), a + 8);
  f.set(ipToBytes(senderIp), a + 14);
  f.set(ipToBytes(targetIp), a + 24);
  return f;
}
