/**
 * Capture files: a streaming reader for libpcap (µs and ns, either byte order) and pcapng (SHB, IDB,
 * EPB, SPB, the obsolete PB; other blocks skipped; sections of either byte order; several interfaces,
 * each with its own link type, if_tsresol and if_tsoffset), either of them gzip-compressed; and a small
 * libpcap writer for tests and examples. The reader keeps one growing buffer and hands out (buf, off, len)
 * views, so a multi-gigabyte capture streams in constant memory; a gzip file is inflated by a worker
 * thread a few chunks ahead of the reader (gunzip-pull.ts).
 *
 * Bad input is a UserError of one line. A file that is not a capture at all, or whose frames are all
 * of a link type the replay cannot take, names the file; a record or block that is cut short or corrupt
 * names the frame and the byte offset: "FILE: frame 1234 at byte 56789: truncated: …" (the offset is in
 * the inflated capture for a gzip file). With `keepGoing` the reader stops there instead: `next()`
 * returns false and `problem` says where and what, so the caller can report what it read so far.
 * Frames of a pcapng interface that is not Ethernet are skipped and counted (`skipped`).
 * @module
 */
import * as fs from 'fs';
import { UserError } from '../errors';
import { GunzipError, GunzipPull } from './gunzip-pull';

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
// IDB options (pcapng §4.2)
const IF_TSRESOL = 9;
const IF_TSOFFSET = 14;
/** Smallest length of each block type: 12 bytes of framing plus the type's fixed fields. */
const PCAPNG_MIN_LEN: Record<number, number> = { [PCAPNG_SHB]: 28, [PCAPNG_IDB]: 20, [PCAPNG_PB]: 32, [PCAPNG_SPB]: 16, [PCAPNG_EPB]: 32 };
/** Largest non-packet block accepted (name tables, statistics, custom blocks): read whole, then skipped. */
const MAX_OTHER_BLOCK = 16 << 20;

/** A capture of another link type; `frames` > 0: a pcapng file whose every frame (that many) was on such interfaces. */
function linkTypeError(file: string, lt: number, frames = 0): UserError {
  const name = LINKTYPE_NAMES[lt] ? ` (${LINKTYPE_NAMES[lt]})` : '';
  const what = frames > 0
    ? `has no Ethernet interface: its ${frames} frames are of link type ${lt}${name}`
    : `link type ${lt}${name} is not supported`;
  return new UserError(`${file}: ${what}; replay needs Ethernet frames (link type 1), e.g. a capture taken with tcpdump -i <tap or NIC> -w FILE`);
}

export interface CaptureOptions {
  /**
   * Stop at the first truncated or corrupt record or block instead of throwing: `next()` then returns
   * false and `problem` is set. A file that is not a capture still throws from the constructor.
   */
  keepGoing?: boolean;
}

/** Where and why a `keepGoing` reader stopped early. */
export interface CaptureProblem {
  /** The frame being read, 1-based, counting every packet record of the file (skipped ones too), as Wireshark numbers them. */
  frame: number;
  /** Byte offset of its record or block in the capture (in the inflated stream of a gzip file). */
  offset: number;
  /** What is wrong, starting "truncated:" or "corrupt:" (or "unreadable:" for an I/O error). */
  message: string;
  /** The line the reader would have thrown without keepGoing: "FILE: frame N at byte B: message". */
  line: string;
}

/** Where the reader's bytes come from: the file itself, or the worker inflating it. */
interface ByteSource {
  /** Up to `len` bytes into `buf` at `off`. @returns 0 at the end. @throws on an I/O or gzip error. */
  read(buf: Buffer, off: number, len: number): number;
  /** File bytes consumed so far (progress against the file's size). */
  consumed(): number;
  close(): void;
}

class FileSource implements ByteSource {
  private pos = 0;
  constructor(private readonly fd: number) {}
  read(buf: Buffer, off: number, len: number): number {
    const n = fs.readSync(this.fd, buf, off, len, this.pos);
    this.pos += n;
    return n;
  }
  consumed(): number {
    return this.pos;
  }
  close(): void {
    fs.closeSync(this.fd);
  }
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
  /** Records handed out so far. */
  count = 0;
  /** Packet records skipped: pcapng frames of interfaces whose link type is not Ethernet. */
  skipped = 0;
  /** The link types of those interfaces, in the order first met. */
  readonly skippedLinkTypes: number[] = [];
  /** With keepGoing: why the reader stopped before the end of the file (undefined at a clean end). */
  problem: CaptureProblem | undefined;
  readonly format: 'pcap' | 'pcapng';
  /** Whether the file is gzip-compressed (its content is one of the formats above). */
  readonly gzip: boolean;
  /** Size of the file in bytes (compressed, for a gzip file). */
  readonly size: number;

  private src: ByteSource | undefined;
  private keepGoing = false;
  private start = 0; // capture offset of buf[0]
  private end = 0; // valid bytes in buf
  private pos = 0; // read position in buf
  private le = true;
  private tsDiv = 1000; // pcap: units per ms of the sub-second field
  // pcapng: per interface of the current section, its link type, ticks per ms and offset (if_tsoffset, ms)
  private ifLink: number[] = [];
  private ifTicksPerMs: number[] = [];
  private ifOffsetMs: number[] = [];
  private inSection = false;
  private srcError: string | undefined; // why the byte source stopped early (I/O, gzip)

  constructor(readonly file: string, opts: CaptureOptions = {}) {
    let fd = -1;
    let magic = Buffer.alloc(2);
    try {
      fd = fs.openSync(file, 'r');
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: st.isDirectory() ? 'EISDIR' : 'ENOTFILE' });
      this.size = st.size;
      if (fs.readSync(fd, magic, 0, 2, 0) < 2) magic = Buffer.alloc(2);
    } catch (e) {
      if (fd >= 0) fs.closeSync(fd);
      const code = (e as NodeJS.ErrnoException).code;
      throw new UserError(
        code === 'ENOENT' ? `${file}: no such capture file`
          : code === 'EISDIR' ? `${file}: is a directory; give a capture file`
          : `${file}: cannot open the capture (${code ?? String(e)})`,
      );
    }
    // gzip's magic 1f 8b: inflate in a worker, read the same formats from its output.
    this.gzip = magic[0] === 0x1f && magic[1] === 0x8b;
    if (this.gzip) {
      fs.closeSync(fd);
      this.src = new GunzipPull(file);
    } else {
      this.src = new FileSource(fd);
    }
    const inside = this.gzip ? ' inside its gzip compression' : '';
    if (!this.fill(4)) this.failOpen(`is not a capture file${inside}: it is shorter than any capture header`);
    const m = this.buf.readUInt32LE(0);
    if (m === PCAPNG_SHB) {
      this.format = 'pcapng';
    } else {
      this.format = 'pcap';
      if (m === 0xa1b2c3d4 || m === 0xa1b23c4d) this.le = true;
      else if (m === 0xd4c3b2a1 || m === 0x4d3cb2a1) this.le = false;
      else this.failOpen(`is not a pcap or pcapng capture${inside} (unknown magic number)`);
      this.tsDiv = m === 0xa1b23c4d || m === 0x4d3cb2a1 ? 1e6 : 1e3;
      if (!this.fill(24)) this.failOpen('is truncated: the pcap file header is cut short');
      const lt = this.u32(20) & 0x0fffffff;
      if (lt !== LINKTYPE_ETHERNET) {
        this.close();
        throw linkTypeError(this.file, lt);
      }
      this.pos = 24;
    }
    // Only problems after the file header stop a keepGoing reader quietly: before it there is nothing to keep.
    this.keepGoing = opts.keepGoing === true;
  }

  close(): void {
    this.src?.close();
    this.src = undefined;
  }

  private failOpen(what: string): never {
    this.close();
    throw new UserError(`${this.file}: ${this.srcError !== undefined ? `is ${this.srcError.replace(':', ' before its capture header:')}` : what}`);
  }

  /** No byte left and the source ended cleanly: the only place a capture may end. */
  private atEnd(): boolean {
    return this.end === this.pos && this.srcError === undefined;
  }

  /**
   * A truncated or corrupt record at capture offset `at`: throws the one-line UserError, or with
   * keepGoing records it as `problem` (the first one only) and returns false for next() to return.
   */
  private fail(at: number, what: string): false {
    if (this.problem) return false;
    // A read that failed underneath says more than "cut short".
    if (this.srcError !== undefined) what = this.srcError;
    const frame = this.count + this.skipped + 1;
    const line = `${this.file}: frame ${frame} at byte ${at}: ${what}`;
    if (!this.keepGoing) {
      this.close();
      throw new UserError(line);
    }
    this.problem = { frame, offset: at, message: what, line };
    return false;
  }

  /** Make `n` bytes available from `pos`. @returns false at the end of the data, or when the source failed (srcError, which fail() reports). */
  private fill(n: number): boolean {
    if (this.end - this.pos >= n) return true;
    if (this.problem || this.srcError !== undefined || !this.src) return false;
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
        got = this.src.read(this.buf, this.end, this.buf.length - this.end);
      } catch (e) {
        // Kept for fail(), which reports it at the offset of the record the caller was reading.
        if (!(e instanceof GunzipError)) this.srcError = `unreadable: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
        // zlib says Z_BUF_ERROR when the input ends inside the compressed stream.
        else if (e.code === 'Z_BUF_ERROR') this.srcError = `truncated: the gzip stream ends early (zlib: ${e.message})`;
        else this.srcError = `corrupt: the gzip data is damaged (zlib: ${e.message})`;
        return false;
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

  /**
   * Advance to the next packet record. @returns false at a clean end of the file, or (keepGoing) where a
   * problem stopped it. @throws UserError for a problem without keepGoing, and for a pcapng capture whose
   * every frame was skipped (no Ethernet interface).
   */
  next(): boolean {
    if (this.problem || !this.src) return false;
    const more = this.format === 'pcap' ? this.nextPcap() : this.nextPcapng();
    if (!more && !this.problem && this.count === 0 && this.skipped > 0) {
      this.close();
      throw linkTypeError(this.file, this.skippedLinkTypes[0], this.skipped);
    }
    return more;
  }

  private nextPcap(): boolean {
    const at = this.start + this.pos;
    if (!this.fill(16)) {
      if (this.atEnd()) return false;
      return this.fail(at, `truncated: the record header is cut short (${this.end - this.pos} of 16 bytes)`);
    }
    const p = this.pos;
    const sec = this.u32(p);
    const sub = this.u32(p + 4);
    const incl = this.u32(p + 8);
    const orig = this.u32(p + 12);
    if (incl > MAX_RECORD) return this.fail(at, `corrupt: the record claims ${incl} bytes (no capture holds more than ${MAX_RECORD})`);
    if (orig > MAX_RECORD) return this.fail(at, `corrupt: the record claims an original length of ${orig} bytes`);
    if (!this.fill(16 + incl)) return this.fail(at, `truncated: the record needs ${incl} bytes, ${this.end - this.pos - 16} present`);
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
        if (this.atEnd()) return false;
        return this.fail(at, 'truncated: a block header is cut short');
      }
      let p = this.pos;
      // The SHB's type reads the same in both byte orders; its byte-order magic sets the section's order.
      if (this.buf.readUInt32LE(p) === PCAPNG_SHB) {
        if (!this.fill(12)) return this.fail(at, 'truncated: the section header is cut short');
        p = this.pos;
        const bom = this.buf.readUInt32LE(p + 8);
        if (bom === PCAPNG_BOM) this.le = true;
        else if (bom === 0x4d3c2b1a) this.le = false;
        else return this.fail(at, 'corrupt: bad byte-order magic in a section header');
        this.ifLink = [];
        this.ifTicksPerMs = [];
        this.ifOffsetMs = [];
        this.inSection = true;
      } else if (!this.inSection) {
        return this.fail(at, 'corrupt: a block before any section header');
      }
      const len = this.u32(p + 4);
      const btype = this.u32(p);
      const isPacket = btype === PCAPNG_EPB || btype === PCAPNG_PB || btype === PCAPNG_SPB;
      if (len < 12 || len % 4 !== 0) return this.fail(at, `corrupt: a block claims ${len} bytes (a block is at least 12 bytes, a multiple of 4)`);
      if (len > (isPacket ? MAX_RECORD + 64 : MAX_OTHER_BLOCK)) return this.fail(at, `corrupt: a block claims ${len} bytes`);
      const min = PCAPNG_MIN_LEN[btype] ?? 12;
      if (len < min) return this.fail(at, `corrupt: a block of type ${btype} has ${len} bytes, fewer than its ${min}-byte minimum`);
      if (!this.fill(len)) return this.fail(at, `truncated: a block of ${len} bytes is cut short (${this.end - this.pos} present)`);
      p = this.pos;
      const trail = this.u32(p + len - 4);
      if (trail !== len) return this.fail(at, `corrupt: a block's trailing length ${trail} differs from its leading length ${len}`);
      if (btype === PCAPNG_SHB) {
        const major = this.u16(p + 12);
        if (major !== 1) return this.fail(at, `corrupt: a section of pcapng version ${major} (only version 1 exists)`);
        this.pos += len;
        continue;
      }
      if (btype === PCAPNG_IDB) {
        if (!this.idbOptions(p, len, at)) return false;
        this.ifLink.push(this.u16(p + 8));
        this.pos += len;
        continue;
      }
      if (!isPacket) {
        // Name resolution, interface statistics, decryption secrets, custom, unknown: skipped whole.
        this.pos += len;
        continue;
      }
      // A simple packet block belongs to interface 0; the others name theirs.
      const ifId = btype === PCAPNG_EPB ? this.u32(p + 8) : btype === PCAPNG_PB ? this.u16(p + 8) : 0;
      const lt = this.ifLink[ifId];
      if (lt === undefined) {
        return this.fail(at, btype === PCAPNG_SPB
          ? 'corrupt: a simple packet block comes before the interface block it belongs to'
          : `corrupt: a packet names interface ${ifId}, which no interface block of its section described`);
      }
      let cap: number;
      let orig: number;
      let data: number;
      if (btype === PCAPNG_SPB) {
        orig = this.u32(p + 8);
        cap = Math.min(orig, len - 16);
        data = p + 12;
      } else {
        cap = this.u32(p + 20);
        orig = this.u32(p + 24);
        data = p + 28;
        // 28 bytes of header, the data, then the 4-byte trailing block length.
        if (28 + cap + 4 > len) return this.fail(at, `corrupt: a packet of ${cap} bytes does not fit its block`);
      }
      if (orig > MAX_RECORD) return this.fail(at, `corrupt: a packet claims an original length of ${orig} bytes`);
      this.pos += len;
      if (lt !== LINKTYPE_ETHERNET) {
        // Another interface of a multi-interface capture (tcpdump -i any adds cooked ones, a Wi-Fi NIC…).
        if (this.skipped === 0 || !this.skippedLinkTypes.includes(lt)) this.skippedLinkTypes.push(lt);
        this.skipped++;
        continue;
      }
      this.off = data;
      this.caplen = cap;
      this.origlen = Math.max(orig, cap);
      // A simple packet block carries no timestamp: it keeps the previous packet's time.
      if (btype !== PCAPNG_SPB) {
        const ts = this.u32(p + 12) * 4294967296 + this.u32(p + 16);
        this.tsMs = ts / this.ifTicksPerMs[ifId] + this.ifOffsetMs[ifId];
      }
      this.count++;
      return true;
    }
  }

  /**
   * The timestamp options of an interface block: if_tsresol, 10^-n or 2^-n seconds per tick (default
   * µs), and if_tsoffset, seconds added to every timestamp (default 0). Every option must lie inside the
   * block; a resolution finer than 10^-18 or 2^-63 s (no clock has one) is refused rather than turned
   * into timestamps that are all zero. @returns false when fail() took a problem.
   */
  private idbOptions(p: number, len: number, at: number): boolean {
    let o = p + 16;
    const endOpts = p + len - 4;
    let ticksPerMs = 1000;
    let offsetMs = 0;
    while (o + 4 <= endOpts) {
      const code = this.u16(o);
      const olen = this.u16(o + 2);
      if (code === 0) break;
      if (o + 4 + olen > endOpts) return this.fail(at, `corrupt: option ${code} of an interface block runs past the block (${olen} bytes)`);
      if (code === IF_TSRESOL && olen >= 1) {
        const v = this.buf[o + 4];
        const exp = v & 0x7f;
        if (v & 0x80 ? exp > 63 : exp > 18) return this.fail(at, `corrupt: an interface block's timestamp resolution (if_tsresol ${v}) is finer than any clock`);
        ticksPerMs = (v & 0x80 ? 2 ** exp : 10 ** exp) / 1000;
      } else if (code === IF_TSOFFSET) {
        if (olen !== 8) return this.fail(at, `corrupt: an interface block's if_tsoffset has ${olen} bytes, not 8`);
        // A signed 64-bit count of seconds in the section's byte order.
        const hi = this.le ? this.buf.readInt32LE(o + 8) : this.buf.readInt32BE(o + 4);
        const lo = this.le ? this.buf.readUInt32LE(o + 4) : this.buf.readUInt32BE(o + 8);
        offsetMs = (hi * 4294967296 + lo) * 1000;
      }
      o += 4 + ((olen + 3) & ~3);
    }
    this.ifTicksPerMs.push(ticksPerMs);
    this.ifOffsetMs.push(offsetMs);
    return true;
  }

  /** How far through the file the reader is, in file bytes (compressed ones for a gzip file): progress against `size`. */
  get position(): number {
    return this.gzip ? Math.min(this.src?.consumed() ?? this.size, this.size) : this.start + this.pos;
  }

  /** Offset in the capture (the inflated stream of a gzip file) of the next unread byte. */
  get byteOffset(): number {
    return this.start + this.pos;
  }
}

/**
 * Walk a whole capture once, validating its structure, without handing out packets.
 * @returns the number of packet records handed out (Ethernet ones).
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
