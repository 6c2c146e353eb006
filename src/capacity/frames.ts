/**
 * A capture decoded once into shared memory, for `plan`: every worker thread replays the same frames
 * without reading or parsing the file again. What the flow engine reads of a frame is its headers, so
 * each frame keeps at most its first HEAD_BYTES bytes (the rest is zero-filled on replay, as a capture
 * cut by its snaplen is), with its length on the wire and its timestamp.
 *
 * The frames are packed (a 64-byte frame takes 64 bytes, not HEAD_BYTES) into chunks of shared memory
 * written in place as the file is read: no array is grown and copied, so decoding needs the decoded size
 * once, and a replay streams half as many bytes through the caches the flow table needs for a capture
 * of small frames. A frame takes its kept bytes + 16 (timestamp, wire length, offset).
 * @module
 */
import * as os from 'os';
import { CaptureReader } from '../io/pcap';
import { UserError } from '../errors';

/** Bytes kept of each frame: Ethernet + 802.1Q + IPv4 with options + TCP with options, with room. */
export const HEAD_BYTES = 128;
/** Frames per chunk, and the bytes a chunk holds (a chunk ends at whichever fills first). */
const CHUNK_FRAMES = 1 << 20;
const CHUNK_BYTES = 64 << 20;
/** What a frame takes besides its bytes: its timestamp (f64), wire length and offset (u32 each). */
const FRAME_META_BYTES = 16;

/** decodeShared's limits: what the frames may take (default: half of this machine's memory), a chunk's size (tests make them small). */
export interface DecodeOptions {
  maxBytes?: number;
  chunkFrames?: number;
  chunkBytes?: number;
}

/** One chunk: `count` frames; frame i's bytes are bytes[off[i], off[i + 1]). */
export interface FrameChunk {
  count: number;
  tsSab: SharedArrayBuffer;
  lenSab: SharedArrayBuffer;
  offSab: SharedArrayBuffer;
  bytesSab: SharedArrayBuffer;
}

/** The typed views of one chunk: what the decoder writes and the reader reads. */
interface ChunkViews {
  ts: Float64Array;
  len: Uint32Array;
  off: Uint32Array;
  bytes: Uint8Array;
}

function viewsOf(c: FrameChunk): ChunkViews {
  return { ts: new Float64Array(c.tsSab), len: new Uint32Array(c.lenSab), off: new Uint32Array(c.offSab), bytes: new Uint8Array(c.bytesSab) };
}

/** The shared chunks (what a worker is handed). */
export interface SharedFrames {
  count: number;
  /** Shared bytes in use, for the message when a capture does not fit. */
  bytes: number;
  chunks: FrameChunk[];
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

/**
 * Read every frame of `file` into shared memory.
 * @throws UserError for unreadable captures and captures that do not fit
 */
export function decodeShared(file: string, o: DecodeOptions = {}): SharedFrames {
  const maxBytes = o.maxBytes ?? Math.floor(os.totalmem() / 2);
  const chunkFrames = o.chunkFrames ?? CHUNK_FRAMES;
  const chunkBytes = Math.max(o.chunkBytes ?? CHUNK_BYTES, HEAD_BYTES);
  // A chunk's memory is only touched as it is written: the tail of the last one costs nothing.
  const newChunk = (): FrameChunk => ({
    count: 0,
    tsSab: new SharedArrayBuffer(chunkFrames * 8),
    lenSab: new SharedArrayBuffer(chunkFrames * 4),
    offSab: new SharedArrayBuffer((chunkFrames + 1) * 4),
    bytesSab: new SharedArrayBuffer(chunkBytes),
  });
  const reader = new CaptureReader(file);
  const out: SharedFrames = { count: 0, bytes: 0, chunks: [] };
  let c = newChunk();
  let v = viewsOf(c);
  out.chunks.push(c);
  // Frames in the current chunk, and the bytes they use.
  let n = 0;
  let at = 0;
  const closeChunk = (): void => {
    c.count = n;
    out.bytes += at + n * FRAME_META_BYTES;
  };
  try {
    while (reader.next()) {
      const kept = Math.min(reader.caplen, HEAD_BYTES);
      if (n === chunkFrames || at + kept > chunkBytes) {
        closeChunk();
        if (out.bytes + chunkBytes + chunkFrames * FRAME_META_BYTES > maxBytes) {
          throw new UserError(`${file}: its frames need more than ${mib(maxBytes)} decoded (${out.count} frames read): plan holds a capture in memory; cut it (editcap -r ${file} OUT 1-${out.count}) or replay it whole`);
        }
        c = newChunk();
        v = viewsOf(c);
        out.chunks.push(c);
        n = 0;
        at = 0;
      }
      v.ts[n] = reader.tsMs;
      v.len[n] = reader.origlen;
      v.off[n] = at;
      v.bytes.set(reader.buf.subarray(reader.off, reader.off + kept), at);
      at += kept;
      n++;
      v.off[n] = at;
      out.count++;
    }
  } finally {
    reader.close();
  }
  closeChunk();
  return out;
}

const mib = (b: number): string => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);

/** Reads shared frames as the capture reader reads a file (the replay's FrameSource). */
export class SharedFrameReader implements FrameSource {
  buf: Uint8Array = new Uint8Array(0);
  off = 0;
  caplen = 0;
  origlen = 0;
  tsMs = 0;
  private done = 0;
  private chunk = -1;
  private i = 0;
  private count = 0;
  private ts: Float64Array = new Float64Array(0);
  private len: Uint32Array = new Uint32Array(0);
  private offs: Uint32Array = new Uint32Array(1);

  constructor(private readonly f: SharedFrames) {}

  get position(): number {
    return this.done;
  }

  get size(): number {
    return this.f.count;
  }

  next(): boolean {
    while (this.i >= this.count) {
      if (++this.chunk >= this.f.chunks.length) return false;
      const c = this.f.chunks[this.chunk];
      ({ bytes: this.buf, ts: this.ts, len: this.len, off: this.offs } = viewsOf(c));
      this.count = c.count;
      this.i = 0;
    }
    const i = this.i++;
    this.off = this.offs[i];
    this.caplen = this.offs[i + 1] - this.off;
    this.origlen = this.len[i];
    this.tsMs = this.ts[i];
    this.done++;
    return true;
  }

  close(): void {
    // nothing to release: the buffers are shared
  }
}
