/**
 * A capture decoded once into shared memory, for `plan`: every worker thread replays the same frames
 * without reading or parsing the file again. What the flow engine reads of a frame is its headers, so
 * each frame keeps its first HEAD_BYTES bytes (the rest is zero-filled on replay, as a capture cut by
 * its snaplen is) with its length on the wire and its timestamp: 16 + HEAD_BYTES bytes a frame.
 * @module
 */
import { CaptureReader } from '../io/pcap';
import { UserError } from '../errors';

/** Bytes kept of each frame: Ethernet + 802.1Q + IPv4 with options + TCP with options, with room. */
export const HEAD_BYTES = 128;

/** The shared buffers (what a worker is handed) and their views. */
export interface SharedFrames {
  count: number;
  /** Timestamps (ms), wire lengths, kept lengths, and HEAD_BYTES per frame. */
  tsSab: SharedArrayBuffer;
  lenSab: SharedArrayBuffer;
  capSab: SharedArrayBuffer;
  bytesSab: SharedArrayBuffer;
}

/** What a replay reads frames from: the capture reader, or shared frames (the same fields). */
export interface FrameSource {
  buf: Uint8Array;
  off: number;
  caplen: number;
  origlen: number;
  tsMs: number;
  readonly position: number;
  readonly size: number;
  next(): boolean;
  close(): void;
}

/** Read every frame of `file` into shared memory. @throws UserError for unreadable captures or too many frames. */
export function decodeShared(file: string, maxFrames = 50_000_000): SharedFrames {
  const reader = new CaptureReader(file);
  let cap = 1 << 16;
  let ts = new Float64Array(cap);
  let len = new Uint32Array(cap);
  let kept = new Uint8Array(cap);
  let bytes = new Uint8Array(cap * HEAD_BYTES);
  let n = 0;
  try {
    while (reader.next()) {
      if (n === cap) {
        if (cap >= maxFrames) throw new UserError(`${file}: more than ${maxFrames} frames: plan holds at most that many in memory (${HEAD_BYTES + 13} bytes each); cut the capture (editcap -r) or replay it whole`);
        cap = Math.min(cap * 2, maxFrames);
        ts = grow(ts, cap);
        len = grow(len, cap);
        kept = grow(kept, cap);
        const b = new Uint8Array(cap * HEAD_BYTES);
        b.set(bytes);
        bytes = b;
      }
      const c = Math.min(reader.caplen, HEAD_BYTES);
      ts[n] = reader.tsMs;
      len[n] = reader.origlen;
      kept[n] = c;
      bytes.set(reader.buf.subarray(reader.off, reader.off + c), n * HEAD_BYTES);
      n++;
    }
  } finally {
    reader.close();
  }
  // Copied once into shared memory of the exact size.
  const share = <T extends Float64Array | Uint32Array | Uint8Array>(a: T, per: number): SharedArrayBuffer => {
    const sab = new SharedArrayBuffer(Math.max(1, n * per * a.BYTES_PER_ELEMENT));
    new (a.constructor as new (b: SharedArrayBuffer) => T)(sab).set(a.subarray(0, n * per) as never);
    return sab;
  };
  return { count: n, tsSab: share(ts, 1), lenSab: share(len, 1), capSab: share(kept, 1), bytesSab: share(bytes, HEAD_BYTES) };
}

function grow<T extends Float64Array | Uint32Array | Uint8Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a as never);
  return b;
}

/** Reads shared frames as the capture reader reads a file (the replay's FrameSource). */
export class SharedFrameReader implements FrameSource {
  buf: Uint8Array;
  off = 0;
  caplen = 0;
  origlen = 0;
  tsMs = 0;
  private i = -1;
  private readonly ts: Float64Array;
  private readonly len: Uint32Array;
  private readonly kept: Uint8Array;

  constructor(private readonly f: SharedFrames) {
    this.buf = new Uint8Array(f.bytesSab);
    this.ts = new Float64Array(f.tsSab);
    this.len = new Uint32Array(f.lenSab);
    this.kept = new Uint8Array(f.capSab);
  }

  get position(): number {
    return this.i + 1;
  }

  get size(): number {
    return this.f.count;
  }

  next(): boolean {
    if (++this.i >= this.f.count) return false;
    const i = this.i;
    this.off = i * HEAD_BYTES;
    this.caplen = this.kept[i];
    this.origlen = this.len[i];
    this.tsMs = this.ts[i];
    return true;
  }

  close(): void {
    // nothing to release: the buffers are shared
  }
}
