/**
 * Capture files: a streaming reader for libpcap (µs and ns, either byte order) and pcapng (SHB, IDB,
 * EPB, SPB, the obsolete PB; other blocks skipped; sections of either byte order), Ethernet link type only; and a small libpcap writer
 * for tests and examples. The reader keeps one growing buffer and hands out (buf, off, len) views, so a
 * multi-gigabyte capture streams in constant memory.
 *
 * Bad input is a UserError naming the file and the byte offset: not a capture, an unsupported link type,
 * a record cut short (truncated capture), a record length no capture would write (corrupt file).
 * @module
 */
import * as fs from 'fs';
import { UserError } from '../errors';

export const LINKTYPE_ETHERNET = 1;
const LINKTYPE_NAMES: Record<number, string> = {
  0: 'BSD loopback', 101: 'raw IP', 105: '802.11', 113: 'Linux cooked (tcpdump -i any)', 127: '802.11 radiotap',
  228: 'raw IPv4', 229: 'raw IPv6', 276: 'Linux cooked v2 (tcpdump -i any)',
};
/** Largest record accepted: well above any jumbo or GSO frame a capture holds. */
const MAX_RECORD = 262144;

const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_IDB = 1;
const PCAPNG_PB = 2;
const PCAPNG_SPB = 3;
const PCAPNG_EPB = 6;
const PCAPNG_BOM = 0x1a2b3c4d;
/** Smallest length of each block type: 12 bytes of framing plus the type's fixed fields. */
const PCAPNG_MIN_LEN: Record<number, number> = { [PCAPNG_SHB]: 28, [PCAPNG_IDB]: 20, [PCAPNG_PB]: 32, [PCAPNG_SPB]: 16, [PCAPNG_EPB]: 32 };
/** Largest non-packet block accepted (name tables, statistics, custom blocks): read whole, then skipped. */
const MAX_OTHER_BLOCK = 16 << 20;

function linkTypeError(file: string, lt: number): UserError {
  const name = LINKTYPE_NAMES[lt] ? ` (${LINKTYPE_NAMES[lt]})` : '';
  return new UserError(
    `${file}: link type ${lt}${name} is not supported; replay needs Ethernet frames (link type 1), e.g. a capture taken with tcpdump -i <tap or NIC> -w FILE`,
  );
}

/** Sequential reader of one capture file. */
export class CaptureReader {
  /** The current record: bytes at buf[off, off+caplen). */
  buf: Buffer = Buffer.alloc(1 << 20);
  off = 0;
  caplen = 0;
  /** The frame's length on the wire (≥ caplen when the capture's snaplen cut it). */
  origlen = 0;
  /** Timestamp in milliseconds since the epoch (fractional). */
  tsMs = 0;
  /** Records read so far. */
  count = 0;
  readonly format: 'pcap' | 'pcapng';
  readonly size: number;

  private fd: number;
  private start = 0; // buffer start's file offset
  private end = 0; // valid bytes in buf
  private pos = 0; // read position in buf
  private le = true;
  private tsDiv = 1000; // pcap: units per ms of the sub-second field
  // pcapng per-interface link type and ticks per ms
  private ifLink: number[] = [];
  private ifTicksPerMs: number[] = [];
  private inSection = false;

  constructor(readonly file: string) {
    let fd = -1;
    try {
      fd = fs.openSync(file, 'r');
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: st.isDirectory() ? 'EISDIR' : 'ENOTFILE' });
      this.size = st.size;
    } catch (e) {
      if (fd >= 0) fs.closeSync(fd);
      const code = (e as NodeJS.ErrnoException).code;
      throw new UserError(
        code === 'ENOENT' ? `${file}: no such capture file`
          : code === 'EISDIR' ? `${file}: is a directory; give a capture file`
          : `${file}: cannot open the capture (${code ?? String(e)})`,
      );
    }
    this.fd = fd;
    if (!this.fill(4)) this.fail(0, 'is not a capture file: it is shorter than any capture header');
    const magic = this.buf.readUInt32LE(0);
    if (magic === PCAPNG_SHB) {
      this.format = 'pcapng';
    } else {
      this.format = 'pcap';
      this.readPcapHeader(magic);
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private fail(at: number, what: string): never {
    this.close();
    throw new UserError(`${this.file}: ${what} (at byte ${at})`);
  }

  /** Make `n` bytes available from `pos`. @returns false at end of file. */
  private fill(n: number): boolean {
    if (this.end - this.pos >= n) return true;
    if (this.pos > 0) {
      this.buf.copy(this.buf, 0, this.pos, this.end);
      this.start += this.pos;
      this.end -= this.pos;
      this.pos = 0;
    }
    if (n > this.buf.length) {
      const b = Buffer.alloc(Math.max(n, this.buf.length * 2));
      this.buf.copy(b, 0, 0, this.end);
      this.buf = b;
    }
    while (this.end < n) {
      let got: number;
      try {
        got = fs.readSync(this.fd, this.buf, this.end, this.buf.length - this.end, this.start + this.end);
      } catch (e) {
        this.fail(this.start + this.end, `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      }
      if (got === 0) return false;
      this.end += got;
    }
    return true;
  }

  private u16(o: number): number {
    return this.le ? this.buf.readUInt16LE(o) : this.buf.readUInt16BE(o);
  }

  private u32(o: number): number {
    return this.le ? this.buf.readUInt32LE(o) : this.buf.readUInt32BE(o);
  }

  private readPcapHeader(magic: number): void {
    if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) this.le = true;
    else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) this.le = false;
    else this.fail(0, 'is not a pcap or pcapng capture (unknown magic number)');
    this.tsDiv = magic === 0xa1b23c4d || magic === 0x4d3cb2a1 ? 1e6 : 1e3;
    if (!this.fill(24)) this.fail(this.start + this.end, 'is truncated: the pcap file header is cut short');
    const lt = this.u32(20) & 0x0fffffff;
    if (lt !== LINKTYPE_ETHERNET) {
      this.close();
      throw linkTypeError(this.file, lt);
    }
    this.pos = 24;
  }

  /** Advance to the next packet record. @returns false at a clean end of file. */
  next(): boolean {
    return this.format === 'pcap' ? this.nextPcap() : this.nextPcapng();
  }

  private nextPcap(): boolean {
    const at = this.start + this.pos;
    if (!this.fill(16)) {
      if (this.end - this.pos === 0) return false;
      this.fail(at, `is truncated: record ${this.count + 1}'s header is cut short`);
    }
    const p = this.pos;
    const sec = this.u32(p);
    const sub = this.u32(p + 4);
    const incl = this.u32(p + 8);
    const orig = this.u32(p + 12);
    if (incl > MAX_RECORD) this.fail(at, `is corrupt: record ${this.count + 1} claims ${incl} bytes`);
    if (orig > MAX_RECORD) this.fail(at, `is corrupt: record ${this.count + 1} claims an original length of ${orig} bytes`);
    if (!this.fill(16 + incl)) {
      this.fail(at, `is truncated: record ${this.count + 1} needs ${incl} bytes, ${this.end - this.pos - 16} present`);
    }
    this.off = this.pos + 16;
    this.caplen = incl;
    this.origlen = Math.max(orig, incl);
    this.tsMs = sec * 1000 + sub / this.tsDiv;
    this.pos += 16 + incl;
    this.count++;
    return true;
  }

  /**
   * pcapng: every pass of the loop consumes one whole block (its length is at least 12 and a multiple
   * of 4, and the bytes are present) or fails, so no input makes it spin; every field read lies inside
   * the block it belongs to, checked against that block's own minimum size.
   */
  private nextPcapng(): boolean {
    for (;;) {
      const at = this.start + this.pos;
      if (!this.fill(8)) {
        if (this.end - this.pos === 0) return false;
        this.fail(at, 'is truncated: a block header is cut short');
      }
      let p = this.pos;
      // The SHB's type reads the same in both byte orders; its byte-order magic sets the section's order.
      if (this.buf.readUInt32LE(p) === PCAPNG_SHB) {
        if (!this.fill(12)) this.fail(at, 'is truncated: the section header is cut short');
        p = this.pos;
        const bom = this.buf.readUInt32LE(p + 8);
        if (bom === PCAPNG_BOM) this.le = true;
        else if (bom === 0x4d3c2b1a) this.le = false;
        else this.fail(at, 'is not a pcapng capture (bad byte-order magic in a section header)');
        this.ifLink = [];
        this.ifTicksPerMs = [];
        this.inSection = true;
      } else if (!this.inSection) {
        this.fail(at, 'is corrupt: a block before any section header');
      }
      const len = this.u32(p + 4);
      const btype = this.u32(p);
      const isPacket = btype === PCAPNG_EPB || btype === PCAPNG_PB || btype === PCAPNG_SPB;
      if (len < 12 || len % 4 !== 0) this.fail(at, `is corrupt: a block claims ${len} bytes (a block is at least 12 bytes, a multiple of 4)`);
      if (len > (isPacket ? MAX_RECORD + 64 : MAX_OTHER_BLOCK)) this.fail(at, `is corrupt: a block claims ${len} bytes`);
      const min = PCAPNG_MIN_LEN[btype] ?? 12;
      if (len < min) this.fail(at, `is corrupt: a block of type ${btype} has ${len} bytes, fewer than its ${min}-byte minimum`);
      if (!this.fill(len)) this.fail(at, `is truncated: a block of ${len} bytes is cut short`);
      p = this.pos;
      if (this.u32(p + len - 4) !== len) this.fail(at, `is corrupt: a block's trailing length ${this.u32(p + len - 4)} differs from its leading length ${len}`);
      this.pos += len;
      if (btype === PCAPNG_SHB) {
        const major = this.u16(p + 12);
        if (major !== 1) this.fail(at, `is a pcapng version ${major} capture; only version 1 exists`);
        continue;
      }
      if (btype === PCAPNG_IDB) {
        this.ifLink.push(this.u16(p + 8));
        this.ifTicksPerMs.push(this.idbTicksPerMs(p, len, at));
        continue;
      }
      if (btype === PCAPNG_EPB || btype === PCAPNG_PB) {
        const ifId = btype === PCAPNG_EPB ? this.u32(p + 8) : this.u16(p + 8);
        const lt = this.ifLink[ifId];
        if (lt === undefined) this.fail(at, `is corrupt: a packet names interface ${ifId}, which no interface block of its section described`);
        if (lt !== LINKTYPE_ETHERNET) {
          this.close();
          throw linkTypeError(this.file, lt);
        }
        const ts = this.u32(p + 12) * 4294967296 + this.u32(p + 16);
        const cap = this.u32(p + 20);
        const orig = this.u32(p + 24);
        // 28 bytes of header, the data, then the 4-byte trailing block length.
        if (28 + cap + 4 > len) this.fail(at, `is corrupt: a packet of ${cap} bytes does not fit its block`);
        if (orig > MAX_RECORD) this.fail(at, `is corrupt: a packet claims an original length of ${orig} bytes`);
        this.off = p + 28;
        this.caplen = cap;
        this.origlen = Math.max(orig, cap);
        this.tsMs = ts / this.ifTicksPerMs[ifId];
        this.count++;
        return true;
      }
      if (btype === PCAPNG_SPB) {
        const lt = this.ifLink[0];
        if (lt === undefined) this.fail(at, 'is corrupt: a simple packet block comes before the interface block it belongs to');
        if (lt !== LINKTYPE_ETHERNET) {
          this.close();
          throw linkTypeError(this.file, lt);
        }
        const orig = this.u32(p + 8);
        if (orig > MAX_RECORD) this.fail(at, `is corrupt: a packet claims an original length of ${orig} bytes`);
        this.off = p + 12;
        this.caplen = Math.min(orig, len - 16);
        this.origlen = orig;
        // A simple packet block carries no timestamp: it keeps the previous packet's time.
        this.count++;
        return true;
      }
      // Any other block (name resolution, interface statistics, decryption secrets, custom): skipped whole.
    }
  }

  /**
   * if_tsresol of an interface block: 10^-n or 2^-n seconds per tick (default µs). Every option must lie
   * inside the block; a resolution finer than 10^-18 or 2^-63 s (no clock has one) is refused rather
   * than turned into timestamps that are all zero.
   */
  private idbTicksPerMs(p: number, len: number, at: number): number {
    let o = p + 16;
    const endOpts = p + len - 4;
    let ticksPerMs = 1000;
    while (o + 4 <= endOpts) {
      const code = this.u16(o);
      const olen = this.u16(o + 2);
      if (code === 0) break;
      if (o + 4 + olen > endOpts) this.fail(at, `is corrupt: option ${code} of an interface block runs past the block (${olen} bytes)`);
      if (code === 9 && olen >= 1) {
        const v = this.buf[o + 4];
        const exp = v & 0x7f;
        if (v & 0x80 ? exp > 63 : exp > 18) this.fail(at, `is corrupt: an interface block's timestamp resolution (if_tsresol ${v}) is finer than any clock`);
        ticksPerMs = (v & 0x80 ? 2 ** exp : 10 ** exp) / 1000;
      }
      o += 4 + ((olen + 3) & ~3);
    }
    return ticksPerMs;
  }

  /** File offset of the next unread byte (progress). */
  get position(): number {
    return this.start + this.pos;
  }
}

/**
 * Walk a whole capture once, validating its structure, without handing out packets.
 * @returns the number of packet records.
 * @throws UserError for anything the replay could not read.
 */
export function captureValidate(file: string): number {
  const r = new CaptureReader(file);
  while (r.next()) {
    // structure only
  }
  r.close();
  return r.count;
}

/** Build a libpcap file (µs timestamps, Ethernet) from frames, for tests and examples. */
export function pcapBuild(frames: { tsMs: number; data: Uint8Array }[], snaplen = 65535): Buffer {
  const parts: Buffer[] = [];
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeUInt32LE(snaplen, 16);
  h.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  parts.push(h);
  for (const f of frames) {
    const rh = Buffer.alloc(16);
    const sec = Math.floor(f.tsMs / 1000);
    rh.writeUInt32LE(sec, 0);
    rh.writeUInt32LE(Math.round((f.tsMs - sec * 1000) * 1000), 4);
    const cap = Math.min(f.data.length, snaplen);
    rh.writeUInt32LE(cap, 8);
    rh.writeUInt32LE(f.data.length, 12);
    parts.push(rh, Buffer.from(f.data.buffer, f.data.byteOffset, cap));
  }
  return Buffer.concat(parts);
}
